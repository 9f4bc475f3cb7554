"""Request and response bodies, with the student record generated from the catalog.

A *record* is one row of the student snapshot as a client sends it: the keys and
context (``student_id``, ``school_id``, ``as_of_date``, ...), every model input the
feature catalog lists (the catalog of the served district's snapshots), the ABC
flags and the protected attributes. Feature values may be missing (absent or
``null``) but never ``NaN`` or infinite, never a string where a number belongs (a
category of a flat table is text), and never out of their range: rates, shares and
0/1 flags lie in [0, 1] and counts are at least 0, so an attendance rate of 1.7 is
refused with the field named. Unknown columns are refused too, so a misspelt column
cannot be silently scored as missing.

Responses are JSON without ``NaN``: a missing value is ``null``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

Tier = Literal["high", "moderate", "low"]
# At most this many records per call whatever the config says: a request body stays
# under about 10 MB, and one call cannot hold the worker for long.
MAX_RECORDS = 10_000
# Dates a snapshot can have (both ends inclusive); far-off dates (year 1 or 9999)
# are refused as input errors rather than overflowing date arithmetic downstream.
EARLIEST_DATE = dt.date(1990, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)

RACE_ETHNICITY = Literal[
    "hispanic",
    "white",
    "black",
    "asian",
    "two_or_more",
    "american_indian",
    "pacific_islander",
]
GENDER = Literal["female", "male", "nonbinary"]
ABC_FLAGS = ("abc_attendance", "abc_behaviour", "abc_course")
# Snapshot columns that are neither keys nor catalog features; accepted (so a
# snapshot row can be sent as it is) and not used by the models.
OTHER_SNAPSHOT_COLUMNS = {"marks_so_far": (0, None), "abc_any_at_risk": (0, 1)}
# The range of each contract column (docs/CONTRACTS.md); ``None`` is unbounded.
# A catalog feature not listed takes its range from its kind (see ``_bounds``).
KNOWN_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "days_enrolled": (0, None),
    "days_absent": (0, None),
    "attendance_rate": (0, 1),
    "unexcused_share": (0, 1),
    "tardies": (0, None),
    "longest_absence_streak": (0, None),
    "attendance_rate_last_20": (0, 1),
    # A difference of two rates.
    "attendance_trend": (-1, 1),
    "prior_attendance_rate": (0, 1),
    "prior_chronic_absence": (0, 1),
    "incidents": (0, None),
    "in_school_suspensions": (0, None),
    "out_of_school_suspensions": (0, None),
    "days_removed": (0, None),
    "prior_incidents": (0, None),
    "prior_suspensions": (0, None),
    "failing_marks": (0, None),
    "mean_core_mark": (0, 100),
    "latest_core_mark": (0, 100),
    "credit_ratio": (0, 1),
    "prior_failures": (0, None),
    "ela_scale_z": (None, None),
    "ela_proficient": (0, 1),
    "math_scale_z": (None, None),
    "math_proficient": (0, 1),
    "schools_this_year": (0, None),
    "schools_last_year": (0, None),
    "days_since_entry": (0, None),
    "new_to_district": (0, 1),
    # Pre-kindergarten is -1, kindergarten 0.
    "grade": (-1, 12),
    "over_age": (0, 1),
    "current_programs": (0, None),
    "in_tutoring": (0, 1),
    "in_mentoring": (0, 1),
    "disability": (0, 1),
    "english_learner": (0, 1),
    "economically_disadvantaged": (0, 1),
}
_KIND_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "rate": (0, 1),
    "share": (0, 1),
    "flag": (0, 1),
    "boolean": (0, 1),
    "count": (0, None),
}
# Protected attributes that are categories rather than 0/1 numbers.
_CATEGORICAL = {"race_ethnicity": RACE_ETHNICITY, "gender": GENDER}

_RECORD_CONFIG = ConfigDict(
    extra="forbid", strict=True, allow_inf_nan=False, frozen=True
)
_Id = Annotated[str, Field(min_length=1, max_length=64)]
_Category = Annotated[str, Field(min_length=1, max_length=64)]


def catalog_entry(entry: Any, key: str, default: Any = None) -> Any:
    """One attribute of a catalog entry, whether the entry is a mapping or an object."""
    if isinstance(entry, Mapping):
        return entry.get(key, default)
    return getattr(entry, key, default)


def _bounds(name: str, entry: Any) -> tuple[float | None, float | None]:
    """The catalog's own range if it gives one, else the contract's, else the kind's."""
    lower = catalog_entry(entry, "lower", catalog_entry(entry, "minimum"))
    upper = catalog_entry(entry, "upper", catalog_entry(entry, "maximum"))
    if lower is not None or upper is not None:
        return lower, upper
    if name in KNOWN_BOUNDS:
        return KNOWN_BOUNDS[name]
    return _KIND_BOUNDS.get(str(catalog_entry(entry, "kind", "")), (None, None))


def _number_field(lower: float | None, upper: float | None) -> Any:
    constraints = {}
    if lower is not None:
        constraints["ge"] = lower
    if upper is not None:
        constraints["le"] = upper
    return (Annotated[float, Field(**constraints)] | None, None)


def record_model(catalog: Mapping[str, Any]) -> type[BaseModel]:
    """The pydantic model of one student record, one optional field per feature.

    ``catalog`` maps a feature name to its entry (``domain``, ``template``,
    ``protected`` and optionally ``kind`` or ``lower``/``upper``).
    """
    fields: dict[str, Any] = {
        "student_id": (_Id | None, None),
        "school_id": (_Id | None, None),
        "as_of_date": (
            dt.date,
            Field(
                ge=EARLIEST_DATE,
                le=LATEST_DATE,
                description="Events strictly before this date are counted.",
            ),
        ),
        "school_year": (
            Annotated[int, Field(ge=EARLIEST_DATE.year, le=LATEST_DATE.year + 1)]
            | None,
            Field(None, description="Spring year; derived from as_of_date if absent."),
        ),
        "checkpoint": (
            Annotated[str, Field(pattern=r"^\d{2}-\d{2}$")] | None,
            Field(None, description="MM-DD, or absent for an ad-hoc date."),
        ),
        "grade": _number_field(*KNOWN_BOUNDS["grade"]),
    }
    for name in ABC_FLAGS:
        fields[name] = (Literal[0, 1, 2] | None, None)
    for name, bounds in OTHER_SNAPSHOT_COLUMNS.items():
        fields[name] = _number_field(*bounds)
    names = list(catalog)
    for name in (
        "race_ethnicity",
        "gender",
        "disability",
        "english_learner",
        "economically_disadvantaged",
    ):
        if name not in names:
            names.append(name)
    for name in names:
        if name in _CATEGORICAL:
            fields[name] = (_CATEGORICAL[name] | None, None)
        elif catalog_entry(catalog.get(name), "kind") == "category":
            # A flat table's text column (e.g. a parent's job); a value the model
            # never saw is scored as missing.
            fields[name] = (_Category | None, None)
        elif name not in fields:
            fields[name] = _number_field(*_bounds(name, catalog.get(name)))
    return create_model(
        "StudentRecord",
        __config__=_RECORD_CONFIG,
        __doc__="One student's snapshot row; every feature may be missing (null).",
        **fields,
    )


class Driver(BaseModel):
    """A feature that raises the student's risk, in plain words."""

    feature: str
    domain: str
    text: str


class StudentScore(BaseModel):
    student_id: str | None
    school_id: str | None
    risk: float | None
    tier: Tier
    drivers: list[Driver]


class KpiScores(BaseModel):
    kpi: str
    model_version: str
    students: list[StudentScore]


class ScoreResponse(BaseModel):
    """Per KPI, each record's risk, tier and drivers, in the order sent."""

    n_students: int
    kpis: list[KpiScores]


class FeatureContribution(BaseModel):
    feature: str
    domain: str
    contribution: float
    value: float | str | None
    reference: float | str | None
    protected: bool


class KpiExplanation(BaseModel):
    """One KPI's risk split exactly into contributions (log-odds).

    ``base_value`` plus every feature's ``contribution`` equals ``margin``.
    """

    kpi: str
    model_version: str
    risk: float
    tier: Tier
    base_value: float
    margin: float
    by_domain: dict[str, float]
    by_feature: list[FeatureContribution]


class ExplainResponse(BaseModel):
    student_id: str | None
    school_id: str | None
    kpis: list[KpiExplanation]


class AtRiskStudent(BaseModel):
    student_id: str
    grade: int | None
    risk: float
    tier: Tier
    drivers: list[Driver]


class AtRiskResponse(BaseModel):
    """A school's scored students for one KPI, riskiest first."""

    school_id: str
    kpi: str
    as_of_date: dt.date
    model_version: str
    n_students: int
    students: list[AtRiskStudent]


class SchoolProjection(BaseModel):
    """A school's (or the district's) projected year-end rate for one KPI."""

    school_id: str
    kpi: str
    as_of_date: dt.date | None
    n_students: int
    expected_rate: float | None
    rate_low: float | None
    rate_high: float | None
    target: float | None
    p_miss_target: float | None
    observed_rate_so_far: float | None = None


class SchoolRiskResponse(BaseModel):
    projections: list[SchoolProjection]


class ReloadResponse(BaseModel):
    model_versions: dict[str, str]
    as_of_date: dt.date | None


def finite(value: float | None) -> float | None:
    """A float for JSON: ``None`` for NaN, infinity or a missing value."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
