"""Wiring: read the warehouse, run the snapshot definitions, write the parquet files.

``build_snapshots`` is the job behind ``ontrack features``. It opens
``<state>/warehouse.duckdb`` read-only, builds the student snapshots for the as-of
dates, the KPI labels of the school years that have ended and the school snapshots,
and writes each file whole (a temporary file, then ``os.replace``) under
``<state>/snapshots/``. All logic lives in the pure builders of ``_indicators``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features._calendar import (
    as_of_frame,
    checkpoints_with_school_days,
    school_year_of,
)
from features._derived_tables import stored_derived_tables
from features._indicators import (
    WAREHOUSE_TABLES,
    Stage,
    chronic_kpi,
    ignored_attendance,
    kpi_labels,
    labelled_student_years,
    school_snapshots,
    student_snapshots,
)
from features._stored_catalog import remove_feature_catalog
from ontrack.config import DistrictConfig

logger = logging.getLogger(__name__)

SNAPSHOT_DIR = "snapshots"
STUDENT_FILE = "student_snapshots.parquet"
SCHOOL_FILE = "school_snapshots.parquet"
LABEL_FILE = "kpi_labels.parquet"
# Columns the snapshot definitions read, per warehouse table.
REQUIRED_COLUMNS = {
    "students": (
        "student_id",
        "birth_date",
        "gender",
        "race_ethnicity",
        "economically_disadvantaged",
        "english_learner",
        "disability",
    ),
    "enrollments": (
        "student_id",
        "school_id",
        "school_year",
        "grade",
        "entry_date",
        "exit_date",
        "exit_reason",
    ),
    "calendar": ("school_id", "date"),
    "attendance": ("student_id", "date", "category", "fraction_missed"),
    "discipline": ("student_id", "date", "action", "days_removed"),
    "grades": (
        "student_id",
        "school_year",
        "term_end_date",
        "course_id",
        "subject",
        "mark",
        "credits_attempted",
        "credits_earned",
    ),
    "assessments": (
        "student_id",
        "school_year",
        "date",
        "subject",
        "scale_score",
        "proficient",
    ),
    "programs": ("student_id", "program", "begin_date", "end_date"),
}


# The order rows are written in, so that two builds write the same bytes: DuckDB
# returns rows in whatever order its threads finish.
STUDENT_ORDER = ("student_id", "as_of_date")
SCHOOL_ORDER = ("school_id", "as_of_date")
LABEL_ORDER = ("student_id", "school_year", "kpi", "school_id")

NO_STUDENT_ON = (
    "as-of date {as_of}: no student is enrolled on that day; the warehouse's "
    "calendar covers {first} to {last} (both inclusive): pick a school day in it"
)


class WarehouseError(ValueError):
    """The warehouse is missing, lacks a table or a column, or holds no school year."""


class NoStudentOnDate(WarehouseError):
    """An as-of date asked for on which the warehouse has no enrolled student."""


@dataclass(frozen=True)
class LabelCount:
    """The labels of one KPI in one school year."""

    school_year: int
    kpi: str
    candidates: int
    labelled: int
    missed: int

    @property
    def withheld(self) -> int:
        """Students of the year who got no label (too few days, no mark, no test)."""
        return self.candidates - self.labelled

    @property
    def base_rate(self) -> float:
        """Share of the labelled students who missed the KPI."""
        return self.missed / self.labelled if self.labelled else float("nan")


@dataclass(frozen=True)
class SnapshotSummary:
    """What ``build_snapshots`` wrote, with the counts a reader checks first."""

    snapshot_dir: Path
    rows_by_as_of: Mapping[dt.date, int]
    checkpoint_by_as_of: Mapping[dt.date, str]
    students: int
    school_rows: int
    label_counts: tuple[LabelCount, ...]
    leavers_by_year: Mapping[int, int]
    unlabelled_years: tuple[int, ...]
    absences_on_days_off: int
    absences_outside_enrolment: int
    absences_without_calendar: int
    min_enrolled_days: int
    seconds: float
    file_bytes: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = field(default=())

    @property
    def student_rows(self) -> int:
        return sum(self.rows_by_as_of.values())

    def describe(self) -> str:
        """A plain-text report: rows per as-of date, base rates, withheld labels."""
        lines = [
            f"student snapshots: {self.student_rows:,} rows, {self.students:,} "
            f"students, {len(self.rows_by_as_of)} as-of dates "
            f"({self.seconds:.1f} s) -> {self.snapshot_dir}",
        ]
        for as_of, rows in sorted(self.rows_by_as_of.items()):
            name = self.checkpoint_by_as_of.get(as_of) or "ad hoc"
            lines.append(f"  {as_of.isoformat()} ({name}): {rows:,} students")
        lines.append(f"school snapshots: {self.school_rows:,} rows")
        lines.extend(self._label_lines())
        lines.append(
            "absence records ignored: "
            f"{self.absences_on_days_off:,} on non-instructional days, "
            f"{self.absences_outside_enrolment:,} on days the student was not "
            f"enrolled, {self.absences_without_calendar:,} in school years without "
            "a calendar"
        )
        if self.file_bytes:
            sizes = ", ".join(
                f"{name} {size / 1e6:.1f} MB" for name, size in self.file_bytes.items()
            )
            lines.append(f"files: {sizes}")
        lines.extend(self.notes)
        return "\n".join(lines)

    def _label_lines(self) -> list[str]:
        lines = [
            "KPI labels (base rate = share of labelled students who missed the KPI):",
            f"  {'year':>4}  {'kpi':<24} {'labelled':>9} {'base rate':>9} "
            f"{'withheld':>9}",
        ]
        for count in self.label_counts:
            lines.append(
                f"  {count.school_year:>4}  {count.kpi:<24} {count.labelled:>9,} "
                f"{count.base_rate:>9.1%} {count.withheld:>9,}"
            )
        lines.append(
            "  withheld: chronic absence under "
            f"{self.min_enrolled_days} enrolled days; course failure without a core "
            "mark; proficiency without a test result"
        )
        if self.leavers_by_year:
            per_year = ", ".join(
                f"{year}: {n:,}" for year, n in sorted(self.leavers_by_year.items())
            )
            lines.append(
                "  left the district mid-year (labelled on the days they were "
                f"enrolled when they meet the minimum): {per_year}"
            )
        if self.unlabelled_years:
            years = ", ".join(str(year) for year in self.unlabelled_years)
            lines.append(f"  no labels yet for school years still running: {years}")
        return lines


def build_snapshots(
    config: DistrictConfig,
    as_of: dt.date | None = None,
    *,
    today: dt.date | None = None,
) -> SnapshotSummary:
    """Build and write the student and school snapshots and the KPI labels.

    Parameters
    ----------
    config
        The district config; the warehouse is ``<state_dir>/warehouse.duckdb``.
    as_of
        An ad-hoc as-of date to add, or None. Every build covers every checkpoint
        of every school year in the warehouse that has an instructional day on or
        after it; ``as_of`` is added to those dates, and so are the ad-hoc dates of
        the snapshot file already written: they are built again from the warehouse
        as it is now. A build without ``as_of`` drops the ad-hoc dates. The labels
        and school snapshots are rebuilt on every run from the student snapshots
        written, so the three files always agree.
    today
        School years whose last instructional day is before ``today`` (default: the
        current date) get KPI labels; later ones are still running.

    Raises
    ------
    WarehouseError
        If the warehouse file, a table or a column is missing, or no school year has
        calendar days.
    NoStudentOnDate
        A :class:`WarehouseError`: no student is enrolled on ``as_of``; the message
        gives the span of dates the warehouse's calendar covers.
    """
    started = time.perf_counter()
    today = today or dt.date.today()
    con = _connect(config)
    try:
        tables = _tables(con, config)
        last_days = _last_school_days(tables, config)
        as_of_dates = checkpoints_with_school_days(config, last_days)
        if not as_of_dates and as_of is None:
            raise WarehouseError(
                "warehouse table calendar: no school day on or after any checkpoint "
                f"({', '.join(config.calendar.checkpoints)})"
            )
        if as_of is not None:
            as_of_dates = sorted({*as_of_dates, as_of, *_earlier_ad_hoc_dates(config)})
        stage = duckdb_stage(con)
        students = _run(
            con, student_snapshots(tables, as_of_dates, config, stage=stage)
        )
        if as_of is not None:
            _check_enrolled_on(con, tables, students, as_of)
        students = _sorted(students, STUDENT_ORDER)
        label_years = sorted(year for year, last in last_days.items() if last < today)
        labels = _sorted(_labels(con, tables, label_years, config, stage), LABEL_ORDER)
        schools = _run(
            con,
            school_snapshots(ibis.memtable(students), ibis.memtable(labels), config),
        )
        schools = _sorted(schools, SCHOOL_ORDER)
        summary_parts = _label_summary(con, tables, label_years, labels, config)
        ignored = _ignored_absences(con, tables, sorted(last_days), config, stage)
        notes = _years_without_enrolment(con, tables, last_days, config)
    finally:
        con.disconnect()

    out_dir = config.state_dir / SNAPSHOT_DIR
    _write_together(
        {
            out_dir / STUDENT_FILE: students,
            out_dir / SCHOOL_FILE: schools,
            out_dir / LABEL_FILE: labels,
        }
    )
    # Event-level snapshots read with the event-level catalog, not a flat table's.
    remove_feature_catalog(config.state_dir)
    rows_by_as_of = _rows_by_as_of(students, as_of_dates)
    summary = SnapshotSummary(
        snapshot_dir=out_dir,
        rows_by_as_of=rows_by_as_of,
        checkpoint_by_as_of=_checkpoints(config, sorted(rows_by_as_of)),
        students=len(pc.unique(students["student_id"])),
        school_rows=schools.num_rows,
        label_counts=summary_parts[0],
        leavers_by_year=summary_parts[1],
        unlabelled_years=tuple(year for year in last_days if year not in label_years),
        absences_on_days_off=ignored[0],
        absences_outside_enrolment=ignored[1],
        absences_without_calendar=ignored[2],
        min_enrolled_days=chronic_kpi(config).min_enrolled_days,
        seconds=time.perf_counter() - started,
        file_bytes={
            name: (out_dir / name).stat().st_size
            for name in (STUDENT_FILE, SCHOOL_FILE, LABEL_FILE)
        },
        notes=notes,
    )
    logger.info(
        "snapshots built: %s student rows, %s as-of dates, %s school rows, "
        "%s labels, %.1f s",
        students.num_rows,
        len(as_of_dates),
        schools.num_rows,
        labels.num_rows,
        summary.seconds,
    )
    return summary


def _connect(config: DistrictConfig):
    path = config.state_dir / "warehouse.duckdb"
    if not path.is_file():
        raise WarehouseError(
            f"no warehouse at {path}: load the district first with `ontrack ingest`"
        )
    return ibis.duckdb.connect(path, read_only=True, threads=config.model.n_jobs)


def _tables(con, config: DistrictConfig) -> dict[str, ir.Table]:
    """The warehouse tables, and its derived tables when they fit ``config``."""
    # Not ``con.list_tables()``: Ibis 12 calls a method DuckDB 2 no longer has.
    listed = con.raw_sql("SELECT table_name FROM duckdb_tables()").fetchall()
    present = {row[0] for row in listed}
    missing = [name for name in WAREHOUSE_TABLES if name not in present]
    if missing:
        raise WarehouseError(
            f"warehouse: missing tables {', '.join(missing)}; "
            f"expected all of {', '.join(WAREHOUSE_TABLES)}"
        )
    tables = {name: con.table(name) for name in WAREHOUSE_TABLES}
    for name, columns in REQUIRED_COLUMNS.items():
        absent = [column for column in columns if column not in tables[name].columns]
        if absent:
            raise WarehouseError(
                f"warehouse table {name}: missing columns {', '.join(absent)}; "
                f"expected {', '.join(columns)} (docs/CONTRACTS.md)"
            )
    tables.update(stored_derived_tables(con, config.district.school_year_start))
    return tables


def _last_school_days(
    tables: Mapping[str, ir.Table], config: DistrictConfig
) -> dict[int, dt.date]:
    """The last instructional day (any school) of each school year with a calendar."""
    calendar = tables["calendar"]
    per_year = calendar.group_by(
        school_year=school_year_of(calendar.date, config.district.school_year_start)
    ).agg(last_day=calendar.date.max())
    frame = per_year.to_pyarrow().to_pylist()
    if not frame:
        raise WarehouseError("warehouse table calendar: no instructional days")
    return {row["school_year"]: row["last_day"] for row in frame}


def duckdb_stage(con) -> Stage:
    """A ``stage`` for the builders: each step becomes a temporary table of ``con``.

    ``con`` is an Ibis DuckDB connection (read-only is fine: temporary tables live
    in memory and spill to DuckDB's temporary folder). Its optimizer is told not to
    push partial aggregates below joins: for the whole-year absence totals DuckDB
    2.0 grouped the five million student-days of a year a second time, by four
    keys, before the calendar join, and that took a third of the step.
    """
    con.raw_sql("SET disabled_optimizers = 'partial_aggregate_pushdown'")
    numbers = itertools.count()
    # The same step asked for twice (the stays of the snapshots and of the labels)
    # is built once: Ibis expressions compare equal when they compute the same.
    built: dict[object, ir.Table] = {}

    def stage(name: str, table: ir.Table) -> ir.Table:
        if table.op() not in built:
            built[table.op()] = con.create_table(
                f"step_{next(numbers)}_{name}", table, temp=True
            )
        return built[table.op()]

    return stage


def _labels(
    con,
    tables: Mapping[str, ir.Table],
    years: list[int],
    config: DistrictConfig,
    stage: Stage,
) -> pa.Table:
    if not years:
        return pa.table(
            {
                "student_id": pa.array([], pa.string()),
                "school_year": pa.array([], pa.int64()),
                "kpi": pa.array([], pa.string()),
                "missed": pa.array([], pa.bool_()),
                "school_id": pa.array([], pa.string()),
            }
        )
    return _run(con, kpi_labels(tables, years, config, stage=stage))


def _run(con, expr: ir.Table) -> pa.Table:
    return con.to_pyarrow(expr)


def _label_summary(
    con,
    tables: Mapping[str, ir.Table],
    years: list[int],
    labels: pa.Table,
    config: DistrictConfig,
) -> tuple[tuple[LabelCount, ...], dict[int, int]]:
    """Label counts per school year and KPI, and leavers per school year."""
    if not years:
        return (), {}
    candidates = labelled_student_years(tables, years, config)
    per_year = con.to_pyarrow(
        candidates.group_by("school_year").agg(
            candidates=candidates.count(),
            leavers=candidates.count(where=candidates.left_mid_year),
        )
    ).to_pylist()
    by_year = {row["school_year"]: row for row in per_year}
    grouped = labels.group_by(["school_year", "kpi"]).aggregate(
        [("missed", "count"), ("missed", "sum")]
    )
    labelled = {
        (row["school_year"], row["kpi"]): (row["missed_count"], row["missed_sum"])
        for row in grouped.to_pylist()
    }
    counts = tuple(
        LabelCount(
            school_year=year,
            kpi=kpi.name,
            candidates=by_year.get(year, {}).get("candidates", 0),
            labelled=labelled.get((year, kpi.name), (0, 0))[0],
            missed=labelled.get((year, kpi.name), (0, 0))[1] or 0,
        )
        for year in years
        for kpi in config.kpis
    )
    leavers = {year: row["leavers"] for year, row in by_year.items()}
    return counts, leavers


def _ignored_absences(
    con,
    tables: Mapping[str, ir.Table],
    years: list[int],
    config: DistrictConfig,
    stage: Stage,
) -> tuple[int, int, int]:
    """Attendance records on days off, on days the student was not enrolled, and
    in school years without a calendar."""
    counts = con.to_pyarrow(
        ignored_attendance(tables, years, config, stage=stage)
    ).to_pylist()[0]
    return (
        counts["days_off"] or 0,
        counts["not_enrolled"] or 0,
        counts["no_calendar"] or 0,
    )


def _years_without_enrolment(
    con,
    tables: Mapping[str, ir.Table],
    last_days: Mapping[int, dt.date],
    config: DistrictConfig,
) -> tuple[str, ...]:
    """A warning for each school year with school days but no enrolment.

    Usually a ``school_year_start`` later than the first day of school: the days
    before it land in a school year of their own that nobody is enrolled in.
    """
    enrollments = tables["enrollments"]
    enrolled = set(
        con.to_pyarrow(enrollments.select("school_year").distinct())[
            "school_year"
        ].to_pylist()
    )
    notes = tuple(
        f"warning: school year {year} has school days in the calendar but no "
        "enrolment; is [district] school_year_start "
        f"({config.district.school_year_start}) later than the first day of school?"
        for year in sorted(last_days)
        if year not in enrolled
    )
    for note in notes:
        logger.warning(note)
    return notes


def _rows_by_as_of(students: pa.Table, as_of_dates: list[dt.date]) -> dict:
    rows = dict.fromkeys(as_of_dates, 0)
    counted = students.group_by("as_of_date").aggregate([("student_id", "count")])
    for row in counted.to_pylist():
        rows[row["as_of_date"]] = row["student_id_count"]
    return rows


def _checkpoints(config: DistrictConfig, as_of_dates: list[dt.date]) -> dict:
    named = as_of_frame(config, as_of_dates)
    return dict(zip(named.as_of_date, named.checkpoint, strict=True))


def _check_enrolled_on(
    con, tables: Mapping[str, ir.Table], students: pa.Table, as_of: dt.date
) -> None:
    day = pa.scalar(as_of).cast(students.schema.field("as_of_date").type)
    on_date = pc.equal(students["as_of_date"], day)
    if pc.any(on_date).as_py():
        return
    calendar = tables["calendar"]
    span = con.to_pyarrow(
        calendar.aggregate(first=calendar.date.min(), last=calendar.date.max())
    ).to_pylist()[0]
    raise NoStudentOnDate(
        NO_STUDENT_ON.format(
            as_of=as_of.isoformat(),
            first=span["first"].isoformat(),
            last=span["last"].isoformat(),
        )
    )


def _earlier_ad_hoc_dates(config: DistrictConfig) -> list[dt.date]:
    """The ad-hoc as-of dates of the student snapshot file already written."""
    path = config.state_dir / SNAPSHOT_DIR / STUDENT_FILE
    if not path.is_file():
        return []
    try:
        written = pq.read_table(path, columns=["as_of_date", "checkpoint"])
    except (pa.ArrowInvalid, KeyError, OSError) as error:
        logger.warning(
            "%s cannot be read (%s); its ad-hoc dates are dropped", path, error
        )
        return []
    ad_hoc = written.filter(pc.equal(written["checkpoint"], ""))
    return sorted(set(pc.unique(ad_hoc["as_of_date"]).to_pylist()))


def _sorted(table: pa.Table, key: tuple[str, ...]) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in key])


def _write_together(files: Mapping[Path, pa.Table]) -> None:
    """Write parquet files whole and together: every one is written to a temporary
    file first and only then are they moved into place, one right after another,
    so that a failure while writing leaves the old set as it was."""
    partials = {
        path: path.with_name(f".{path.name}.{os.getpid()}.tmp") for path in files
    }
    try:
        for path, table in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, partials[path])
        for path, partial in partials.items():
            os.replace(partial, path)
    finally:
        for partial in partials.values():
            partial.unlink(missing_ok=True)
