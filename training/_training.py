"""Train and evaluate one KPI's model: snapshot frames in, a :class:`KpiResult` out.

The steps, in order: join the KPI's labels to the student snapshots, split the rows by
school year (``_splits``), fit and calibrate the booster on the training years
(``_model``), score the holdout with the model, the 300-tree reference size and the
baselines (``_baselines``), compute every holdout figure (``_evaluation``), audit
fairness (``_fairness``) and compute drivers on the holdout (``_drivers``). No file,
database or MLflow is touched here.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from training import _baselines, _drivers, _evaluation
from training._catalog import DAYS_INTO_YEAR, FeatureSpec
from training._fairness import fairness_audit
from training._metrics import ranking_metrics
from training._model import (
    REFERENCE_SIZE,
    Calibration,
    FittedModel,
    ModelSpec,
    feature_matrix,
    fit_booster,
    fit_risk_model,
)
from training._splits import Split, temporal_split

logger = logging.getLogger(__name__)

KEYS = ("student_id", "as_of_date")
MODEL = "lightgbm"


# Below these counts the holdout figures are noise and the champion rule judges
# nothing: on the one-year Ed-Fi sample, course failure had 25 labelled students (4
# held out) and scored a ROC AUC of 0.500. A labelled student is one student in one
# school year, whatever the number of checkpoints.
MIN_LABELLED_STUDENTS = 50
MIN_PER_OUTCOME = 10
LABEL_RULE = (
    f"at least {MIN_LABELLED_STUDENTS} labelled students, and at least "
    f"{MIN_PER_OUTCOME} who missed and {MIN_PER_OUTCOME} who did not in both the "
    "training rows and the holdout"
)


class TrainingDataError(ValueError):
    """A snapshot or label table cannot be trained on; the message says why."""


class TooFewLabelsError(TrainingDataError):
    """A KPI has too few labels to train and judge a model; ``reason`` says which."""

    def __init__(self, kpi: str, reason: str):
        super().__init__(f"kpi_labels: kpi {kpi!r} not trained: {reason}")
        self.kpi = kpi
        self.reason = reason


@dataclass(frozen=True)
class TrainingSettings:
    """What the config says about one training run."""

    seed: int
    n_jobs: int
    school_year_start: str
    protected_attributes: tuple[str, ...]
    use_protected: bool
    min_n: int


@dataclass
class KpiResult:
    """A trained KPI model and everything measured about it on the holdout."""

    kpi: str
    booster: lgb.Booster
    spec: ModelSpec
    fitted: FittedModel
    split: Split
    n_training_rows: int
    n_training_students: int
    # The holdout snapshot rows with ``missed``, ``margin``, ``risk`` and baselines.
    holdout: pd.DataFrame
    metrics: pd.DataFrame
    abc: pd.DataFrame
    pr_auc_differences: pd.DataFrame
    fairness: pd.DataFrame
    district_drivers: pd.DataFrame
    school_drivers: pd.DataFrame
    # Exact TreeSHAP contributions of a sample of holdout rows, for plots.
    contributions_sample: np.ndarray
    features_sample: np.ndarray
    reference_auc: float
    training_fingerprint: str
    holdout_fingerprint: str

    def figure(self, name: str, scorer: str = MODEL, checkpoint: str = "all") -> float:
        """One holdout figure, e.g. ``figure("pr_auc", "logistic_regression")``."""
        rows = self.metrics[
            (self.metrics["scorer"] == scorer)
            & (self.metrics["checkpoint"] == checkpoint)
        ]
        return float(rows[name].iloc[0])


def labelled_examples(
    student_snapshots: pd.DataFrame, kpi_labels: pd.DataFrame, kpi: str
) -> pd.DataFrame:
    """Snapshot rows of students with a label for ``kpi`` that year, with ``missed``."""
    labels = kpi_labels.loc[
        kpi_labels["kpi"] == kpi, ["student_id", "school_year", "missed"]
    ]
    duplicated = labels.duplicated(["student_id", "school_year"])
    if duplicated.any():
        first = labels.loc[duplicated].iloc[0]
        raise TrainingDataError(
            f"kpi_labels: {duplicated.sum()} duplicate rows for kpi {kpi!r}, e.g. "
            f"student_id {first['student_id']!r} in school_year "
            f"{first['school_year']}; expected one row per "
            "(student_id, school_year, kpi)"
        )
    examples = student_snapshots.merge(labels, on=["student_id", "school_year"])
    examples["missed"] = examples["missed"].astype(bool).astype(int)
    return examples.sort_values(list(KEYS), kind="stable").reset_index(drop=True)


def label_shortfall(examples: pd.DataFrame, split: Split) -> str | None:
    """Why ``examples`` are too few to train and judge a model on, or None.

    The rule is :data:`LABEL_RULE`; the first count that falls short is named, e.g.
    ``"25 labelled students (at least 50 needed)"``.
    """
    students = examples.assign(holdout=split.holdout).drop_duplicates(
        ["student_id", "school_year"]
    )
    if len(students) < MIN_LABELLED_STUDENTS:
        return (
            f"{len(students)} labelled students (at least {MIN_LABELLED_STUDENTS} "
            "needed)"
        )
    for side, in_holdout in (("training rows", False), ("holdout", True)):
        missed = students.loc[students["holdout"] == in_holdout, "missed"]
        for outcome, count in (
            ("who missed", int(missed.sum())),
            ("who did not miss", int((missed == 0).sum())),
        ):
            if count < MIN_PER_OUTCOME:
                return (
                    f"{count} labelled students {outcome} in the {side} (at least "
                    f"{MIN_PER_OUTCOME} of each outcome needed in training and "
                    "holdout)"
                )
    return None


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's values and column names: same data, same fingerprint."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _base_spec(
    kpi: str,
    inputs: list[FeatureSpec],
    training_rows: pd.DataFrame,
    settings: TrainingSettings,
) -> ModelSpec:
    names = [spec.name for spec in inputs] + [DAYS_INTO_YEAR]
    categories = {
        spec.name: sorted(training_rows[spec.name].dropna().astype(str).unique())
        for spec in inputs
        if not pd.api.types.is_numeric_dtype(training_rows[spec.name])
    }
    return ModelSpec(
        kpi=kpi,
        features=names,
        domains={spec.name: spec.domain for spec in inputs},
        templates={spec.name: spec.template for spec in inputs},
        kinds={spec.name: spec.kind for spec in inputs},
        protected=[spec.name for spec in inputs if spec.protected],
        categories=categories,
        calibration=Calibration(),
        references={},
        school_year_start=settings.school_year_start,
        size=REFERENCE_SIZE,
    )


def reference_medians(
    training_rows: pd.DataFrame, features: np.ndarray, spec: ModelSpec
) -> dict[str, dict[str, float]]:
    """District medians of each feature in the training years, per checkpoint.

    The key ``""`` holds the medians over all checkpoints, for ad-hoc dates.
    """
    table = pd.DataFrame(features, columns=spec.features)
    checkpoints = _evaluation.checkpoint_labels(training_rows).to_numpy()
    medians = {_drivers.ALL_CHECKPOINTS: table.median().to_dict()}
    for checkpoint, part in table.groupby(checkpoints):
        medians[str(checkpoint)] = part.median().to_dict()
    return medians


def train_kpi(
    kpi: str,
    student_snapshots: pd.DataFrame,
    school_snapshots: pd.DataFrame,
    kpi_labels: pd.DataFrame,
    inputs: list[FeatureSpec],
    settings: TrainingSettings,
) -> KpiResult:
    """Fit, calibrate and evaluate ``kpi``'s model against its baselines.

    Raises
    ------
    TooFewLabelsError
        When the labels fall short of :data:`LABEL_RULE`.
    """
    examples = labelled_examples(student_snapshots, kpi_labels, kpi)
    if examples.empty:
        raise TrainingDataError(
            f"kpi_labels: no label for kpi {kpi!r} matches a student snapshot on "
            "(student_id, school_year); expected at least one school year of both"
        )
    split = temporal_split(examples)
    shortfall = label_shortfall(examples, split)
    if shortfall is not None:
        raise TooFewLabelsError(kpi, shortfall)
    training_rows = examples.loc[~split.holdout].reset_index(drop=True)
    holdout = examples.loc[split.holdout].reset_index(drop=True)
    fold = split.fold[~split.holdout]
    spec = _base_spec(kpi, inputs, training_rows, settings)
    train_x = feature_matrix(training_rows, spec)
    holdout_x = feature_matrix(holdout, spec)
    train_y = training_rows["missed"].to_numpy()
    categorical = list(spec.categories)

    # Fit: size chosen and calibration fitted on out-of-fold margins.
    fitted = fit_risk_model(
        train_x,
        train_y,
        fold,
        spec.features,
        categorical,
        settings.seed,
        settings.n_jobs,
    )
    spec.calibration = fitted.calibration
    spec.size = fitted.size
    spec.references = reference_medians(training_rows, train_x, spec)
    if "grade" in examples:
        # Any labelled year counts, the holdout too: a grade is in scope for a KPI
        # if students of that grade were ever labelled for it.
        spec.grades = sorted(float(g) for g in examples["grade"].dropna().unique())
    booster = fitted.booster
    holdout["margin"] = booster.predict(
        holdout_x, raw_score=True, num_threads=settings.n_jobs
    )
    holdout["risk"] = spec.calibration.risk(holdout["margin"].to_numpy())

    # The 300-tree, 31-leaf reference: what the smaller chosen size gives up.
    reference = fit_booster(
        train_x,
        train_y,
        spec.features,
        categorical,
        REFERENCE_SIZE,
        settings.seed,
        settings.n_jobs,
    )
    reference_score = reference.predict(holdout_x, num_threads=settings.n_jobs)
    reference_auc = ranking_metrics(holdout["missed"].to_numpy(), reference_score)

    scores = _baseline_scores(
        kpi,
        training_rows,
        holdout,
        train_x,
        holdout_x,
        spec,
        school_snapshots,
        kpi_labels,
        settings,
    )
    scores = {MODEL: (holdout["risk"].to_numpy(), True), **scores}
    for name, (score, _) in scores.items():
        if name != MODEL:
            holdout[f"score_{name}"] = score
    metrics = _evaluation.holdout_metrics(holdout, scores)
    abc = _evaluation.abc_comparison(
        holdout, holdout["risk"].to_numpy(), _baselines.abc_flagged(holdout)
    )
    differences = pd.DataFrame(
        [
            {
                "baseline": name,
                **_evaluation.bootstrap_pr_auc_difference(
                    holdout["missed"].to_numpy(),
                    holdout["risk"].to_numpy(),
                    scores[name][0],
                    holdout["student_id"].to_numpy(),
                    settings.seed,
                ),
            }
            for name in ("logistic_regression", "school_only", "last_year_outcome")
        ]
    )
    fairness = fairness_audit(
        holdout, list(settings.protected_attributes), settings.min_n
    )

    # Drivers on the holdout: domain view per district and per school.
    contrib = _drivers.contributions(booster, holdout_x, settings.n_jobs)
    district_drivers = _drivers.global_drivers(contrib, spec)
    school_drivers = _drivers.global_drivers(contrib, spec, holdout["school_id"])
    sample = np.random.default_rng(settings.seed).permutation(len(holdout))[:2000]

    feature_columns = [name for name in spec.features if name in training_rows]
    training_frame = training_rows[[*KEYS, "school_year", *feature_columns, "missed"]]
    result = KpiResult(
        kpi=kpi,
        booster=booster,
        spec=spec,
        fitted=fitted,
        split=split,
        n_training_rows=len(training_rows),
        n_training_students=int(training_rows["student_id"].nunique()),
        holdout=holdout,
        metrics=metrics,
        abc=abc,
        pr_auc_differences=differences,
        fairness=fairness,
        district_drivers=district_drivers,
        school_drivers=school_drivers,
        contributions_sample=contrib[np.sort(sample)],
        features_sample=holdout_x[np.sort(sample)],
        reference_auc=reference_auc["roc_auc"],
        training_fingerprint=fingerprint(training_frame),
        holdout_fingerprint=fingerprint(
            holdout[[*KEYS, "school_year", *feature_columns, "missed"]]
        ),
    )
    logger.info(
        "trained %s: %s training rows, %s holdout rows, size %s, holdout ROC AUC %.3f "
        "(reference %.3f), PR AUC %.3f",
        kpi,
        len(training_rows),
        len(holdout),
        spec.size.label(),
        result.figure("roc_auc"),
        result.reference_auc,
        result.figure("pr_auc"),
    )
    return result


def _baseline_scores(
    kpi,
    training_rows,
    holdout,
    train_x,
    holdout_x,
    spec,
    school_snapshots,
    kpi_labels,
    settings,
) -> dict[str, tuple[np.ndarray, bool]]:
    """Each baseline's holdout scores and whether they are probabilities."""
    train_y = training_rows["missed"].to_numpy()
    base_rate = float(train_y.mean())
    categorical_positions = [spec.features.index(name) for name in spec.categories]
    logistic = _baselines.fit_logistic(train_x, train_y, categorical_positions)
    school_names = _baselines.school_columns(school_snapshots)
    school_train = _baselines.school_features(training_rows, school_snapshots)
    school_model = _baselines.fit_school_only(
        school_train, train_y, school_names, settings.seed, settings.n_jobs
    )
    school_holdout = _baselines.school_features(holdout, school_snapshots)
    return {
        "abc_flags": (_baselines.abc_score(holdout), False),
        "last_year_outcome": (
            _baselines.last_year_outcome(holdout, kpi_labels, kpi, base_rate),
            True,
        ),
        "logistic_regression": (logistic.predict_proba(holdout_x)[:, 1], True),
        "school_only": (
            school_model.predict(school_holdout, num_threads=settings.n_jobs),
            True,
        ),
    }
