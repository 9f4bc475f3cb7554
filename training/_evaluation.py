"""Holdout evaluation of a model against its baselines, per checkpoint.

Every figure is computed on the same holdout rows for every scorer. ``"all"`` pools the
checkpoints (top-k lists are still taken one date at a time, see ``_metrics``).

The comparison with the ABC flags is made at the same number of students flagged: at
each date the ABC list has as many students as have any "at risk" flag, and the
model's list is its top students of that same count (ties shared, see ``_metrics``).

The PR AUC difference between the model and a baseline comes with a 95% bootstrap
interval: students (not rows) are drawn with replacement, all of a student's
checkpoints together, and the difference is recomputed on each draw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training._metrics import (
    RankedOutcomes,
    evaluate,
    flagged_at_counts,
    precision_recall,
)

ALL_CHECKPOINTS = "all"
BOOTSTRAP_REPS = 200
BOOTSTRAP_LEVEL = 0.95


def checkpoint_labels(holdout: pd.DataFrame) -> pd.Series:
    """The checkpoint (``MM-DD``) of each row; ad-hoc dates by their own month-day."""
    dates = pd.to_datetime(holdout["as_of_date"]).dt.strftime("%m-%d")
    if "checkpoint" not in holdout:
        return dates
    labels = holdout["checkpoint"].astype("string").fillna("")
    return labels.where(labels != "", dates).astype(str)


def school_year_order(checkpoint: str) -> tuple[int, str]:
    """Sort key putting autumn checkpoints (August to December) before spring ones."""
    if checkpoint == ALL_CHECKPOINTS:
        return (-1, checkpoint)
    return (0 if int(checkpoint[:2]) >= 8 else 1, checkpoint)


def holdout_metrics(
    holdout: pd.DataFrame, scores: dict[str, tuple[np.ndarray, bool]]
) -> pd.DataFrame:
    """One row per ``(scorer, checkpoint)`` with every figure of ``evaluate``.

    ``holdout`` has ``missed``, ``as_of_date`` and ``school_id``; ``scores`` maps a
    scorer's name to its scores and whether they are probabilities.
    """
    checkpoints = checkpoint_labels(holdout).to_numpy()
    dates = holdout["as_of_date"].to_numpy()
    schools = holdout["school_id"].astype(str).to_numpy()
    missed = holdout["missed"].to_numpy()
    rows = []
    for name, (score, is_probability) in scores.items():
        for checkpoint in [
            ALL_CHECKPOINTS,
            *sorted(set(checkpoints), key=school_year_order),
        ]:
            rows_in = (
                np.ones(len(holdout), dtype=bool)
                if checkpoint == ALL_CHECKPOINTS
                else checkpoints == checkpoint
            )
            figures = evaluate(
                missed[rows_in],
                score[rows_in],
                dates[rows_in],
                schools[rows_in],
                is_probability,
            )
            rows.append({"scorer": name, "checkpoint": checkpoint, **figures})
    return pd.DataFrame(rows)


def abc_comparison(
    holdout: pd.DataFrame, risk: np.ndarray, abc_flagged: np.ndarray
) -> pd.DataFrame:
    """Precision and recall of the ABC list and of the model's list of the same size.

    One row per checkpoint and one for ``"all"``: ``n_flagged``, ``abc_precision``,
    ``model_precision``, ``abc_recall``, ``model_recall`` and ``precision_gain``
    (model minus ABC).
    """
    dates = holdout["as_of_date"].astype(str).to_numpy()
    counts = pd.Series(abc_flagged).groupby(dates).sum().to_dict()
    model_flags = flagged_at_counts(risk, dates, counts)
    checkpoints = checkpoint_labels(holdout).to_numpy()
    missed = holdout["missed"].to_numpy(dtype=float)
    rows = []
    for checkpoint in [
        ALL_CHECKPOINTS,
        *sorted(set(checkpoints), key=school_year_order),
    ]:
        part = (
            np.ones(len(holdout), dtype=bool)
            if checkpoint == ALL_CHECKPOINTS
            else checkpoints == checkpoint
        )
        abc_precision, abc_recall = precision_recall(missed[part], abc_flagged[part])
        model_precision, model_recall = precision_recall(
            missed[part], model_flags[part]
        )
        rows.append(
            {
                "checkpoint": checkpoint,
                "n_flagged": float(abc_flagged[part].sum()),
                "abc_precision": abc_precision,
                "model_precision": model_precision,
                "abc_recall": abc_recall,
                "model_recall": model_recall,
                "precision_gain": model_precision - abc_precision,
            }
        )
    return pd.DataFrame(rows)


def bootstrap_pr_auc_difference(
    missed: np.ndarray,
    model_score: np.ndarray,
    baseline_score: np.ndarray,
    student_id: np.ndarray,
    seed: int,
    reps: int = BOOTSTRAP_REPS,
) -> dict[str, float]:
    """PR AUC of the model minus the baseline's, with a bootstrap interval.

    Returns ``difference`` (on the holdout as it is), ``low`` and ``high`` (the 2.5th
    and 97.5th percentiles over ``reps`` draws of students) and ``reps``.
    """
    model = RankedOutcomes(missed, model_score)
    baseline = RankedOutcomes(missed, baseline_score)
    codes, students = pd.factorize(pd.Series(student_id))
    rng = np.random.default_rng(seed)
    share = np.full(len(students), 1 / len(students))
    differences = np.empty(reps)
    for rep in range(reps):
        weight = rng.multinomial(len(students), share)[codes].astype(float)
        differences[rep] = model.average_precision(weight) - baseline.average_precision(
            weight
        )
    tail = (1 - BOOTSTRAP_LEVEL) / 2 * 100
    low, high = np.nanpercentile(differences, [tail, 100 - tail])
    return {
        "difference": model.average_precision() - baseline.average_precision(),
        "low": float(low),
        "high": float(high),
        "reps": reps,
    }
