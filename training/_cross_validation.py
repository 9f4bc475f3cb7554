"""Stratified k-fold cross-validation of the risk model on a flat student table.

Published results on a flat table (one row per student, e.g. the UCI student-
performance data) are usually k-fold cross-validated accuracies, not the temporal
holdout ``ontrack train`` reports. ``cross_validate_table`` gives the figures to set
next to them, with the very model ``train`` fits: in each of ``folds`` stratified
folds (the same share of students who missed in every fold, shuffled with the
seed), :func:`training._model.fit_risk_model` chooses the size and fits the Platt
calibration on out-of-fold margins of the other folds' students, exactly as in
training, and the held-out fold is scored with the calibrated risk.

- accuracy: the share of held-out students whose outcome the model gets right,
  predicting "missed" where the calibrated risk is at least 0.5 (``THRESHOLD``);
- ROC AUC of the calibrated risk.

Each figure is given as its mean over the folds and its standard deviation over
the folds (the spread from one tenth of the students to another, not a
confidence interval of the mean). The majority-class accuracy (predicting that
nobody misses, or everybody) is reported with them: on a table where 85% pass, 85%
accuracy is no achievement.

Notes
-----
Published figures may use other protocols (Cortez and Silva ran 20 repetitions of
10-fold cross-validation and their own model choices); the comparison is of
setting with setting, not of identical experiments.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from training._model import fit_risk_model
from training._splits import STUDENT_FOLDS, student_bucket

if TYPE_CHECKING:
    from features import StudentTable

logger = logging.getLogger(__name__)

# A held-out student is predicted to miss the standard at a calibrated risk of at
# least this.
THRESHOLD = 0.5
NOT_ENOUGH_STUDENTS = (
    "kpi_labels: {kpi}: {n_missed} of {n} students missed and {n_met} met the "
    "standard; {folds}-fold stratified cross-validation needs at least {folds} of each"
)


@dataclass(frozen=True)
class CrossValidation:
    """The figures of one setting (one set of model inputs), fold by fold.

    ``folds`` has one row per fold: ``fold``, ``n_students``, ``n_missed``,
    ``accuracy``, ``roc_auc`` and the chosen model ``size``. ``published`` is the
    accuracy someone published for the same setting and its source, if known.
    """

    setting: str
    kpi: str
    inputs: list[str]
    n_students: int
    n_missed: int
    folds: pd.DataFrame
    published: tuple[float, str] | None = None

    @property
    def majority_accuracy(self) -> float:
        """The accuracy of predicting the more common outcome for everyone."""
        share = self.n_missed / self.n_students
        return max(share, 1 - share)

    def mean(self, figure: str) -> float:
        return float(self.folds[figure].mean())

    def spread(self, figure: str) -> float:
        """Standard deviation over the folds (``ddof=1``)."""
        return float(self.folds[figure].std(ddof=1))


def feature_matrix(
    students: pd.DataFrame, inputs: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """Floats for the booster, and which inputs are categorical.

    Text and category columns are coded by the position of their value among the
    column's sorted values (the whole table's: the value set says nothing about the
    outcome), as training codes them; missing stays NaN.
    """
    matrix = np.empty((len(students), len(inputs)), dtype=np.float64)
    categorical = []
    for position, name in enumerate(inputs):
        values = students[name]
        if pd.api.types.is_numeric_dtype(values):
            matrix[:, position] = values.to_numpy(dtype=float, na_value=np.nan)
            continue
        categories = sorted(values.dropna().astype(str).unique())
        codes = pd.Categorical(values.astype("string"), categories=categories).codes
        matrix[:, position] = np.where(codes < 0, np.nan, codes)
        categorical.append(name)
    return matrix, categorical


def cross_validate(
    students: pd.DataFrame,
    missed: np.ndarray,
    inputs: Sequence[str],
    *,
    folds: int = 10,
    seed: int = 42,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Stratified ``folds``-fold figures of the risk model, one row per fold.

    ``students`` holds ``student_id`` and the ``inputs``; ``missed`` is 0/1 per row.
    """
    missed = np.asarray(missed, dtype=int)
    matrix, categorical = feature_matrix(students, inputs)
    student_id = students["student_id"]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    rows = []
    for fold, (inside, held_out) in enumerate(splitter.split(matrix, missed), 1):
        # Calibration folds inside the training part, by student as in training.
        inner = student_bucket(student_id.iloc[inside], STUDENT_FOLDS)
        fitted = fit_risk_model(
            matrix[inside],
            missed[inside],
            inner,
            list(inputs),
            categorical,
            seed,
            n_jobs,
        )
        margin = fitted.booster.predict(
            matrix[held_out], raw_score=True, num_threads=n_jobs
        )
        risk = fitted.calibration.risk(margin)
        outcome = missed[held_out]
        rows.append(
            {
                "fold": fold,
                "n_students": len(held_out),
                "n_missed": int(outcome.sum()),
                "accuracy": float(np.mean((risk >= THRESHOLD) == outcome)),
                "roc_auc": (
                    float(roc_auc_score(outcome, risk))
                    if 0 < outcome.sum() < outcome.size
                    else math.nan
                ),
                "size": fitted.size.label(),
            }
        )
    return pd.DataFrame(rows)


def cross_validate_table(
    table: StudentTable,
    kpi: str,
    *,
    setting: str,
    folds: int = 10,
    seed: int = 42,
    n_jobs: int = 1,
    published: tuple[float, str] | None = None,
) -> CrossValidation:
    """Cross-validate the model of ``kpi`` on a ``features.StudentTable``.

    Raises
    ------
    ValueError
        If the table has no label for ``kpi``, or fewer than ``folds`` students
        on either side of the standard.
    """
    started = time.perf_counter()
    labels = table.labels[table.labels["kpi"] == kpi]
    if labels.empty:
        known = ", ".join(sorted(table.labels["kpi"].unique()))
        raise ValueError(
            f"kpi_labels: no label for kpi {kpi!r}; the table's labels: {known}"
        )
    students = table.features.merge(
        labels[["student_id", "missed"]], on="student_id", validate="one_to_one"
    )
    missed = students["missed"].astype(int).to_numpy()
    n_missed = int(missed.sum())
    if min(n_missed, missed.size - n_missed) < folds:
        raise ValueError(
            NOT_ENOUGH_STUDENTS.format(
                kpi=kpi,
                n_missed=n_missed,
                n=missed.size,
                n_met=missed.size - n_missed,
                folds=folds,
            )
        )
    inputs = table.feature_columns
    per_fold = cross_validate(
        students, missed, inputs, folds=folds, seed=seed, n_jobs=n_jobs
    )
    result = CrossValidation(
        setting=setting,
        kpi=kpi,
        inputs=list(inputs),
        n_students=len(students),
        n_missed=n_missed,
        folds=per_fold,
        published=published,
    )
    logger.info(
        "cross-validated %s (%s): %s students, %s folds, accuracy %.3f, ROC AUC "
        "%.3f, %.1f s",
        kpi,
        setting,
        result.n_students,
        folds,
        result.mean("accuracy"),
        result.mean("roc_auc"),
        time.perf_counter() - started,
    )
    return result


def describe_cross_validation(results: Sequence[CrossValidation]) -> str:
    """A plain text table: one line per setting, ours next to the published."""
    if not results:
        return "no setting was cross-validated"
    first = results[0]
    folds = len(first.folds)
    lines = [
        f"{first.kpi}: {first.n_students} students, {first.n_missed} missed "
        f"({first.n_missed / first.n_students:.1%}); stratified {folds}-fold "
        f"cross-validation, 'missed' predicted at a calibrated risk >= {THRESHOLD}",
        f"majority-class accuracy: {first.majority_accuracy:.1%}",
        "",
        f"{'setting':<22} {'inputs':>6} {'accuracy':>15} {'ROC AUC':>15} "
        f"{'published':>10}",
    ]
    for result in results:
        accuracy = f"{result.mean('accuracy'):.1%} ± {result.spread('accuracy'):.1%}"
        auc = f"{result.mean('roc_auc'):.3f} ± {result.spread('roc_auc'):.3f}"
        published = f"{result.published[0]:.1%}" if result.published else "-"
        lines.append(
            f"{result.setting:<22} {len(result.inputs):>6} {accuracy:>15} {auc:>15} "
            f"{published:>10}"
        )
    sources = sorted({result.published[1] for result in results if result.published})
    lines += [
        "",
        "± is the standard deviation over the folds.",
    ]
    if sources:
        lines.append(f"published: {'; '.join(sources)}")
    return "\n".join(lines)
