"""The flat student table: one row per student, mapped by a TOML file.

Some data come as one row per student with the outcome already in it, rather than
as a district's event tables: the UCI student-performance set is one. Such a table
skips the event-level feature step. A mapping file says which column is the
student, which the school, which columns are protected attributes (and how their
values read as our codes), how each KPI label is computed from the columns, and
which columns the model may not see::

    [table]
    separator = ";"
    school_column = "school"
    school_year = 2006          # optional: the spring year the rows belong to
    # id_column = "student"     # without it, ids are the data row: "mat-0001", ...
    id_prefix = "mat-"

    [groups]
    gender = { column = "sex", values = { F = "female", M = "male" } }

    [labels]
    # true means the student MISSED the KPI's standard
    course_failure = "G3 < 10"

    [features]
    exclude = ["G1", "G2"]      # known only later in the year
    # columns = [...]           # or list the model inputs outright
    # The domain a driver is shown under (default "other") and its plain words:
    counts = ["absences"]       # whole numbers of at least 0
    domains = { absences = "attendance" }
    words = { absences = "{value} absences (median {reference})" }

    [[published]]               # optional: figures others published on the table
    include = ["G1", "G2"]      # the excluded columns they used
    accuracy = 0.919
    source = "Cortez and Silva 2008"

``read_student_table(..., include=["G1"])`` puts excluded columns back, for a
comparison with a setting that used them (``ontrack crossval --include``).

Every column a label reads is kept out of the features, so the outcome can never
leak into the inputs; group columns are kept out too (protected attributes are for
auditing, see ``docs/CONTRACTS.md``). The rest, unless excluded, are features:
numbers as floats, yes/no columns as 0/1 floats, text as pandas categories.

A column is a number column when more than half of its non-empty values are
numbers; its other values are typing mistakes (``age = "old"``) and their rows are
quarantined, so one bad cell never turns a whole column into a category. A column
listed in ``[features] counts`` is a number column whatever its values, and a value
that is not a whole number of at least 0 quarantines its row.

Rows that break a rule (no id, a repeated id, a group value the mapping does not
know, a label that cannot be computed, a value that is not a number in a number
column, a count that is not a whole number of at least 0) go to
``StudentTable.quarantine`` with the 1-based data row (``_row``) and the reason;
they are never dropped silently. A table with no row left is refused as a whole.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
import pandera.pandas as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)

# Our codes for each protected attribute (docs/CONTRACTS.md, students table).
GROUP_CODES: dict[str, tuple[str, ...]] = {
    "gender": ("female", "male", "nonbinary"),
    "race_ethnicity": (
        "hispanic",
        "white",
        "black",
        "asian",
        "two_or_more",
        "american_indian",
        "pacific_islander",
    ),
    "economically_disadvantaged": ("true", "false"),
    "english_learner": ("true", "false"),
    "disability": ("true", "false"),
}
_YES_NO = {"yes": 1.0, "no": 0.0, "true": 1.0, "false": 0.0}
_NAME = re.compile(r"`([^`]+)`|\b([A-Za-z_][A-Za-z0-9_]*)\b")

DUPLICATE_ID = "student_id {value!r} appears in more than one row"
MISSING_ID = "student_id is missing"
MISSING_SCHOOL = "school_id is missing"
UNMAPPED_GROUP = "{column}: {value!r} is not mapped to a {group} code (mapped: {known})"
NO_LABEL = "label {kpi} cannot be computed: {columns} missing"
NOT_A_NUMBER = (
    "{column}: {value!r} is not a number ({numbers} of {values} values of the "
    "column are)"
)
NOT_A_COUNT = "{column}: {value!r} is not a count (a whole number of at least 0)"
EMPTY_FILE = (
    "{source}: the file is empty; expected a header line and one row per student"
)
NO_ROW_KEPT = (
    "{source}: no student row to keep ({read} rows read, {quarantined} "
    "quarantined{reasons}); refused as a whole"
)
# Domains a flat table's column may be shown under: the event-level ones and "other".
TableDomain = Literal[
    "attendance", "behaviour", "course_performance", "assessment", "mobility", "other"
]


class StudentTableError(ValueError):
    """A student table or its mapping cannot be read as a whole."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Table(_Section):
    separator: str = Field(default=",", min_length=1, max_length=1)
    id_column: str | None = None
    id_prefix: str = ""
    school_column: str = Field(min_length=1)
    school_year: int | None = Field(default=None, ge=1900, le=2100)


class _Group(_Section):
    column: str = Field(min_length=1)
    values: dict[str, str] = Field(min_length=1)


class _Features(_Section):
    columns: list[str] | None = None
    exclude: list[str] = []
    # Counts (absences, past failures): whole numbers of at least 0.
    counts: list[str] = []
    domains: dict[str, TableDomain] = {}
    # Plain words of a driver, ``str.format``-ed with ``value`` and ``reference``.
    words: dict[str, str] = {}


class PublishedResult(_Section):
    """An accuracy someone published on the table, and the setting it belongs to.

    ``include`` names the excluded columns that setting used as inputs (empty: the
    mapping as it is); ``accuracy`` is a share in [0, 1].
    """

    include: list[str] = []
    accuracy: float = Field(ge=0.0, le=1.0)
    source: str = Field(min_length=1)


class StudentTableMapping(_Section):
    """How the columns of a flat student table read as ours."""

    table: _Table
    groups: dict[str, _Group] = {}
    labels: dict[str, str] = Field(min_length=1)
    features: _Features = _Features()
    published: list[PublishedResult] = []

    def published_for(self, include: Sequence[str]) -> PublishedResult | None:
        """The published result of the setting that put back exactly ``include``."""
        for result in self.published:
            if set(result.include) == set(include):
                return result
        return None


@dataclass(frozen=True)
class StudentTable:
    """A flat student table, validated and split for training.

    ``features``: one row per student, ``student_id``, ``school_id``,
    ``school_year`` (nullable integer) and the model inputs.
    ``labels``: one row per student and KPI, ``student_id``, ``school_year``,
    ``kpi``, ``missed`` (bool), ``school_id``, like ``kpi_labels``.
    ``groups``: ``student_id`` and the mapped protected attributes (our codes,
    missing where the table has no value).
    ``quarantine``: the rejected rows as read, with ``_row`` and ``_reason``.
    ``mapping``: the validated mapping the table was read with.
    """

    features: pd.DataFrame
    labels: pd.DataFrame
    groups: pd.DataFrame
    quarantine: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    mapping: StudentTableMapping | None = None

    @property
    def feature_columns(self) -> list[str]:
        return [
            column
            for column in self.features.columns
            if column not in ("student_id", "school_id", "school_year")
        ]


def load_student_table_mapping(path: Path) -> StudentTableMapping:
    """Read and validate a mapping file (TOML).

    Raises
    ------
    StudentTableError
        If the file is missing, not TOML, or breaks a rule; the message names the
        file, the section and key, the value and what is allowed.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudentTableError(f"{path}: no such mapping file") from None
    except tomllib.TOMLDecodeError as error:
        raise StudentTableError(f"{path}: not valid TOML: {error}") from None
    try:
        mapping = StudentTableMapping(**raw)
    except ValidationError as error:
        problems = []
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            if problem["type"] == "missing":
                problems.append(f"{path}: [{where}]: required, but missing")
                continue
            message = (
                "unknown key"
                if problem["type"] == "extra_forbidden"
                else problem["msg"]
            )
            problems.append(f"{path}: [{where}] = {problem['input']!r}: {message}")
        raise StudentTableError("\n".join(problems)) from None
    for group, spec in mapping.groups.items():
        _check_group(path, group, spec)
    for column, words in mapping.features.words.items():
        _check_words(path, column, words)
    return mapping


def _check_group(path: Path, group: str, spec: _Group) -> None:
    if group not in GROUP_CODES:
        raise StudentTableError(
            f"{path}: [groups.{group}]: not a protected attribute; expected one of "
            f"{', '.join(GROUP_CODES)}"
        )
    for value, code in spec.values.items():
        if code not in GROUP_CODES[group]:
            raise StudentTableError(
                f"{path}: [groups.{group}.values] {value!r} = {code!r}: must be one "
                f"of {', '.join(GROUP_CODES[group])}"
            )


def _check_words(path: Path, column: str, words: str) -> None:
    try:
        words.format(value="1", reference="1")
    except (KeyError, IndexError, ValueError):
        raise StudentTableError(
            f"{path}: [features.words] {column} = {words!r}: may name only {{value}} "
            f"and {{reference}}"
        ) from None


def with_columns_included(
    spec: StudentTableMapping, include: Sequence[str], origin: str = "mapping"
) -> StudentTableMapping:
    """The mapping with ``include`` taken out of ``[features] exclude``.

    Raises
    ------
    StudentTableError
        If a column to include is not excluded by the mapping.
    """
    excluded = spec.features.exclude
    for column in include:
        if column not in excluded:
            raise StudentTableError(
                f"{origin}: cannot include {column!r}: it is not in [features] "
                f"exclude (excluded: {', '.join(excluded) or 'none'})"
            )
    kept = [column for column in excluded if column not in include]
    features = spec.features.model_copy(update={"exclude": kept})
    return spec.model_copy(update={"features": features})


def read_student_table(
    source: Path, mapping: Path, *, include: Sequence[str] = ()
) -> StudentTable:
    """Read a flat student table (CSV) with its mapping, validated.

    ``include`` names columns of ``[features] exclude`` to use as model inputs
    after all, for example ``["G1"]`` to compare with a setting that had them.

    Raises
    ------
    StudentTableError
        If the file or the mapping cannot be read, the mapping names a column the
        file does not have, or ``include`` names a column the mapping does not
        exclude.
    """
    source, mapping_path = Path(source), Path(mapping)
    spec = load_student_table_mapping(mapping_path)
    if include:
        spec = with_columns_included(spec, include, str(mapping_path))
    try:
        rows = pd.read_csv(
            source,
            sep=spec.table.separator,
            dtype=str,
            keep_default_na=False,
        )
    except FileNotFoundError:
        raise StudentTableError(f"{source}: no such student table") from None
    except pd.errors.EmptyDataError:
        raise StudentTableError(EMPTY_FILE.format(source=source)) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise StudentTableError(
            f"{source}: not a {spec.table.separator!r}-separated table: {error}"
        ) from None
    table = build_student_table(rows, spec, origin=str(mapping_path))
    if table.features.empty:
        raise StudentTableError(_no_row_kept(source, len(rows), table.quarantine))
    logger.info(
        "read student table %s: %s rows, %s quarantined, %s features, KPIs %s",
        source.name,
        len(rows),
        len(table.quarantine),
        len(table.feature_columns),
        ", ".join(spec.labels),
    )
    return table


def build_student_table(
    rows: pd.DataFrame, spec: StudentTableMapping, *, origin: str = "mapping"
) -> StudentTable:
    """Split text rows (one per student) into features, labels and groups.

    ``rows`` holds every value as text, ``""`` where empty. ``origin`` names the
    mapping in error messages.
    """
    label_columns = {
        kpi: _names_in(expr, rows.columns) for kpi, expr in spec.labels.items()
    }
    feature_columns = _feature_columns(rows, spec, label_columns, origin)
    text = rows.apply(lambda column: column.str.strip().replace("", pd.NA))
    typed = pd.DataFrame(
        {
            column: _typed(text[column], column in spec.features.counts)
            for column in text.columns
        },
        index=text.index,
    )
    notes = []

    # One frame with our names, checked by pandera; failures become quarantine rows.
    checked = pd.DataFrame(index=rows.index)
    if spec.table.id_column:
        checked["student_id"] = text[spec.table.id_column]
    else:
        width = len(str(len(rows)))
        checked["student_id"] = [
            f"{spec.table.id_prefix}{number:0{width}d}"
            for number in range(1, len(rows) + 1)
        ]
        notes.append(
            f"no id column: student_id is {spec.table.id_prefix!r} and the 1-based "
            f"data row"
        )
    # Identifiers and group values stay text: "00123" is not the number 123.
    checked["school_id"] = text[spec.table.school_column]
    for group, group_spec in spec.groups.items():
        raw = text[group_spec.column]
        mapped = raw.map(group_spec.values)
        checked[group] = mapped.where(raw.isna() | mapped.notna(), raw)
    reasons = _reasons(checked, spec)
    checked_columns = [*feature_columns, *_used(spec, label_columns)]
    for column in (c for c in rows.columns if c in checked_columns):
        for index, reason in _value_reasons(
            text[column], typed[column], column, column in spec.features.counts
        ).items():
            reasons.setdefault(index, []).append(reason)

    labels = {}
    for kpi, expr in spec.labels.items():
        missed = _evaluate(typed, kpi, expr, origin)
        incomplete = typed[label_columns[kpi]].isna().any(axis=1)
        for index in incomplete[incomplete].index:
            missing = [c for c in label_columns[kpi] if pd.isna(typed.at[index, c])]
            reasons.setdefault(index, []).append(
                NO_LABEL.format(kpi=kpi, columns=", ".join(missing))
            )
        labels[kpi] = missed

    bad = sorted(reasons)
    keep = rows.index.difference(bad)
    quarantine = rows.loc[bad].copy()
    quarantine.insert(0, "_row", [index + 1 for index in bad])
    quarantine["_reason"] = ["; ".join(reasons[index]) for index in bad]

    school_year = pd.array([spec.table.school_year] * len(keep), dtype="Int64")
    features = pd.DataFrame(
        {
            "student_id": checked.loc[keep, "student_id"].astype(str).to_numpy(),
            "school_id": checked.loc[keep, "school_id"].astype(str).to_numpy(),
            "school_year": school_year,
        }
    )
    for column in feature_columns:
        features[column] = _feature(typed.loc[keep, column]).reset_index(drop=True)
    label_rows = pd.concat(
        [
            pd.DataFrame(
                {
                    "student_id": features["student_id"],
                    "school_year": school_year,
                    "kpi": kpi,
                    "missed": missed.loc[keep].astype(bool).to_numpy(),
                    "school_id": features["school_id"],
                }
            )
            for kpi, missed in labels.items()
        ],
        ignore_index=True,
    )
    groups = pd.DataFrame({"student_id": features["student_id"]})
    for group in spec.groups:
        groups[group] = checked.loc[keep, group].to_numpy()

    excluded = sorted(
        set(rows.columns) - set(feature_columns) - _used(spec, label_columns)
    )
    if excluded:
        notes.append(f"left out of the features: {', '.join(excluded)}")
    for kpi, expr in spec.labels.items():
        missed = label_rows.loc[label_rows["kpi"] == kpi, "missed"]
        share = missed.mean() if len(missed) else float("nan")
        notes.append(
            f"label {kpi} = {expr!r}: {int(missed.sum())} of {len(missed)} missed "
            f"({share:.1%}); columns {', '.join(label_columns[kpi])} are not features"
        )
    if bad:
        notes.append(f"{len(bad)} rows quarantined")
    return StudentTable(
        features, label_rows, groups, quarantine.reset_index(drop=True), notes, spec
    )


def _feature_columns(
    rows: pd.DataFrame,
    spec: StudentTableMapping,
    label_columns: dict[str, list[str]],
    origin: str,
) -> list[str]:
    """The model inputs, after checking every column the mapping names exists."""
    named = {
        "[table] school_column": [spec.table.school_column],
        "[features] exclude": spec.features.exclude,
        "[features] columns": spec.features.columns or [],
        "[features] counts": spec.features.counts,
        "[features] domains": list(spec.features.domains),
        "[features] words": list(spec.features.words),
    }
    if spec.table.id_column:
        named["[table] id_column"] = [spec.table.id_column]
    for group, group_spec in spec.groups.items():
        named[f"[groups.{group}] column"] = [group_spec.column]
    for where, columns in named.items():
        for column in columns:
            if column not in rows.columns:
                raise StudentTableError(
                    f"{origin}: {where} = {column!r}: no such column; the table has "
                    f"{', '.join(rows.columns)}"
                )
    for kpi, columns in label_columns.items():
        if not columns:
            raise StudentTableError(
                f"{origin}: [labels] {kpi} = {spec.labels[kpi]!r}: names no column "
                f"of the table; it has {', '.join(rows.columns)}"
            )
    used = _used(spec, label_columns)
    if spec.features.columns is not None:
        for column in spec.features.columns:
            if column in used:
                raise StudentTableError(
                    f"{origin}: [features] columns: {column!r} is the id, the school, "
                    f"a group or read by a label, so it cannot be a model input"
                )
        return list(spec.features.columns)
    return [c for c in rows.columns if c not in used and c not in spec.features.exclude]


def _used(spec: StudentTableMapping, label_columns: dict[str, list[str]]) -> set[str]:
    used = {spec.table.school_column}
    if spec.table.id_column:
        used.add(spec.table.id_column)
    used.update(group.column for group in spec.groups.values())
    for columns in label_columns.values():
        used.update(columns)
    return used


def _names_in(expr: str, columns: pd.Index) -> list[str]:
    """The columns an expression reads (bare names, or `quoted` ones)."""
    names = []
    for quoted, bare in _NAME.findall(expr):
        name = quoted or bare
        if name in columns and name not in names:
            names.append(name)
    return names


def _evaluate(typed: pd.DataFrame, kpi: str, expr: str, origin: str) -> pd.Series:
    try:
        result = typed.eval(expr, engine="python")
    except Exception as error:  # pandas raises many kinds for a bad expression
        raise StudentTableError(
            f"{origin}: [labels] {kpi} = {expr!r}: not an expression over the "
            f"table's columns: {error}"
        ) from None
    if not isinstance(result, pd.Series) or result.dtype != bool:
        raise StudentTableError(
            f"{origin}: [labels] {kpi} = {expr!r}: must give true or false per row "
            f"(a comparison such as 'G3 < 10')"
        )
    return result


def _typed(values: pd.Series, count: bool = False) -> pd.Series:
    """Numbers when more than half the non-missing values are (or for a count
    column), else the text; a value that is not a number is then missing."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    if count or numbers.notna().sum() * 2 > values.notna().sum():
        return numbers
    return values


def _value_reasons(
    text: pd.Series, typed: pd.Series, column: str, count: bool
) -> pd.Series:
    """The reason of each value a number column could not take, by row index."""
    if not pd.api.types.is_numeric_dtype(typed):
        return pd.Series([], dtype=object)
    given = text.notna()
    not_numbers = given & typed.isna()
    reasons = [
        NOT_A_NUMBER.format(
            column=column,
            value=text[index],
            numbers=int(typed.notna().sum()),
            values=int(given.sum()),
        )
        for index in not_numbers[not_numbers].index
    ]
    found = pd.Series(reasons, index=not_numbers[not_numbers].index, dtype=object)
    if count:
        wrong = typed.notna() & ((typed < 0) | (typed % 1 != 0))
        found = pd.concat(
            [
                found,
                pd.Series(
                    [
                        NOT_A_COUNT.format(column=column, value=text[index])
                        for index in wrong[wrong].index
                    ],
                    index=wrong[wrong].index,
                    dtype=object,
                ),
            ]
        )
    return found


def _no_row_kept(source: Path, read: int, quarantine: pd.DataFrame) -> str:
    """Why a table with no row left is refused: the count and the first reasons."""
    shown = [
        f"row {row}: {reason}"
        for row, reason in zip(
            quarantine["_row"][:3], quarantine["_reason"][:3], strict=True
        )
    ]
    more = len(quarantine) - len(shown)
    if more > 0:
        shown.append(f"{more} more")
    reasons = f"; {'; '.join(shown)}" if shown else ""
    return NO_ROW_KEPT.format(
        source=source, read=read, quarantined=len(quarantine), reasons=reasons
    )


def _feature(values: pd.Series) -> pd.Series:
    """A model input: floats stay, yes/no becomes 0/1, other text a category."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    words = values.str.lower()
    if words.dropna().isin(list(_YES_NO)).all():
        return words.map(_YES_NO).astype(float)
    return values.astype("category")


def _reasons(checked: pd.DataFrame, spec: StudentTableMapping) -> dict[int, list[str]]:
    """Rule-breaking rows of the id, school and group columns, with reasons."""
    columns = {
        "student_id": pa.Column(object, nullable=False, unique=True),
        "school_id": pa.Column(object, nullable=False),
    }
    for group in spec.groups:
        columns[group] = pa.Column(
            object, pa.Check.isin(GROUP_CODES[group]), nullable=True
        )
    reasons: dict[int, list[str]] = {}
    try:
        pa.DataFrameSchema(columns).validate(checked, lazy=True)
    except pa.errors.SchemaErrors as errors:
        for case in errors.failure_cases.itertuples():
            if case.index is None:
                continue
            reasons.setdefault(int(case.index), []).append(
                _reason(case.column, case.check, case.failure_case, spec)
            )
    return reasons


def _reason(column: str, check: str, value: object, spec: StudentTableMapping) -> str:
    if check == "not_nullable":
        return MISSING_ID if column == "student_id" else MISSING_SCHOOL
    if check == "field_uniqueness":
        return DUPLICATE_ID.format(value=value)
    group = spec.groups[column]
    return UNMAPPED_GROUP.format(
        column=group.column,
        value=value,
        group=column,
        known=", ".join(group.values),
    )
