"""Risk models per KPI: fit, calibrate, evaluate, explain, register and score.

For each KPI of the district config, ``train_models`` fits one LightGBM model on the
student snapshots of earlier school years (every checkpoint; the time of year is a
feature) and evaluates it on the latest complete school year, a temporal holdout.
Risks are calibrated (Platt scaling of the raw margin) on the training years only. The
holdout figures (ROC AUC, PR AUC, Brier, calibration error, tie-aware precision and
recall at the top 5/10/20%, district-wide and within school) are set against the
baselines: the ABC flags at the same number flagged, last year's outcome, logistic
regression on the same features and a model of school-level features only. A fairness
audit disaggregates the figures by protected group; drivers come from exact TreeSHAP
contributions, summed into domains. Each run goes to MLflow with a model card; the
registered model ``ontrack-<kpi>`` moves its ``champion`` alias only when the new
version is not worse on the holdout.

``score_students`` scores a snapshot date with each champion and writes the scored
snapshot, the at-risk lists and the school KPI projections (Poisson-binomial).

On a flat student table, ``cross_validate_table`` gives stratified k-fold accuracy
and ROC AUC of the same model (size choice and calibration inside each fold), the
figures published results on such tables are usually given in.

For serving in process, ``load_champions(config)`` gives one :class:`Scorer` per KPI:
``Scorer.score(student_snapshots)`` returns risk, tier, drivers and model version per
row, ``Scorer.score_records(records)`` the same for plain dicts as
:class:`ScoredRows` (arrays, no frame: what the prediction service uses), and
``Scorer.explain(row)`` one student's contributions by domain and feature.
"""

from training._cross_validation import (
    CrossValidation,
    cross_validate,
    cross_validate_table,
    describe_cross_validation,
)
from training._jobs import (
    ScoringSummary,
    SnapshotError,
    TrainingSummary,
    load_champions,
    score_students,
    train_models,
)
from training._model import ModelSpec
from training._projections import poisson_binomial_pmf, project
from training._registry import CHAMPION_RULE
from training._scoring import ScoredRows, Scorer
from training._training import TrainingDataError

__all__ = [
    "CHAMPION_RULE",
    "CrossValidation",
    "ModelSpec",
    "ScoredRows",
    "Scorer",
    "ScoringSummary",
    "SnapshotError",
    "TrainingDataError",
    "TrainingSummary",
    "cross_validate",
    "cross_validate_table",
    "describe_cross_validation",
    "load_champions",
    "poisson_binomial_pmf",
    "project",
    "score_students",
    "train_models",
]
