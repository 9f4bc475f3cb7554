"""The baselines a model has to beat, scored on the same holdout rows.

- ABC flags: the attendance, behaviour and course-performance flags districts already
  use. As a ranking score the flag levels are added up (0 to 6); as a list, the
  students with any "at risk" flag (``abc_any_at_risk``), compared with the model's top
  students at the same number flagged.
- Last year's outcome: whether the student missed the same KPI the year before; a
  student with no label last year (new, or first year of data) gets the training
  years' base rate.
- Logistic regression on the model's own features (median-imputed with missing-value
  indicators, standardised; string features one-hot coded).
- School only: a small LightGBM on the ``school_*`` columns of the school snapshot at
  the student's school and date, and nothing about the student.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from training._model import ModelSize, fit_booster

ABC_LEVELS = ("abc_attendance", "abc_behaviour", "abc_course")
ABC_FLAG = "abc_any_at_risk"
SCHOOL_ONLY_SIZE = ModelSize(100, 7, 3)
BASELINES = ("abc_flags", "last_year_outcome", "logistic_regression", "school_only")


def abc_score(examples: pd.DataFrame) -> np.ndarray:
    """The sum of the three ABC flag levels (0 none, 1 early warning, 2 at risk).

    Snapshots without the flags (a flat student table has no events to raise
    them) score 0 everywhere: the baseline ranks nobody.
    """
    levels = examples.reindex(columns=list(ABC_LEVELS))
    return levels.fillna(0).sum(axis=1).to_numpy(dtype=float)


def abc_flagged(examples: pd.DataFrame) -> np.ndarray:
    """1 where any ABC flag is at risk, else 0 (0 everywhere without the flags)."""
    if ABC_FLAG not in examples:
        return np.zeros(len(examples))
    return examples[ABC_FLAG].fillna(0).to_numpy(dtype=float)


def last_year_outcome(
    examples: pd.DataFrame, kpi_labels: pd.DataFrame, kpi: str, base_rate: float
) -> np.ndarray:
    """Whether each student missed ``kpi`` in the previous school year (0/1).

    Students without a label that year get ``base_rate``.
    """
    previous = kpi_labels.loc[
        kpi_labels["kpi"] == kpi, ["student_id", "school_year", "missed"]
    ].drop_duplicates(["student_id", "school_year"])
    previous = previous.assign(school_year=previous["school_year"] + 1)
    joined = examples[["student_id", "school_year"]].merge(
        previous, on=["student_id", "school_year"], how="left"
    )
    return joined["missed"].astype(float).fillna(base_rate).to_numpy()


def fit_logistic(
    features: np.ndarray, missed: np.ndarray, categorical_positions: list[int]
):
    """Logistic regression on the same features; a fitted sklearn pipeline."""
    numeric = [
        i for i in range(features.shape[1]) if i not in set(categorical_positions)
    ]
    numeric_steps = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )
    steps = [("numeric", numeric_steps, numeric)]
    if categorical_positions:
        categorical_steps = make_pipeline(
            SimpleImputer(strategy="constant", fill_value=-1),
            OneHotEncoder(handle_unknown="ignore"),
        )
        steps.append(("categorical", categorical_steps, categorical_positions))
    model = make_pipeline(
        ColumnTransformer(steps), LogisticRegression(max_iter=2000, C=1.0)
    )
    return model.fit(features, missed)


def school_columns(school_snapshots: pd.DataFrame) -> list[str]:
    """The ``school_*`` columns, the only inputs of the school-only model."""
    return sorted(
        column
        for column in school_snapshots.columns
        if column.startswith("school_") and column != "school_id"
    )


def school_features(
    examples: pd.DataFrame, school_snapshots: pd.DataFrame
) -> np.ndarray:
    """Each row's school snapshot at its ``(school_id, as_of_date)``; NaN if none."""
    columns = school_columns(school_snapshots)
    schools = school_snapshots[["school_id", "as_of_date", *columns]].copy()
    schools["as_of_date"] = pd.to_datetime(schools["as_of_date"])
    keys = examples[["school_id", "as_of_date"]].copy()
    keys["as_of_date"] = pd.to_datetime(keys["as_of_date"])
    joined = keys.merge(
        schools.drop_duplicates(["school_id", "as_of_date"]),
        on=["school_id", "as_of_date"],
        how="left",
    )
    return joined[columns].to_numpy(dtype=float)


def fit_school_only(
    features: np.ndarray, missed: np.ndarray, names: list[str], seed: int, n_jobs: int
):
    """A small LightGBM on school-level features only."""
    return fit_booster(features, missed, names, [], SCHOOL_ONLY_SIZE, seed, n_jobs)
