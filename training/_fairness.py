"""Fairness audit: the holdout figures disaggregated by student group.

For each protected attribute (race/ethnicity, gender, disability, English learner,
economically disadvantaged) and each of its groups: the mean predicted risk against
the observed rate, and at the top-10% cut-off (the 10% of students with the highest
risk at each as-of date, all students tied with the last one included) the false
positive rate, false negative rate, recall and precision. fairlearn's ``MetricFrame``
does the grouping.

A group with fewer distinct students than the config's ``min_n`` keeps its row, marked
``too_small`` with its figures left empty: hidden groups would look like missing ones.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from training._metrics import top_count

AUDIT_SHARE = 0.10
FIGURES = (
    "mean_risk",
    "observed_rate",
    "false_positive_rate",
    "false_negative_rate",
    "recall_top10",
    "precision_top10",
)


def top_share_flags(
    risk: np.ndarray, as_of_date: np.ndarray, share: float = AUDIT_SHARE
) -> np.ndarray:
    """True for the top ``share`` of risks at each date, ties at the cut-off in."""
    risk = np.asarray(risk, dtype=float)
    flagged = np.zeros(risk.size, dtype=bool)
    for _, members in pd.Series(np.arange(risk.size)).groupby(as_of_date):
        rows = members.to_numpy()
        k = top_count(rows.size, share)
        cutoff = np.sort(risk[rows])[::-1][k - 1]
        flagged[rows] = risk[rows] >= cutoff
    return flagged


def group_labels(values: pd.Series) -> pd.Series:
    """Readable group names: 0/1 flags become ``no``/``yes``, missing ``unknown``."""
    if pd.api.types.is_numeric_dtype(values):
        labels = values.map({1.0: "yes", 0.0: "no"})
        return labels.fillna("unknown").astype(str)
    return values.fillna("unknown").astype(str)


def _rate(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _fpr(missed, flagged) -> float:
    negatives = missed == 0
    return _rate(float((flagged & negatives).sum()), float(negatives.sum()))


def _fnr(missed, flagged) -> float:
    positives = missed == 1
    return _rate(float((~flagged & positives).sum()), float(positives.sum()))


def _recall(missed, flagged) -> float:
    positives = missed == 1
    return _rate(float((flagged & positives).sum()), float(positives.sum()))


def _precision(missed, flagged) -> float:
    return _rate(float((flagged & (missed == 1)).sum()), float(flagged.sum()))


def _observed(missed, flagged) -> float:
    return float(np.mean(missed))


def fairness_audit(
    holdout: pd.DataFrame, attributes: list[str], min_n: int
) -> pd.DataFrame:
    """One row per ``(attribute, group)`` with the figures of :data:`FIGURES`.

    ``holdout`` has ``student_id``, ``as_of_date``, ``missed`` (0/1), ``risk`` and the
    protected attribute columns. Rows also carry ``n_students`` (distinct), ``n_rows``
    (student-checkpoints) and ``too_small``. An attribute missing from ``holdout`` is
    skipped.
    """
    missed = holdout["missed"].to_numpy(dtype=int)
    risk = holdout["risk"].to_numpy(dtype=float)
    flagged = top_share_flags(risk, holdout["as_of_date"].to_numpy())
    tables = []
    for attribute in attributes:
        if attribute not in holdout:
            continue
        groups = group_labels(holdout[attribute]).rename(attribute)
        by_risk = MetricFrame(
            metrics={"mean_risk": lambda _, predicted: float(np.mean(predicted))},
            y_true=missed,
            y_pred=risk,
            sensitive_features=groups,
        ).by_group
        by_flag = MetricFrame(
            metrics={
                "observed_rate": _observed,
                "false_positive_rate": _fpr,
                "false_negative_rate": _fnr,
                "recall_top10": _recall,
                "precision_top10": _precision,
            },
            y_true=missed,
            y_pred=flagged,
            sensitive_features=groups,
        ).by_group
        counts = (
            holdout.assign(group=groups.to_numpy())
            .groupby("group")["student_id"]
            .agg(n_students="nunique", n_rows="size")
        )
        table = by_risk.join(by_flag).join(counts)
        table.index.name = "group"
        table = table.reset_index()
        table.insert(0, "attribute", attribute)
        table["too_small"] = table["n_students"] < min_n
        table.loc[table["too_small"], list(FIGURES)] = np.nan
        tables.append(table)
    columns = ["attribute", "group", "n_students", "n_rows", *FIGURES, "too_small"]
    if not tables:
        return pd.DataFrame(columns=columns)
    return pd.concat(tables, ignore_index=True)[columns]
