"""Request and response bodies, with the student record generated from the catalog.

A *record* is one row of the student snapshot as a client sends it: the keys and
context (``student_id``, ``school_id``, ``as_of_date``, ...), every model input the
feature catalog lists (the catalog of the served district's snapshots), the ABC
flags and the protected attributes. Feature values may be missing (absent or
``null``) but never ``NaN`` or infinite, never a string where a number belongs (a
category of a flat table is text), and never out of their range: rates, shares and
0/1 flags lie in [0, 1] and counts are at least 0, so an attendance rate of 1.7 is
refused with the field named. Day counts are at most 366, ``grade`` is a whole
number, ``checkpoint`` a real month-day, and a record must agree with itself:
``days_absent`` at most ``days_enrolled``, suspensions at most incidents, and
``as_of_date`` inside ``school_year``. A record with no indicator at all (only keys,
context and protected attributes) is refused rather than scored at the base rate.
Unknown columns are refused too, so a misspelt column cannot be silently scored as
missing.

Responses are JSON without ``NaN``: a missing value is ``null``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from features import GENDER_CODES, RACE_ETHNICITY_CODES

Tier = Literal["high", "moderate", "low"]
# A KPI measured in some grades only (a state test, say) does not apply to a
# record of another grade: no risk, no drivers.
NOT_APPLICABLE = "not_applicable"
ScoredTier = Literal["high", "moderate", "low", "not_applicable"]
# At most this many records per call whatever the config says: a request body stays
# under about 10 MB, and one call cannot hold the worker for long.
MAX_RECORDS = 10_000
# Dates a snapshot can have (both ends inclusive); far-off dates (year 1 or 9999)
# are refused as input errors rather than overflowing date arithmetic downstream.
EARLIEST_DATE = dt.date(1990, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)

# The codes ingest stores, "not_reported" where the export left the field empty.
RACE_ETHNICITY = Literal[RACE_ETHNICITY_CODES]  # type: ignore[valid-type]
GENDER = Literal[GENDER_CODES]  # type: ignore[valid-type]
# Counts of days within one school year (a leap year has 366).
MAX_DAYS = 366
DAY_COUNTS = (
    "days_enrolled",
    "days_absent",
    "longest_absence_streak",
    "days_removed",
    "days_since_entry",
)
# (smaller, larger): the first count can never exceed the second for one student,
# e.g. a suspension is the action taken on an incident. A sum of several columns
# on the left is compared as a sum; a rule whose columns are missing is skipped.
CROSS_FIELD_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("days_absent",), "days_enrolled"),
    (("in_school_suspensions", "out_of_school_suspensions"), "incidents"),
    (("prior_suspensions",), "prior_incidents"),
)
ABC_FLAGS = ("abc_attendance", "abc_behaviour", "abc_course")
# Snapshot columns that are neither keys nor catalog features; accepted (so a
# snapshot row can be sent as it is) and not used by the models.
OTHER_SNAPSHOT_COLUMNS = {"marks_so_far": (0, None), "abc_any_at_risk": (0, 1)}
# The range of each contract column (docs/CONTRACTS.md); ``None`` is unbounded.
# A catalog feature not listed takes its range from its kind (see ``_bounds``).
KNOWN_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "days_enrolled": (0, MAX_DAYS),
    "days_absent": (0, MAX_DAYS),
    "attendance_rate": (0, 1),
    "unexcused_share": (0, 1),
    "tardies": (0, None),
    "longest_absence_streak": (0, MAX_DAYS),
    "attendance_rate_last_20": (0, 1),
    # A difference of two rates.
    "attendance_trend": (-1, 1),
    "prior_attendance_rate": (0, 1),
    "prior_chronic_absence": (0, 1),
    "incidents": (0, None),
    "in_school_suspensions": (0, None),
    "out_of_school_suspensions": (0, None),
    "days_removed": (0, MAX_DAYS),
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
    "days_since_entry": (0, MAX_DAYS),
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


def _whole_grade(grade: float) -> float:
    if grade != int(grade):
        low, high = KNOWN_BOUNDS["grade"]
        raise PydanticCustomError(
            "whole_number",
            "grade {grade} is not a whole number (expected {low} for "
            "pre-kindergarten, 0 for kindergarten, up to {high})",
            {"grade": grade, "low": int(low or 0), "high": int(high or 0)},
        )
    return grade


def _real_month_day(checkpoint: str) -> str:
    month, day = int(checkpoint[:2]), int(checkpoint[3:])
    try:
        # 2000 is a leap year, so 02-29 is a real checkpoint.
        dt.date(2000, month, day)
    except ValueError:
        raise PydanticCustomError(
            "month_day",
            "checkpoint '{checkpoint}' is not a real month-day (expected MM-DD, "
            "e.g. 10-01)",
            {"checkpoint": checkpoint},
        ) from None
    return checkpoint


def _grade_field() -> Any:
    low, high = KNOWN_BOUNDS["grade"]
    grade = Annotated[float, Field(ge=low, le=high), AfterValidator(_whole_grade)]
    return (grade | None, None)


def _school_year_span(school_year: int, start: str) -> tuple[dt.date, dt.date]:
    """The first and last day (both inclusive) of a school year named by its spring.

    With the start ``08-01``, school year 2025 runs from 2024-08-01 to 2025-07-31.
    """
    month, day = int(start[:2]), int(start[3:])
    first = dt.date(school_year - 1, month, day)
    return first, dt.date(school_year, month, day) - dt.timedelta(days=1)


def _record_problems(
    record: BaseModel, indicators: Sequence[str], school_year_start: str
) -> list[InitErrorDetails]:
    """What a record gets wrong across fields, each with the field to blame."""
    values = dict(record)
    problems: list[InitErrorDetails] = []

    # Counts that can never exceed another count of the same student.
    for smaller, larger in CROSS_FIELD_RULES:
        parts = [values.get(name) for name in smaller]
        total = values.get(larger)
        if total is None or any(part is None for part in parts):
            continue
        if sum(parts) > total:
            named = " + ".join(smaller)
            problems.append(
                InitErrorDetails(
                    type=PydanticCustomError(
                        "more_than_" + larger,
                        "{named} ({value}) is more than {larger} ({total}); "
                        "expected at most {larger}",
                        {
                            "named": named,
                            "value": f"{sum(parts):g}",
                            "larger": larger,
                            "total": f"{total:g}",
                        },
                    ),
                    loc=(smaller[0],),
                    input=values[smaller[0]],
                )
            )

    # as_of_date inside the school year it is said to belong to.
    school_year, as_of_date = values.get("school_year"), values.get("as_of_date")
    if school_year is not None and as_of_date is not None:
        first, last = _school_year_span(school_year, school_year_start)
        if not first <= as_of_date <= last:
            problems.append(
                InitErrorDetails(
                    type=PydanticCustomError(
                        "date_outside_school_year",
                        "as_of_date {date} is not in school year {year}, which runs "
                        "from {first} to {last} (both inclusive)",
                        {
                            "date": as_of_date.isoformat(),
                            "year": school_year,
                            "first": first.isoformat(),
                            "last": last.isoformat(),
                        },
                    ),
                    loc=("school_year",),
                    input=school_year,
                )
            )

    # A record without any indicator would be scored at the base rate, with
    # drivers about data it never held.
    if indicators and all(values.get(name) is None for name in indicators):
        problems.append(
            InitErrorDetails(
                type=PydanticCustomError(
                    "no_indicator",
                    "the record holds no indicator; send at least one feature "
                    "of the catalog (e.g. {example})",
                    {"example": indicators[0]},
                ),
                loc=(),
                input=None,
            )
        )
    return problems


def record_model(
    catalog: Mapping[str, Any], school_year_start: str = "08-01"
) -> type[BaseModel]:
    """The pydantic model of one student record, one optional field per feature.

    ``catalog`` maps a feature name to its entry (``domain``, ``template``,
    ``protected`` and optionally ``kind`` or ``lower``/``upper``).
    ``school_year_start`` (``MM-DD``, the district's) decides which dates a given
    ``school_year`` holds.
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
            Annotated[
                str, Field(pattern=r"^\d{2}-\d{2}$"), AfterValidator(_real_month_day)
            ]
            | None,
            Field(None, description="MM-DD, or absent for an ad-hoc date."),
        ),
        "grade": _grade_field(),
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
    indicators = [
        name
        for name in names
        if not catalog_entry(catalog.get(name), "protected", False) and name in catalog
    ]

    def check_record(record: BaseModel) -> BaseModel:
        problems = _record_problems(record, indicators, school_year_start)
        if problems:
            raise ValidationError.from_exception_data("StudentRecord", problems)
        return record

    return create_model(
        "StudentRecord",
        __config__=_RECORD_CONFIG,
        __doc__="One student's snapshot row; every feature may be missing (null).",
        __validators__={"check_record": model_validator(mode="after")(check_record)},
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
    # None (with tier not_applicable) for a grade the KPI is not measured in.
    risk: float | None
    tier: ScoredTier
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

    ``base_value`` plus every feature's ``contribution`` equals ``margin``. For a
    grade the KPI is not measured in, tier is ``not_applicable`` and there is no
    risk and no contribution.
    """

    kpi: str
    model_version: str
    risk: float | None
    tier: ScoredTier
    base_value: float | None
    margin: float | None
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
