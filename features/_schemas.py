"""Declared schemas of the canonical tables, checked on the text of an export.

Every table is a :class:`TableSpec`: a pandera schema over the *text* of the table (each
value a string, surrounding blanks removed, an empty cell already turned into a missing
value), the columns that identify one row (its key), the other tables it refers to and
whether every export must contain it.

Values are checked as text and converted to their types only once they pass, so that
an identifier such as ``00123`` is never read as the number 123, and so that a reason
can quote the value exactly as the district wrote it. Each column's ``metadata`` says
how its text becomes a value (``kind``) and whether it is a personal field whose value
must never appear in a message (``personal``). :func:`parse` is the one place where text
becomes a typed value: the checks call it, and so does the conversion after
validation, so a value that passed a check always converts.

A check's ``error`` is the second half of a quarantine reason, after the column and
the value, for example ``date: '03/15/2024' is not a date in the expected format
YYYY-MM-DD``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc


class IngestError(ValueError):
    """An export that cannot be loaded: a refused table, unknown format, no folder."""


class ExportRefused(IngestError):
    """The whole run refused because a required table is missing or refused.

    Nothing is loaded and the warehouse is left as it was; ``ontrack ingest`` exits
    with 4, as for a refused optional table.
    """


class TableRefused(IngestError):
    """One table refused as a whole: a missing required column, an unreadable file."""

    def __init__(self, table: str, message: str) -> None:
        super().__init__(message)
        self.table = table


# How a column's text becomes a value, and the DuckDB type that stores it.
SQL_TYPES = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "code": "VARCHAR",
    "date": "DATE",
    "integer": "INTEGER",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "school_year": "INTEGER",
}
ARROW_TYPES = {
    "id": pyarrow.string(),
    "text": pyarrow.string(),
    "code": pyarrow.string(),
    "date": pyarrow.date32(),
    "integer": pyarrow.int32(),
    "number": pyarrow.float64(),
    "boolean": pyarrow.bool_(),
    "school_year": pyarrow.int32(),
}

DATE_FORMAT = "%Y-%m-%d"
TRUE_WORDS = ("true", "1", "yes", "y")
FALSE_WORDS = ("false", "0", "no", "n")

NOT_A_DATE = "is not a date in the expected format YYYY-MM-DD"
NOT_A_CALENDAR_DATE = "is not a real calendar date"
NOT_A_WHOLE_NUMBER = "is not a whole number"
NOT_A_NUMBER = "is not a number"
NOT_A_BOOLEAN = "is not a boolean (expected true/false, 1/0, yes/no or y/n)"
NOT_A_SCHOOL_YEAR = (
    "is not a school year in the expected formats YYYY (spring year) or YYYY-YYYY"
)
NOT_A_CODE = "is not a known code (expected one of: {codes})"
OUT_OF_RANGE = "is outside the allowed range {low} to {high}"
NOT_A_BIRTH_DATE = "is not a birth date from {low} to yesterday"
# Plausible bounds: a value outside them is a typing or export error, never a
# student's real record. No student now in school was born before 1900; a school
# year has at most 366 days, so no incident removes a student for longer; state
# tests report scale scores in the hundreds or low thousands (the demo's about
# 2,400 to 2,800), so 10,000 leaves room for any scale and catches 1e23.
EARLIEST_BIRTH = dt.date(1900, 1, 1)
MAX_DAYS_REMOVED = 366
MAX_SCALE_SCORE = 10_000
BELOW = "is below {low}"
# pandera's own name for a missing value in a column that does not allow one.
MISSING_VALUE_CHECK = "not_nullable"
MISSING_VALUE = "required value is missing"

_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
_INTEGER_PATTERN = r"^[+-]?\d+(\.0*)?$"
_NUMBER_PATTERN = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_SCHOOL_YEAR_PATTERN = r"^(\d{4})(-\d{4})?$"


def parse(kind: str, text: pyarrow.Array, codes: tuple[str, ...] = ()) -> pyarrow.Array:
    """Typed values of ``text`` for a ``kind`` of column; missing where unparsable.

    ``text`` holds stripped strings with missing values for empty cells. A code must
    already be lower-case (see :func:`normalise`).
    """
    if isinstance(text, pyarrow.ChunkedArray):
        text = text.combine_chunks()
    text = text.cast(pyarrow.string())
    if kind in ("id", "text"):
        return text
    if kind == "code":
        return pc.if_else(pc.is_in(text, pyarrow.array(codes)), text, None)
    if kind == "date":
        # strptime alone rolls 2023-02-29 over to 1 March: insist on a round trip.
        # (A cast to text writes ISO dates, and is 15 times faster than strftime.)
        stamps = pc.strptime(text, format=DATE_FORMAT, unit="s", error_is_null=True)
        dates = stamps.cast(pyarrow.date32())
        return pc.if_else(pc.equal(dates.cast(pyarrow.string()), text), dates, None)
    if kind == "boolean":
        words = pc.utf8_lower(text)
        truth = pc.if_else(pc.is_in(words, pyarrow.array(TRUE_WORDS)), True, None)
        return pc.if_else(pc.is_in(words, pyarrow.array(FALSE_WORDS)), False, truth)
    if kind == "number":
        shaped = pc.match_substring_regex(text, _NUMBER_PATTERN)
        return pc.if_else(shaped, text, None).cast(pyarrow.float64())
    if kind == "integer":
        shaped = pc.match_substring_regex(text, _INTEGER_PATTERN)
        numbers = pc.if_else(shaped, text, None).cast(pyarrow.float64())
        in_range = pc.less_equal(pc.abs(numbers), 2**31 - 1)
        return pc.if_else(in_range, numbers, None).cast(pyarrow.int32())
    if kind == "school_year":
        return _parse_school_year(text)
    raise ValueError(
        f"column kind {kind!r} is unknown; expected one of {list(SQL_TYPES)}"
    )


def _parse_school_year(text: pyarrow.Array) -> pyarrow.Array:
    # "2024" is the year August 2023 to June 2024; "2023-2024" names the same year and
    # must be two consecutive years, so "2023-2025" is refused.
    shaped = pc.match_substring_regex(text, _SCHOOL_YEAR_PATTERN)
    text = pc.if_else(shaped, text, None)
    spring = pc.utf8_slice_codeunits(text, -4).cast(pyarrow.int32())
    long_form = pc.equal(pc.utf8_length(text), 9)
    autumn = pc.utf8_slice_codeunits(text, 0, 4).cast(pyarrow.int32())
    consecutive = pc.equal(pc.subtract(spring, autumn), 1)
    valid = pc.or_(pc.invert(long_form), consecutive)
    return pc.if_else(valid, spring, None)


def normalise(kind: str, text: pyarrow.Array) -> pyarrow.Array:
    """Blanks stripped, empty cells missing, codes and booleans in lower case."""
    text = pc.utf8_trim_whitespace(text.cast(pyarrow.string()))
    text = pc.if_else(pc.equal(text, ""), None, text)
    if kind in ("code", "boolean"):
        text = pc.utf8_lower(text)
    return text


def as_arrow(text: pd.Series) -> pyarrow.Array:
    """A pandas column of text as an Arrow array (no copy for Arrow strings)."""
    return pyarrow.array(text.array, type=pyarrow.large_string(), from_pandas=True)


def _parses(kind: str, codes: tuple[str, ...] = ()) -> Callable[[pd.Series], pd.Series]:
    def check(text: pd.Series) -> pd.Series:
        values = parse(kind, as_arrow(text), codes)
        return pd.Series(values.is_valid().to_numpy(zero_copy_only=False), text.index)

    return check


def _date_shaped(text: pd.Series) -> pd.Series:
    shaped = pc.match_substring_regex(as_arrow(text), _DATE_PATTERN)
    return pd.Series(shaped.to_numpy(zero_copy_only=False), text.index)


def _real_date(text: pd.Series) -> pd.Series:
    # Text of the wrong shape passes here: the shape check has reported it already.
    values = parse("date", as_arrow(text))
    shaped = pc.match_substring_regex(as_arrow(text), _DATE_PATTERN)
    real = pc.or_(pc.invert(shaped), values.is_valid())
    return pd.Series(real.to_numpy(zero_copy_only=False), text.index)


def _within(
    kind: str, low: float, high: float | None
) -> Callable[[pd.Series], pd.Series]:
    # Text that does not parse passes here: the type check has reported it already.
    def check(text: pd.Series) -> pd.Series:
        values = parse(kind, as_arrow(text)).to_pandas()
        inside = values.ge(low)
        if high is not None:
            inside &= values.le(high)
        return pd.Series((inside | values.isna()).to_numpy(), text.index)

    return check


def _born_between(low: dt.date) -> Callable[[pd.Series], pd.Series]:
    # Text that does not parse passes here: the date checks have reported it.
    def check(text: pd.Series) -> pd.Series:
        days = parse("date", as_arrow(text))
        inside = pc.and_(
            pc.greater_equal(days, pyarrow.scalar(low)),
            pc.less(days, pyarrow.scalar(dt.date.today())),
        )
        inside = pc.fill_null(inside, True)
        return pd.Series(inside.to_numpy(zero_copy_only=False), text.index)

    return check


def in_school_year(
    spring_year: pd.Series, day: pd.Series, years_before: int = 0
) -> pd.Series:
    """Whether ``day`` falls in the school year named by ``spring_year``, or in one
    of the ``years_before`` school years before it.

    The span is wide enough for any district's calendar: from 1 July of the year
    before to 31 August (both inclusive), so school year 2024 runs from 2023-07-01
    to 2024-08-31, a July start and a summer term included. It only catches a date
    filed under the wrong year (an entry date of 2019-08-23 in 2024); which year a
    date belongs to is the config's ``school_year_start``.
    """
    # Counted in months, with Arrow: 9999-12-31 is beyond a pandas timestamp.
    days = pyarrow.array(day, type=pyarrow.date32(), from_pandas=True)
    month = pd.Series(
        pc.add(pc.multiply(pc.year(days), 12), pc.month(days)).to_pandas(),
        index=day.index,
    )
    first = (spring_year - 1 - years_before) * 12 + 7
    return (month >= first) & (month <= spring_year * 12 + 8)


def _in_school_year_rule(column: str, years_before: int = 0) -> RowRule:
    span = ", 1 July of the year before to 31 August"
    if years_before:
        # A state test is often filed under the school year its score informs: the
        # Ed-Fi sample files its spring 2021 tests under 2021-2022.
        span = " or the year before, 1 July two years before to 31 August"
    return RowRule(
        f"{column} is outside its school_year{span}",
        ("school_year", column),
        lambda spring_year, day: in_school_year(spring_year, day, years_before),
    )


def _column(
    kind: str,
    error: str,
    *,
    required: bool = True,
    personal: bool = False,
    codes: tuple[str, ...] = (),
    extra: list[pa.Check] | None = None,
    when_empty: str | None = None,
) -> pa.Column:
    checks = list(extra or [])
    if kind == "date":
        # 2024-02-30 has the right shape but is no day: a reason of its own.
        checks[:0] = [
            pa.Check(_date_shaped, name=kind, error=error),
            pa.Check(_real_date, name="calendar_date", error=NOT_A_CALENDAR_DATE),
        ]
    elif kind not in ("id", "text"):
        checks.insert(0, pa.Check(_parses(kind, codes), name=kind, error=error))
    return pa.Column(
        checks=checks,
        nullable=not required,
        required=required,
        metadata={
            "kind": kind,
            "personal": personal,
            "codes": codes,
            "when_empty": when_empty,
        },
    )


def identifier(*, required: bool = True) -> pa.Column:
    """An identifier, kept as text: leading zeros are part of it."""
    return _column("id", "", required=required)


def text(*, required: bool = True, personal: bool = False) -> pa.Column:
    """Free text (a name); a personal field is never quoted in a message."""
    return _column("text", "", required=required, personal=personal)


def code(
    codes: tuple[str, ...], *, required: bool = True, when_empty: str | None = None
) -> pa.Column:
    """One of a fixed set of lower-case codes; the export may use any case.

    With ``when_empty``, the column must still be in the header but an empty cell is
    stored as that code (which is then one of the codes), so the row is kept.
    """
    if when_empty is not None:
        codes = (*codes, when_empty)
    error = NOT_A_CODE.format(codes=", ".join(codes))
    return _column("code", error, required=required, codes=codes, when_empty=when_empty)


def date(*, required: bool = True, personal: bool = False) -> pa.Column:
    """An ISO date, ``YYYY-MM-DD``; nothing else is guessed at."""
    return _column("date", NOT_A_DATE, required=required, personal=personal)


def birth_date() -> pa.Column:
    """A date of birth: in the past, and no earlier than :data:`EARLIEST_BIRTH`."""
    error = NOT_A_BIRTH_DATE.format(low=EARLIEST_BIRTH.isoformat())
    extra = [pa.Check(_born_between(EARLIEST_BIRTH), name="birth", error=error)]
    return _column("date", NOT_A_DATE, personal=True, extra=extra)


def boolean(*, required: bool = True) -> pa.Column:
    """``true``/``false``, ``1``/``0``, ``yes``/``no`` or ``y``/``n``, in any case."""
    return _column("boolean", NOT_A_BOOLEAN, required=required)


def school_year(*, required: bool = True) -> pa.Column:
    """A school year named by its spring year, ``2024``, or as ``2023-2024``."""
    return _column("school_year", NOT_A_SCHOOL_YEAR, required=required)


def integer(low: int, high: int, *, required: bool = True) -> pa.Column:
    """A whole number between ``low`` and ``high`` inclusive (``12.0`` is accepted)."""
    error = OUT_OF_RANGE.format(low=low, high=high)
    extra = [pa.Check(_within("integer", low, high), name="range", error=error)]
    return _column("integer", NOT_A_WHOLE_NUMBER, required=required, extra=extra)


def number(
    low: float | None = None, high: float | None = None, *, required: bool = True
) -> pa.Column:
    """A number, at least ``low`` and at most ``high`` when given."""
    extra = []
    if low is not None:
        error = BELOW.format(low=f"{low:g}")
        if high is not None:
            error = OUT_OF_RANGE.format(low=f"{low:g}", high=f"{high:g}")
        within = _within("number", low, high)
        extra.append(pa.Check(within, name="range", error=error))
    return _column("number", NOT_A_NUMBER, required=required, extra=extra)


@dataclass(frozen=True)
class RowRule:
    """A rule over two columns of one row; ``columns`` are quoted in the reason."""

    error: str
    columns: tuple[str, str]
    holds: Callable[[pd.Series, pd.Series], pd.Series]

    def check(self, columns: Mapping[str, pa.Column]) -> pa.Check:
        def values(table: pd.DataFrame, name: str) -> pd.Series:
            meta = columns[name].metadata
            return parse(meta["kind"], as_arrow(table[name]), meta["codes"]).to_pandas()

        def rule(table: pd.DataFrame) -> pd.Series:
            left, right = (values(table, name) for name in self.columns)
            holds = left.isna() | right.isna() | self.holds(left, right)
            return pd.Series(holds.to_numpy(), table.index)

        return pa.Check(rule, name=self.error, error=self.error)


@dataclass(frozen=True)
class Reference:
    """Every row's ``columns`` must be a key of ``table`` (after both are loaded)."""

    columns: tuple[str, ...]
    table: str


@dataclass(frozen=True)
class TableSpec:
    """One canonical table: its schema over text, key, references and rules.

    ``enrolled_on`` names the date column of a table whose rows need the student to be
    enrolled at the row's school on that date (``entry_date <= date <= exit_date``,
    both ends inclusive; an empty ``exit_date`` is an open stay).
    """

    name: str
    columns: Mapping[str, pa.Column]
    key: tuple[str, ...]
    required: bool
    row_rules: tuple[RowRule, ...] = ()
    references: tuple[Reference, ...] = ()
    enrolled_on: str | None = None
    schema: pa.DataFrameSchema = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        schema = pa.DataFrameSchema(
            dict(self.columns),
            checks=[rule.check(self.columns) for rule in self.row_rules],
            name=self.name,
        )
        object.__setattr__(self, "schema", schema)

    @property
    def kinds(self) -> dict[str, str]:
        return {name: column.metadata["kind"] for name, column in self.columns.items()}

    @property
    def required_columns(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.required]

    @property
    def personal_columns(self) -> set[str]:
        return {
            name for name, column in self.columns.items() if column.metadata["personal"]
        }

    def codes(self, name: str) -> tuple[str, ...]:
        return self.columns[name].metadata["codes"]

    def when_empty(self, name: str) -> str | None:
        """The code an empty cell of column ``name`` is stored as, if any."""
        return self.columns[name].metadata["when_empty"]

    def rule_columns(self, error: str) -> tuple[str, ...]:
        """The columns a row rule with this ``error`` quotes in its reason."""
        for rule in self.row_rules:
            if rule.error == error:
                return rule.columns
        raise KeyError(f"table {self.name} has no row rule {error!r}")


SCHOOL_LEVELS = ("elementary", "middle", "high")
GENDERS = ("female", "male", "nonbinary")
# What an empty gender or race/ethnicity is stored as: many exports hold no
# demographics for some or all students, and the student is kept so that fairness
# audits and public cells show a "not reported" group instead of losing them.
NOT_REPORTED = "not_reported"
RACES = (
    "hispanic",
    "white",
    "black",
    "asian",
    "two_or_more",
    "american_indian",
    "pacific_islander",
)
# Every code a stored gender or race/ethnicity may hold, for other packages.
GENDER_CODES = (*GENDERS, NOT_REPORTED)
RACE_ETHNICITY_CODES = (*RACES, NOT_REPORTED)
EXIT_REASONS = (
    "transfer",
    "left_district",
    "graduated",
    "dropped_out",
    "end_of_year",
    "other",
)
ABSENCE_CATEGORIES = ("excused", "unexcused", "tardy")
BEHAVIOR_CATEGORIES = (
    "minor",
    "disruption",
    "defiance",
    "fighting",
    "bullying",
    "substance",
    "weapon",
    "other",
)
ACTIONS = ("none", "in_school_suspension", "out_of_school_suspension", "expulsion")
SUBJECTS = ("ela", "math", "science", "social_studies", "other")
TESTED_SUBJECTS = ("ela", "math", "science")
PROGRAMS = ("tutoring", "mentoring", "attendance_intervention", "other")
# Pre-kindergarten is -1, kindergarten 0.
LOWEST_GRADE, HIGHEST_GRADE = -1, 12

_STUDENT = Reference(("student_id",), "students")
_SCHOOL = Reference(("school_id",), "schools")

# In dependency order: a table comes after every table it refers to.
TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "schools",
            {
                "school_id": identifier(),
                "school_name": text(),
                "school_level": code(SCHOOL_LEVELS),
                "lowest_grade": integer(LOWEST_GRADE, HIGHEST_GRADE),
                "highest_grade": integer(LOWEST_GRADE, HIGHEST_GRADE),
            },
            key=("school_id",),
            required=True,
            row_rules=(
                RowRule(
                    "lowest_grade is above highest_grade",
                    ("lowest_grade", "highest_grade"),
                    lambda lowest, highest: lowest <= highest,
                ),
            ),
        ),
        TableSpec(
            "students",
            {
                "student_id": identifier(),
                "birth_date": birth_date(),
                "gender": code(GENDERS, when_empty=NOT_REPORTED),
                "race_ethnicity": code(RACES, when_empty=NOT_REPORTED),
                "economically_disadvantaged": boolean(),
                "english_learner": boolean(),
                "disability": boolean(),
                "first_name": text(required=False, personal=True),
                "last_name": text(required=False, personal=True),
            },
            key=("student_id",),
            required=True,
        ),
        TableSpec(
            "enrollments",
            {
                "student_id": identifier(),
                "school_id": identifier(),
                "school_year": school_year(),
                "grade": integer(LOWEST_GRADE, HIGHEST_GRADE),
                "entry_date": date(),
                "exit_date": date(required=False),
                "exit_reason": code(EXIT_REASONS, required=False),
            },
            key=("student_id", "school_id", "entry_date"),
            required=True,
            row_rules=(
                RowRule(
                    "exit_date is before entry_date",
                    ("entry_date", "exit_date"),
                    lambda entry, exit_: entry <= exit_,
                ),
                _in_school_year_rule("entry_date"),
            ),
            references=(_STUDENT, _SCHOOL),
        ),
        TableSpec(
            "calendar",
            {"school_id": identifier(), "date": date()},
            key=("school_id", "date"),
            required=True,
            references=(_SCHOOL,),
        ),
        TableSpec(
            "attendance",
            {
                "student_id": identifier(),
                "school_id": identifier(),
                "date": date(),
                "category": code(ABSENCE_CATEGORIES),
                "fraction_missed": number(0, 1),
            },
            key=("student_id", "school_id", "date", "category"),
            required=False,
            row_rules=(
                RowRule(
                    "fraction_missed may be 0 only for category tardy",
                    ("category", "fraction_missed"),
                    lambda category, fraction: (fraction > 0) | (category == "tardy"),
                ),
            ),
            references=(_STUDENT, _SCHOOL),
            enrolled_on="date",
        ),
        TableSpec(
            "discipline",
            {
                "incident_id": identifier(),
                "student_id": identifier(),
                "school_id": identifier(),
                "date": date(),
                "behavior_category": code(BEHAVIOR_CATEGORIES),
                "action": code(ACTIONS),
                "days_removed": number(0, MAX_DAYS_REMOVED),
            },
            key=("incident_id", "student_id"),
            required=False,
            references=(_STUDENT, _SCHOOL),
            enrolled_on="date",
        ),
        TableSpec(
            "grades",
            {
                "student_id": identifier(),
                "school_id": identifier(),
                "school_year": school_year(),
                "term": identifier(),
                "term_end_date": date(),
                "course_id": identifier(),
                "subject": code(SUBJECTS),
                "mark": number(0, 100, required=False),
                "letter": text(required=False),
                # Empty when the export records no credits (a gradebook does not):
                # the credit ratio is then missing, never 0.
                "credits_attempted": number(0, required=False),
                "credits_earned": number(0, required=False),
            },
            key=("student_id", "school_id", "school_year", "term", "course_id"),
            required=False,
            row_rules=(_in_school_year_rule("term_end_date"),),
            references=(_STUDENT, _SCHOOL),
        ),
        TableSpec(
            "assessments",
            {
                "student_id": identifier(),
                "school_year": school_year(),
                "date": date(),
                "subject": code(TESTED_SUBJECTS),
                "scale_score": number(0, MAX_SCALE_SCORE),
                "performance_level": integer(1, 4),
                "proficient": boolean(),
            },
            key=("student_id", "subject", "date"),
            required=False,
            row_rules=(_in_school_year_rule("date", years_before=1),),
            references=(_STUDENT,),
        ),
        TableSpec(
            "programs",
            {
                "student_id": identifier(),
                "program": code(PROGRAMS),
                "begin_date": date(),
                "end_date": date(required=False),
            },
            key=("student_id", "program", "begin_date"),
            required=False,
            row_rules=(
                RowRule(
                    "end_date is before begin_date",
                    ("begin_date", "end_date"),
                    lambda begin, end: begin <= end,
                ),
            ),
            references=(_STUDENT,),
        ),
    )
}
REQUIRED_TABLES = tuple(name for name, spec in TABLES.items() if spec.required)
