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


def group_figures(missed: np.ndarray, flag_and_risk: np.ndarray) -> dict[str, float]:
    """Every figure of one group, from outcomes and ``(flagged, risk)`` pairs.

    One metric function for all figures: fairlearn converts its inputs element by
    element for every metric, and six separate metrics took 20 s on 48,000 rows.
    """
    flagged = flag_and_risk[:, 0] > 0.5
    risk = flag_and_risk[:, 1]
    positives = missed == 1
    negatives = ~positives
    hits = float((flagged & positives).sum())
    return {
        "mean_risk": float(risk.mean()),
        "observed_rate": float(positives.mean()),
        "false_positive_rate": _rate(
            float((flagged & negatives).sum()), negatives.sum()
        ),
        "false_negative_rate": _rate(
            float((~flagged & positives).sum()), positives.sum()
        ),
        "recall_top10": _rate(hits, float(positives.sum())),
        "precision_top10": _rate(hits, float(flagged.sum())),
    }


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
    flag_and_risk = np.column_stack([flagged.astype(float), risk])
    tables = []
    for attribute in attributes:
        if attribute not in holdout:
            continue
        groups = group_labels(holdout[attribute]).rename(attribute)
        by_group = MetricFrame(
            metrics={"figures": group_figures},
            y_true=missed,
            y_pred=flag_and_risk,
            sensitive_features=groups,
        ).by_group["figures"]
        table = pd.DataFrame(list(by_group), index=by_group.index)
        counts = (
            holdout.assign(group=groups.to_numpy())
            .groupby("group")["student_id"]
            .agg(n_students="nunique", n_rows="size")
        )
        table = table.join(counts)
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
