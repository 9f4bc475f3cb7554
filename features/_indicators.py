"""Student and school snapshots and KPI labels, as Ibis expressions over the warehouse.

The builders take the warehouse tables (``{"enrollments": table, ...}``, columns as
in docs/CONTRACTS.md) and return unexecuted Ibis tables; DuckDB runs them here and the
same expressions compile for PySpark. Nothing loops over students.

A student snapshot is keyed by ``(student_id, as_of_date)`` and exists for every
student enrolled on the as-of date (entry and exit inclusive). It reads only events
dated strictly before the as-of date: absences, incidents and program days before it,
term marks whose term ended before it, test results dated before it. The previous
school year's indicators come from that whole year, which ended before the as-of date.

Every event is placed in a school year by its date; the as-of dates of one school year
are joined to the events of that year (a date-to-checkpoint join), so all checkpoints
are built in one pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from features._abc_flags import ABC_COLUMNS, abc_flags
from features._assessments import assessment_indicators
from features._attendance import (
    attendance_days,
    attendance_indicators,
    year_attendance,
)
from features._behaviour import behaviour_indicators, year_behaviour
from features._calendar import (
    as_of_frame,
    as_of_table,
    first_day_of_year,
    instructional_day_index,
)
from features._catalog import FEATURE_CATALOG
from features._courses import course_indicators, year_failures
from features._derived_tables import (
    STORED_DAY_INDEX,
    STORED_DAYS,
    STORED_STAYS,
    STORED_YEARS,
)
from features._enrolment import (
    enrolled_on,
    enrolment_stays,
    recent_window_start,
)
from features._joins import attach, attach_all
from features._labels import (
    chronically_absent,
    kpi_label_rows,
    student_years,
)
from features._mobility import mobility_indicators
from ontrack.config import KPI, DistrictConfig

WAREHOUSE_TABLES = (
    "schools",
    "students",
    "enrollments",
    "calendar",
    "attendance",
    "discipline",
    "grades",
    "assessments",
    "programs",
)
KEY_COLUMNS = ("student_id", "as_of_date", "school_year", "checkpoint", "school_id")
# Context columns after the features: not model inputs, read by school snapshots.
CONTEXT_COLUMNS = ("marks_so_far",)
STUDENT_SNAPSHOT_COLUMNS = (
    *KEY_COLUMNS,
    *FEATURE_CATALOG,
    *CONTEXT_COLUMNS,
    *ABC_COLUMNS,
)
KEYS = ["student_id", "as_of_date"]

Stage = Callable[[str, ir.Table], ir.Table]
_PART_NAMES = ("attendance", "behaviour", "courses", "assessments", "mobility")


def no_stage(name: str, table: ir.Table) -> ir.Table:
    """Keep a step as an expression: one query from the warehouse to the result.

    A wiring may pass a ``stage`` that materialises each named step instead (a
    temporary table in DuckDB, ``cache()`` in Spark); the results are the same, and
    the engine plans many small queries much faster than one deep one.
    """
    return table


@dataclass(frozen=True)
class _Sources:
    """The warehouse tables and the frames every builder derives from them."""

    tables: Mapping[str, ir.Table]
    stays: ir.Table
    day_index: ir.Table
    school_year_start: str
    stage: Stage
    until: dt.date | None

    def attendance_days(self, school_years: Iterable[int]) -> ir.Table:
        """The attendance days (see ``attendance_days``) of ``school_years``.

        Read from the warehouse's stored ``attendance_days`` when ``tables`` has it
        (see ``features._derived_tables``), else derived from the attendance rows of
        those years where they are read: each school year's days are read in one
        place (a year as of its checkpoints, or the year before them as a whole).
        """
        stored = self.tables.get(STORED_DAYS)
        source = stored if stored is not None else self.tables["attendance"]
        rows = source.filter(
            _in_school_years(source.date, school_years, self.school_year_start)
        )
        if self.until is not None:
            rows = rows.filter(rows.date < self.until)
        if stored is not None:
            return rows
        return attendance_days(rows, self.stays, self.day_index, self.school_year_start)

    def year_attendance(self, school_years: Iterable[int]) -> ir.Table:
        """Whole-year attendance totals (see ``year_attendance``) of ``school_years``.

        Read from the warehouse's stored ``attendance_years`` when ``tables`` has
        it, else derived from the stays and the attendance days of those years.
        """
        years = sorted(set(school_years))
        stored = self.tables.get(STORED_YEARS)
        if stored is not None:
            return stored.filter(stored.school_year.isin(years))
        stays = self.stays.filter(self.stays.school_year.isin(years))
        return year_attendance(
            stays,
            self.day_index,
            self.attendance_days(years),
            self.school_year_start,
        )


def _sources(
    tables: Mapping[str, ir.Table],
    school_years: Iterable[int],
    config: DistrictConfig,
    stage: Stage,
    until: dt.date | None = None,
) -> _Sources:
    """Stays and the day index of ``school_years``.

    ``until`` (exclusive) drops the attendance days no snapshot will read.
    """
    missing = [name for name in WAREHOUSE_TABLES if name not in tables]
    if missing:
        raise KeyError(f"warehouse tables missing: {', '.join(missing)}")
    start = config.district.school_year_start
    years = sorted(set(school_years))
    # Only the school years asked for: a snapshot reads its year and the one before.
    stays = tables.get(STORED_STAYS)
    if stays is not None:
        stays = stays.filter(stays.school_year.isin(years))
    else:
        enrollments = tables["enrollments"]
        enrollments = enrollments.filter(enrollments.school_year.isin(years))
        stays = stage("stays", enrolment_stays(enrollments, start))
    day_index = tables.get(STORED_DAY_INDEX)
    if day_index is not None:
        # The dates the builders look up: from the eve of the first year on.
        day_index = day_index.filter(
            day_index.date >= first_day_of_year(years[0], start) - dt.timedelta(1),
            day_index.date < first_day_of_year(years[-1] + 1, start),
        )
    else:
        day_index = stage(
            "day_index", instructional_day_index(tables["calendar"], years, start)
        )
    return _Sources(tables, stays, day_index, start, stage, until)


def _in_school_years(
    day: ir.DateValue, school_years: Iterable[int], school_year_start: str
) -> ir.BooleanValue:
    """Whether ``day`` falls in one of ``school_years``.

    Date ranges rather than the school year of each date, so that the engine can
    skip the blocks of rows outside them.
    """
    return ibis.or_(
        *(
            (day >= first_day_of_year(year, school_year_start))
            & (day < first_day_of_year(year + 1, school_year_start))
            for year in sorted(set(school_years))
        )
    )


def chronic_kpi(config: DistrictConfig) -> KPI:
    """The config's chronic-absence KPI, or one with the default rule if it has none."""
    for kpi in config.kpis:
        if kpi.definition == "chronic_absence":
            return kpi
    return KPI(
        name="chronic_absence",
        label="Chronically absent",
        definition="chronic_absence",
        district_target=1.0,
    )


def course_failure_rule(config: DistrictConfig) -> tuple[float, list[str]]:
    """Failing mark and core subjects: the course-failure KPI's, or the defaults."""
    for kpi in config.kpis:
        if kpi.definition == "course_failure":
            return kpi.failing_mark, list(kpi.core_subjects)
    default = KPI(
        name="course_failure",
        label="Failed a core course",
        definition="course_failure",
        district_target=1.0,
    )
    return default.failing_mark, list(default.core_subjects)


def student_snapshots(
    tables: Mapping[str, ir.Table],
    as_of_dates: Iterable[dt.date],
    config: DistrictConfig,
    *,
    stage: Stage = no_stage,
) -> ir.Table:
    """One row per student enrolled on each as-of date, with every indicator.

    Parameters
    ----------
    tables
        The warehouse tables by canonical name.
    as_of_dates
        The as-of dates; each snapshot uses events strictly before its date.
    config
        The district config (school-year start, checkpoints, KPI rules, ABC
        thresholds).
    stage
        Called with a name and each intermediate step; returns the table to build
        on (see :func:`no_stage`).

    Returns
    -------
    ibis.Table
        The columns of ``STUDENT_SNAPSHOT_COLUMNS``, in that order.
    """
    as_of = as_of_frame(config, as_of_dates)
    if as_of.empty:
        raise ValueError("student_snapshots: as_of_dates is empty; give at least one")
    years = sorted(set(as_of.school_year))
    sources = _sources(
        tables, [years[0] - 1, *years], config, stage, until=max(as_of.as_of_date)
    )
    as_of_dates_table = as_of_table(as_of)
    spine = stage("spine", enrolled_on(sources.stays, as_of_dates_table))
    this_year = _this_year(spine, sources, as_of_dates_table, config, years)
    last_year = _last_year(spine, sources, config, [year - 1 for year in years])
    snapshots = abc_flags(attach(this_year, last_year, KEYS), config.abc)
    return snapshots.select(*STUDENT_SNAPSHOT_COLUMNS)


def _this_year(
    spine: ir.Table,
    sources: _Sources,
    as_of_dates: ir.Table,
    config: DistrictConfig,
    years: list[int],
) -> ir.Table:
    """The indicators of the as-of date's school year, so far.

    ``years`` are the school years of the as-of dates.
    """
    recent = recent_window_start(
        sources.day_index, as_of_dates, sources.school_year_start
    )
    periods = sources.stage(
        "periods", attach(spine, recent, ["school_id", "as_of_date"])
    )
    failing_mark, core_subjects = course_failure_rule(config)
    tables = sources.tables
    parts = (
        attendance_indicators(
            periods,
            sources.stays,
            sources.day_index,
            sources.attendance_days(years),
        ),
        behaviour_indicators(
            periods, tables["discipline"], sources.school_year_start
        ).drop("suspensions"),
        course_indicators(
            periods, tables["grades"], failing_mark, core_subjects
        ).rename(marks_so_far="marks"),
        assessment_indicators(
            periods, tables["assessments"], sources.stays, as_of_dates
        ),
        mobility_indicators(
            spine,
            sources.stays,
            tables["enrollments"],
            tables["students"],
            tables["programs"],
        ),
    )
    staged = [
        sources.stage(name, part) for name, part in zip(_PART_NAMES, parts, strict=True)
    ]
    return attach_all(spine.select(*KEY_COLUMNS), staged, KEYS)


def _last_year(
    spine: ir.Table, sources: _Sources, config: DistrictConfig, years: list[int]
) -> ir.Table:
    """The previous school year's totals, keyed by the as-of date they serve.

    ``years`` are the previous school years of the as-of dates; each ended before
    the as-of date's school year began. Students without a stay in the previous
    year get no row (null indicators).
    """
    failing_mark, _ = course_failure_rule(config)
    tables, stage, start = sources.tables, sources.stage, sources.school_year_start
    grades = tables["grades"].filter(tables["grades"].school_year.isin(years))
    attendance = stage("year_attendance", sources.year_attendance(years))
    behaviour = year_behaviour(tables["discipline"], start)
    behaviour = stage(
        "year_behaviour", behaviour.filter(behaviour.school_year.isin(years))
    )
    failures = stage("year_failures", year_failures(grades, failing_mark, start))
    year_keys = ["student_id", "school_year"]
    totals = attach_all(attendance, [behaviour, failures], year_keys)
    wanted = spine.select("student_id", "as_of_date", prior_year=spine.school_year - 1)
    joined = wanted.join(
        totals,
        [
            wanted.student_id == totals.student_id,
            wanted.prior_year == totals.school_year,
        ],
    )
    return joined.select(
        wanted.student_id,
        wanted.as_of_date,
        prior_attendance_rate=totals.attendance_rate,
        prior_chronic_absence=chronically_absent(
            totals.days_absent, totals.days_enrolled, chronic_kpi(config)
        ).cast("float64"),
        prior_incidents=ibis.coalesce(totals.incidents, 0.0),
        prior_suspensions=ibis.coalesce(totals.suspensions, 0.0),
        prior_failures=ibis.coalesce(totals.failing_marks, 0.0),
    )


def kpi_labels(
    tables: Mapping[str, ir.Table],
    school_years: Iterable[int],
    config: DistrictConfig,
    *,
    stage: Stage = no_stage,
) -> ir.Table:
    """The KPI labels of every student with a stay in the given school years.

    One row per ``(student_id, school_year, kpi)`` with ``missed`` (bool) and
    ``school_id`` (the last enrolment of the year). Students without a label (see
    ``features._labels``) have no row.
    """
    years = sorted(set(school_years))
    sources = _sources(tables, years, config, stage)
    candidates = stage("candidates", labelled_student_years(tables, years, config))
    return kpi_label_rows(
        candidates,
        stage("year_attendance", sources.year_attendance(years)),
        tables["grades"],
        tables["assessments"],
        config.kpis,
    )


def ignored_attendance(
    tables: Mapping[str, ir.Table],
    school_years: Iterable[int],
    config: DistrictConfig,
    *,
    stage: Stage = no_stage,
) -> ir.Table:
    """How many attendance records no snapshot counts.

    ``school_years`` are the years with a calendar. One row: ``days_off`` (records
    of those years on a day that was not an instructional day of the student's
    school), ``not_enrolled`` (records of those years on a day the student was not
    enrolled) and ``no_calendar`` (records dated in any other school year).
    """
    years = sorted(set(school_years))
    days = _sources(tables, years, config, stage).attendance_days(years)
    counted = days.aggregate(
        days_off=days.records.sum(where=days.school_id.notnull() & ~days.counted),
        not_enrolled=days.records.sum(where=days.school_id.isnull()),
    )
    attendance = tables["attendance"]
    elsewhere = attendance.filter(
        ~_in_school_years(attendance.date, years, config.district.school_year_start)
    )
    return counted.cross_join(elsewhere.aggregate(no_calendar=elsewhere.count()))


def labelled_student_years(
    tables: Mapping[str, ir.Table], school_years: Iterable[int], config: DistrictConfig
) -> ir.Table:
    """The candidates for a label: one row per student and school year with a stay.

    Columns ``student_id``, ``school_year``, ``school_id`` (last enrolment) and
    ``left_mid_year``.
    """
    stays = enrolment_stays(tables["enrollments"], config.district.school_year_start)
    candidates = student_years(stays)
    return candidates.filter(candidates.school_year.isin(sorted(set(school_years))))


def school_snapshots(
    student_snapshots: ir.Table, kpi_labels: ir.Table, config: DistrictConfig
) -> ir.Table:
    """One row per school and as-of date, from the student snapshots of that date.

    ``enrollment`` counts the students whose current school it is;
    ``school_attendance_rate`` is 1 - all days absent / all days enrolled;
    ``school_chronic_rate_so_far`` is the share of students enrolled at least the
    chronic KPI's minimum days so far who are absent at least its threshold so far;
    ``school_incident_rate`` the share with an incident this year;
    ``school_failing_rate`` the share with a failing term mark among students with a
    term mark so far; ``school_prior_<kpi>_rate`` the share of the school's labelled
    students who missed the KPI in the previous school year. Rates without a
    denominator are null.
    """
    rule = chronic_kpi(config)
    snapshots = student_snapshots
    eligible = snapshots.days_enrolled >= rule.min_enrolled_days
    chronic = chronically_absent(snapshots.days_absent, snapshots.days_enrolled, rule)
    marked = snapshots.marks_so_far > 0
    per_school = snapshots.group_by("school_id", "as_of_date").agg(
        school_year=snapshots.school_year.max(),
        enrollment=snapshots.count(),
        days_enrolled=snapshots.days_enrolled.sum(),
        days_absent=snapshots.days_absent.sum(),
        chronic=snapshots.count(where=eligible & chronic),
        eligible=snapshots.count(where=eligible),
        with_incident=snapshots.count(where=snapshots.incidents > 0),
        failing=snapshots.count(where=marked & (snapshots.failing_marks > 0)),
        marked=snapshots.count(where=marked),
    )
    rates = per_school.select(
        "school_id",
        "as_of_date",
        "school_year",
        enrollment=per_school.enrollment.cast("int64"),
        school_attendance_rate=1.0
        - _ratio(per_school.days_absent, per_school.days_enrolled),
        school_chronic_rate_so_far=_ratio(per_school.chronic, per_school.eligible),
        school_incident_rate=_ratio(per_school.with_incident, per_school.enrollment),
        school_failing_rate=_ratio(per_school.failing, per_school.marked),
    )
    prior = _prior_kpi_rates(kpi_labels, config)
    joined = rates.left_join(
        prior,
        [
            rates.school_id == prior.school_id,
            rates.school_year - 1 == prior.school_year,
        ],
    )
    return joined.select(
        *[rates[column] for column in rates.columns if column != "school_year"],
        *[prior[column] for column in prior.columns[2:]],
    )


def _prior_kpi_rates(kpi_labels: ir.Table, config: DistrictConfig) -> ir.Table:
    """``school_<kpi>``-style rates of each school and school year, one column a KPI."""
    return kpi_labels.group_by("school_id", "school_year").agg(
        **{
            f"school_prior_{kpi.name}_rate": kpi_labels.missed.cast("float64").mean(
                where=kpi_labels.kpi == kpi.name
            )
            for kpi in config.kpis
        }
    )


def _ratio(part: ir.NumericValue, whole: ir.NumericValue) -> ir.FloatingValue:
    return ibis.ifelse(whole > 0, part / whole, ibis.null("float64"))
