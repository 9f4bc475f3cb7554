"""Predicted against observed, once a school year's outcomes are known.

For each KPI, school year and checkpoint with both predictions and labels: the
number of students, the mean predicted risk (the rate the model expected), the
observed rate of students who missed the standard, their difference, and the AUC
of the risks against the outcomes. A checkpoint whose students all share one
outcome has no AUC (NaN).
"""

from __future__ import annotations

import math

import pandas as pd
from sklearn.metrics import roc_auc_score

CALIBRATION_COLUMNS = [
    "kpi",
    "school_year",
    "checkpoint",
    "n_students",
    "predicted_rate",
    "observed_rate",
    "difference",
    "auc",
]


def calibration_over_time(
    predictions: pd.DataFrame, labels: pd.DataFrame
) -> pd.DataFrame:
    """Observed against predicted per KPI, school year and checkpoint.

    Parameters
    ----------
    predictions
        One row per ``(student_id, as_of_date, kpi)``: ``school_year``,
        ``checkpoint`` and ``risk``.
    labels
        KPI labels: ``student_id``, ``school_year``, ``kpi``, ``missed``.

    Returns
    -------
    pandas.DataFrame
        :data:`CALIBRATION_COLUMNS`, sorted by KPI, year and checkpoint order in
        the data. Students without a label are left out.
    """
    joined = predictions.merge(
        labels[["student_id", "school_year", "kpi", "missed"]].dropna(
            subset=["missed"]
        ),
        on=["student_id", "school_year", "kpi"],
        how="inner",
    )
    rows = []
    for (kpi, school_year, checkpoint), students in joined.groupby(
        ["kpi", "school_year", "checkpoint"], sort=False
    ):
        missed = students["missed"].astype(bool)
        risk = students["risk"].astype(float)
        predicted = float(risk.mean())
        observed = float(missed.mean())
        rows.append(
            {
                "kpi": kpi,
                "school_year": int(school_year),
                "checkpoint": checkpoint,
                "n_students": len(students),
                "predicted_rate": predicted,
                "observed_rate": observed,
                "difference": observed - predicted,
                "auc": float(roc_auc_score(missed, risk))
                if missed.nunique() == 2
                else math.nan,
            }
        )
    calibration = pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)
    # Checkpoints in school-year order: autumn months (August on) before spring.
    in_spring = calibration["checkpoint"].map(
        lambda c: c[:2].isdigit() and c[:2] < "08"
    )
    return (
        calibration.assign(_spring=in_spring)
        .sort_values(["kpi", "school_year", "_spring", "checkpoint"], kind="stable")
        .drop(columns="_spring")
        .reset_index(drop=True)
    )


AUC_COLUMNS = [
    "kpi",
    "school_year",
    "n_students",
    "predicted_rate",
    "observed_rate",
    "auc",
]


def auc_by_year(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """AUC per KPI and school year over every checkpoint's predictions together."""
    pooled = predictions.assign(checkpoint="all")
    return calibration_over_time(pooled, labels)[AUC_COLUMNS]
