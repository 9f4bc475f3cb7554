"""One LightGBM model per KPI: model size, fit and calibration.

Checkpoint is a feature, not a separate model: ``days_into_year`` (days from the start
of the school year to ``as_of_date``) lets one model per KPI learn how much each
indicator says at each point of the year, from four times the rows a per-checkpoint
model would see, and it works for an ad-hoc as-of date between checkpoints.

Calibration keeps drivers meaningful: the booster's raw margin (log-odds) is what the
drivers decompose, and the calibrated risk is a monotone function of it (Platt
scaling, ``risk = sigmoid(slope * margin + intercept)``), so ranking, ROC AUC and PR AUC
are the booster's own. Platt's slope and intercept are fitted on out-of-fold margins of
the training years only (see ``_splits``).

Model size is chosen for the speed of exact TreeSHAP, whose cost grows with trees x
leaves x depth squared: among the candidate sizes, the cheapest whose out-of-fold ROC
AUC is within ``AUC_TOLERANCE`` of the best candidate's. The holdout is not used for
the choice; the report shows the holdout AUC of the chosen size next to the 300-tree,
31-leaf reference.

Same data and seed give the same model: ``deterministic``, ``force_row_wise``, a fixed
seed and a fixed number of threads.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from training._catalog import DAYS_INTO_YEAR

logger = logging.getLogger(__name__)

AUC_TOLERANCE = 0.005
LEARNING_RATE = 0.05
# A fit gets one thread per this many rows, up to ``n_jobs``. On these shared 2-core
# machines a second thread costs more than it gives: 100 trees on 143,000 rows took
# 3.9 s on one thread and 14 to 35 s on two while other work ran; a 7,200-row fit
# 2.6 s against 15 to 23 s. The count depends on the data only, so the same data
# still gives the same model.
ROWS_PER_THREAD = 1_000_000


@dataclass(frozen=True)
class ModelSize:
    """Trees, leaves per tree and depth cap (-1: none) of a boosted model."""

    n_trees: int
    num_leaves: int
    max_depth: int

    @property
    def shap_cost(self) -> float:
        """Relative cost of exact TreeSHAP: trees x leaves x depth squared."""
        depth = self.max_depth if self.max_depth > 0 else self.num_leaves - 1
        depth = min(depth, self.num_leaves - 1)
        return self.n_trees * self.num_leaves * depth**2

    def label(self) -> str:
        """``"100 trees x 15 leaves (depth <= 4)"``."""
        depth = f"depth <= {self.max_depth}" if self.max_depth > 0 else "any depth"
        return f"{self.n_trees} trees x {self.num_leaves} leaves ({depth})"


REFERENCE_SIZE = ModelSize(300, 31, -1)
# (num_leaves, max_depth, numbers of trees). Unbounded 31-leaf trees are not a
# candidate: their TreeSHAP costs 30 to 50 times a depth-3 tree's, and fitting them
# once per fold took most of the training time. They stay the reference the chosen
# size is compared with on the holdout, so a loss from leaving them out shows there.
CANDIDATES = (
    (7, 3, (50, 100, 200, 300)),
    (15, 4, (50, 100, 200, 300)),
)


def booster_params(size: ModelSize, seed: int, n_jobs: int) -> dict:
    """LightGBM parameters that make a fit reproducible bit for bit."""
    return {
        "objective": "binary",
        "learning_rate": LEARNING_RATE,
        "num_leaves": size.num_leaves,
        "max_depth": size.max_depth,
        "min_data_in_leaf": 40,
        "lambda_l2": 1.0,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": n_jobs,
        "verbose": -1,
    }


def fit_booster(
    features: np.ndarray,
    missed: np.ndarray,
    feature_names: list[str],
    categorical: list[str],
    size: ModelSize,
    seed: int,
    n_jobs: int,
) -> lgb.Booster:
    """Fit one binary booster on a float matrix (categoricals integer-coded)."""
    threads = max(1, min(n_jobs, features.shape[0] // ROWS_PER_THREAD))
    dataset = lgb.Dataset(
        features,
        label=missed,
        feature_name=feature_names,
        categorical_feature=categorical or "auto",
        free_raw_data=True,
    )
    return lgb.train(
        booster_params(size, seed, threads), dataset, num_boost_round=size.n_trees
    )


@dataclass
class Calibration:
    """Platt scaling: ``risk = sigmoid(slope * margin + intercept)``."""

    slope: float = 1.0
    intercept: float = 0.0

    def risk(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated probability from the booster's raw margin."""
        return expit(self.slope * np.asarray(margin, dtype=float) + self.intercept)


def fit_calibration(margin: np.ndarray, missed: np.ndarray) -> Calibration:
    """Platt scaling fitted on out-of-fold margins; identity if it would flip ranks."""
    regression = LogisticRegression(C=1e6).fit(margin.reshape(-1, 1), missed)
    slope = float(regression.coef_[0, 0])
    if slope <= 0:
        logger.warning("Platt slope %.3f is not positive: calibration left out", slope)
        return Calibration()
    return Calibration(slope, float(regression.intercept_[0]))


@dataclass
class FittedModel:
    """The booster, its calibration and how its size was chosen."""

    booster: lgb.Booster
    calibration: Calibration
    size: ModelSize
    # One row per candidate size: n_trees, num_leaves, max_depth, shap_cost, oof_auc.
    size_table: pd.DataFrame
    seconds: float


def fit_risk_model(
    features: np.ndarray,
    missed: np.ndarray,
    fold: np.ndarray,
    feature_names: list[str],
    categorical: list[str],
    seed: int,
    n_jobs: int,
) -> FittedModel:
    """Choose the size, calibrate out of fold and fit on all training rows."""
    started = time.perf_counter()
    margins = _out_of_fold_margins(
        features, missed, fold, feature_names, categorical, seed, n_jobs
    )
    size_table = pd.DataFrame(
        [
            {**asdict(size), "shap_cost": size.shap_cost, "oof_auc": _auc(missed, oof)}
            for size, oof in margins.items()
        ]
    )
    best = size_table["oof_auc"].max()
    good_enough = size_table[size_table["oof_auc"] >= best - AUC_TOLERANCE]
    chosen = good_enough.sort_values(["shap_cost", "n_trees"]).iloc[0]
    size = ModelSize(
        int(chosen["n_trees"]), int(chosen["num_leaves"]), int(chosen["max_depth"])
    )
    calibration = fit_calibration(margins[size], missed)
    booster = fit_booster(
        features, missed, feature_names, categorical, size, seed, n_jobs
    )
    seconds = time.perf_counter() - started
    return FittedModel(booster, calibration, size, size_table, seconds)


def _out_of_fold_margins(
    features, missed, fold, feature_names, categorical, seed, n_jobs
) -> dict[ModelSize, np.ndarray]:
    """Out-of-fold raw margins of every candidate size.

    One fit per fold and leaf shape with the most trees; fewer trees are read from the
    same fit (``num_iteration``), since boosting adds trees one after another.
    """
    margins: dict[ModelSize, np.ndarray] = {}
    for num_leaves, max_depth, tree_counts in CANDIDATES:
        most_trees = max(tree_counts)
        for n_trees in tree_counts:
            margins[ModelSize(n_trees, num_leaves, max_depth)] = np.zeros(missed.size)
        for held_out in np.unique(fold):
            inside = fold != held_out
            booster = fit_booster(
                features[inside],
                missed[inside],
                feature_names,
                categorical,
                ModelSize(most_trees, num_leaves, max_depth),
                seed,
                n_jobs,
            )
            for n_trees in tree_counts:
                size = ModelSize(n_trees, num_leaves, max_depth)
                margins[size][~inside] = booster.predict(
                    features[~inside], raw_score=True, num_iteration=n_trees
                )
    return margins


def _auc(missed: np.ndarray, score: np.ndarray) -> float:
    if missed.min() == missed.max():
        return math.nan
    return float(roc_auc_score(missed, score))


@dataclass
class ModelSpec:
    """Everything but the booster that scoring needs, stored as JSON beside the model.

    ``features`` is the booster's column order. ``categories`` maps each string
    feature to its values; a value is coded by its position, an unknown one is
    missing. ``references`` maps a checkpoint (``MM-DD``, or ``""`` for any date) to
    each feature's district median in the training years: the reference point a
    driver is read against. ``grades`` are the grades the KPI applies to.
    """

    kpi: str
    features: list[str]
    domains: dict[str, str]
    templates: dict[str, str]
    kinds: dict[str, str]
    protected: list[str]
    categories: dict[str, list[str]]
    calibration: Calibration
    references: dict[str, dict[str, float]]
    school_year_start: str
    size: ModelSize
    # Grades that had a label for this KPI in any labelled year (empty: any grade).
    # A KPI such as ELA proficiency is measured in tested grades only.
    grades: list[float] = field(default_factory=list)

    def to_json(self) -> str:
        """The spec as JSON (NaN medians become null)."""
        data = asdict(self)
        data["references"] = {
            checkpoint: {
                name: (None if value is None or math.isnan(value) else value)
                for name, value in medians.items()
            }
            for checkpoint, medians in self.references.items()
        }
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        """The spec back from :meth:`to_json`."""
        data = json.loads(text)
        # Keys a newer version of OnTrack may add are ignored, not refused.
        data = {key: value for key, value in data.items() if key in _SPEC_FIELDS}
        data["calibration"] = Calibration(**data["calibration"])
        data["size"] = ModelSize(**data["size"])
        data["references"] = {
            checkpoint: {
                name: (math.nan if value is None else value)
                for name, value in medians.items()
            }
            for checkpoint, medians in data["references"].items()
        }
        return cls(**data)


_SPEC_FIELDS = {spec_field.name for spec_field in fields(ModelSpec)}


def days_into_year(as_of_date: pd.Series, school_year_start: str) -> np.ndarray:
    """Days from the first day of the school year to ``as_of_date`` (0 on that day).

    The school year is the one ``as_of_date`` falls in: with ``school_year_start =
    "08-01"``, 2023-10-01 is 61 days in (August and September have 31 + 30 days), and
    2024-02-01 is 184 days into the year that began on 2023-08-01.
    """
    month, day = (int(part) for part in school_year_start.split("-"))
    dates = _calendar_days(as_of_date)
    # A scoring run has one or a few dates: work them out once each.
    unique_dates, rows = np.unique(dates, return_inverse=True)
    days = np.empty(unique_dates.size)
    for position, value in enumerate(unique_dates.astype(object)):
        start = dt.date(value.year, month, day)
        if start > value:
            start = dt.date(value.year - 1, month, day)
        days[position] = (value - start).days
    return days[rows.reshape(-1)]


def _calendar_days(dates) -> np.ndarray:
    """Dates as ``datetime64[D]``: numpy's own conversion where it can, else pandas'.

    Numpy reads ``datetime.date`` objects, ISO dates and ``datetime64`` columns in a
    few microseconds; pandas also reads timestamps with a time of day or a zone.
    """
    try:
        return np.asarray(dates, dtype="datetime64[D]")
    except (TypeError, ValueError):
        return pd.to_datetime(np.asarray(dates)).to_numpy(dtype="datetime64[D]")


def feature_matrix(student_snapshots: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The booster's float input matrix, columns in ``spec.features`` order."""
    missing = [
        name
        for name in spec.features
        if name != DAYS_INTO_YEAR and name not in student_snapshots
    ]
    if missing:
        raise ValueError(
            f"student_snapshots: missing column(s) {', '.join(missing)} that the "
            f"{spec.kpi} model reads; expected every feature of its spec"
        )
    n = len(student_snapshots)
    matrix = np.empty((n, len(spec.features)), dtype=np.float64)
    numeric = [
        (position, name)
        for position, name in enumerate(spec.features)
        if name != DAYS_INTO_YEAR and name not in spec.categories
    ]
    positions = [position for position, _ in numeric]
    columns = student_snapshots[[name for _, name in numeric]]
    try:
        # One conversion for the whole block: a few microseconds for one student.
        matrix[:, positions] = columns.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        for position, name in numeric:
            matrix[:, position] = pd.to_numeric(
                columns[name], errors="coerce"
            ).to_numpy(dtype=float, na_value=np.nan)
    for position, name in enumerate(spec.features):
        if name == DAYS_INTO_YEAR:
            matrix[:, position] = days_into_year(
                student_snapshots["as_of_date"], spec.school_year_start
            )
        elif name in spec.categories:
            codes = pd.Categorical(
                student_snapshots[name], categories=spec.categories[name]
            ).codes
            matrix[:, position] = np.where(codes < 0, np.nan, codes)
    return matrix


def record_matrix(records: Sequence[Mapping[str, Any]], spec: ModelSpec) -> np.ndarray:
    """The booster's input matrix from plain records (dicts), without pandas.

    The same matrix :func:`feature_matrix` makes from a frame of the same rows: a
    missing key or a None is missing (NaN), a category is coded by its position in
    ``spec.categories`` and an unknown one is missing. Building a frame cost more
    than the model for the few students a request to the service usually holds.
    """
    matrix = np.empty((len(records), len(spec.features)), dtype=np.float64)
    for position, name in enumerate(spec.features):
        if name == DAYS_INTO_YEAR:
            matrix[:, position] = days_into_year(
                [record["as_of_date"] for record in records], spec.school_year_start
            )
        elif name in spec.categories:
            codes = {value: code for code, value in enumerate(spec.categories[name])}
            matrix[:, position] = [
                codes.get(record.get(name), np.nan) for record in records
            ]
        else:
            try:
                matrix[:, position] = [record.get(name) for record in records]
            except (TypeError, ValueError):
                raise ValueError(
                    f"records: {name!r} must be a number or missing in every record"
                ) from None
    return matrix
