"""Attendance indicators: days enrolled and absent, rates, streaks and the trend.

An ``attendance`` row is an absence or a tardy (presence is implied). Per student and
day, the fractions missed of the ``excused`` and ``unexcused`` rows add up, capped at
one day; tardies are counted, never added to the days absent. A day counts only when
the student was enrolled that day (see ``_enrolment``) and it was an instructional
day of the school of that stay; other rows are ignored and reported. The school that
counts a day is the stay's: the ``school_id`` written on an attendance row is not read.
The recent window of the trend is the last 20 instructional days of the calendar of
the school the student attends on the as-of date; a school without a calendar has no
recent window, and the rate over it and the trend are null.

Worked example: a student enrolled on 20 instructional days with two full-day
absences and one half-day absence has ``days_absent`` 2.5 and ``attendance_rate``
1 - 2.5 / 20 = 0.875.

The longest absence streak counts consecutive instructional days of one school on
which the student missed the whole day; a day not enrolled, a partial day or a change
of school ends a streak.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features._calendar import school_year_of, year_first_day
from features._enrolment import enrolled_days
from features._joins import attach

ABSENCE_CATEGORIES = ("excused", "unexcused")
TARDY = "tardy"


def attendance_days(
    attendance: ir.Table, stays: ir.Table, day_index: ir.Table, school_year_start: str
) -> ir.Table:
    """One row per student and date with an attendance record, placed in enrolment.

    Returns ``student_id``, ``school_year``, ``date``, ``school_id`` (the school of
    the stay counting the day, null outside enrolment), ``counted`` (enrolled on an
    instructional day), ``missed`` (the ``excused`` and ``unexcused`` fractions
    added up and capped at 1), ``absence_missed`` (the uncapped sum),
    ``unexcused_missed``, ``tardies``, ``records`` (attendance rows that day) and
    ``absence_streak`` (on a counted day missed whole, how many such days in a row
    at the stay's school end on it, itself included; null on other days): the
    longest streak before an as-of date is the largest ``absence_streak`` before it.

    Each row depends on the records of its own day and, for ``absence_streak``, on
    the earlier days of the school year only: the table can be built once for the
    whole warehouse (ingest stores it, see ``features._derived_tables``) and cut at
    any as-of date.
    """
    is_absence = attendance.category.isin(ABSENCE_CATEGORIES)
    per_day = attendance.group_by("student_id", "date").agg(
        absence_missed=attendance.fraction_missed.sum(where=is_absence),
        unexcused_missed=attendance.fraction_missed.sum(
            where=attendance.category == "unexcused"
        ),
        tardies=attendance.count(where=attendance.category == TARDY),
        records=attendance.count(),
    )
    per_day = per_day.select(
        "student_id",
        "date",
        school_year=school_year_of(per_day.date, school_year_start),
        absence_missed=ibis.coalesce(per_day.absence_missed, 0.0),
        unexcused_missed=ibis.coalesce(per_day.unexcused_missed, 0.0),
        tardies=per_day.tardies,
        records=per_day.records,
    )
    placed = _placed(per_day, stays, day_index)
    missed = ibis.least(placed.absence_missed, 1.0)
    placed = placed.mutate(missed=missed, whole_day=placed.counted & (missed >= 1.0))
    # Gaps and islands: on consecutive school days ``days_through`` rises by one, as
    # does the number of the student's whole days missed at that school, so their
    # difference is constant along a run and names it.
    in_order = ibis.window(
        group_by=["student_id", "school_year", "school_id", "whole_day"],
        order_by="date",
    )
    placed = placed.mutate(position=ibis.row_number().over(in_order))
    placed = placed.mutate(run=placed.days_through - placed.position)
    in_run = ibis.window(
        group_by=["student_id", "school_year", "school_id", "whole_day", "run"],
        order_by="date",
    )
    placed = placed.mutate(run_days=ibis.row_number().over(in_run) + 1)
    return placed.select(
        "student_id",
        "school_year",
        "date",
        "school_id",
        "counted",
        "missed",
        "absence_missed",
        "unexcused_missed",
        "tardies",
        "records",
        absence_streak=ibis.ifelse(
            placed.whole_day, placed.run_days, ibis.null("int64")
        ),
    )


def _placed(rows: ir.Table, stays: ir.Table, day_index: ir.Table) -> ir.Table:
    """``rows`` (``student_id``, ``school_year``, ``date``, ...) placed in enrolment."""
    placed = rows.left_join(
        stays,
        [
            rows.student_id == stays.student_id,
            rows.school_year == stays.school_year,
            rows.date >= stays.counted_from,
            rows.date <= stays.last_day,
        ],
    ).select(*[rows[column] for column in rows.columns], stays.school_id)
    return placed.left_join(
        day_index,
        [placed.school_id == day_index.school_id, placed.date == day_index.date],
    ).select(
        *[placed[column] for column in placed.columns],
        counted=ibis.coalesce(day_index.instructional, False),
        days_through=day_index.days_through,
    )


def attendance_indicators(
    student_periods: ir.Table,
    stays: ir.Table,
    day_index: ir.Table,
    days: ir.Table,
) -> ir.Table:
    """Attendance of each student and period, from the period's start to its as-of.

    ``student_periods`` has ``student_id``, ``school_year``, ``as_of_date``
    (exclusive) and ``recent_from`` (inclusive, may be null); ``days`` is the output
    of :func:`attendance_days`. Returns one row per student and period with
    ``days_enrolled``, ``days_absent``, ``attendance_rate``, ``unexcused_share``,
    ``tardies``, ``longest_absence_streak``, ``attendance_rate_last_20`` and
    ``attendance_trend`` (the recent rate minus the rate before the window). A rate
    without days to divide by is null.
    """
    enrolled = enrolled_days(student_periods, stays, day_index)
    counted = days.filter(days.counted)
    # The days are cut at the as-of dates (a handful of rows) before any join on
    # students; only the days of the recent windows meet the periods themselves.
    as_of = student_periods.group_by("school_year", "as_of_date").agg(
        recent_floor=student_periods.recent_from.min()
    )
    so_far = counted.join(
        as_of,
        [counted.school_year == as_of.school_year, counted.date < as_of.as_of_date],
    ).select(*[counted[column] for column in counted.columns], as_of.as_of_date)
    totals = so_far.group_by("student_id", "as_of_date").agg(
        days_absent=so_far.missed.sum(),
        unexcused_missed=so_far.unexcused_missed.sum(),
        absence_missed=so_far.absence_missed.sum(),
        tardies=so_far.tardies.sum(),
        longest_absence_streak=so_far.absence_streak.max(),
    )
    lately = counted.join(
        as_of,
        [
            counted.school_year == as_of.school_year,
            counted.date < as_of.as_of_date,
            counted.date >= as_of.recent_floor,
        ],
    ).select(counted.student_id, counted.date, counted.missed, as_of.as_of_date)
    recent = lately.join(
        student_periods,
        [
            lately.student_id == student_periods.student_id,
            lately.as_of_date == student_periods.as_of_date,
            lately.date >= student_periods.recent_from,
        ],
    ).select(lately.student_id, lately.as_of_date, lately.missed)
    recent = recent.group_by("student_id", "as_of_date").agg(
        recent_days_absent=recent.missed.sum()
    )
    keys = ["student_id", "as_of_date"]
    periods = student_periods.select(*keys)
    joined = (
        periods.left_join(enrolled, keys)
        .left_join(totals, keys)
        .left_join(recent, keys)
        .select(
            periods.student_id,
            periods.as_of_date,
            days_enrolled=ibis.coalesce(enrolled.days_enrolled, 0),
            recent_days_enrolled=ibis.coalesce(enrolled.recent_days_enrolled, 0),
            days_absent=ibis.coalesce(totals.days_absent, 0.0),
            unexcused_missed=ibis.coalesce(totals.unexcused_missed, 0.0),
            absence_missed=ibis.coalesce(totals.absence_missed, 0.0),
            tardies=ibis.coalesce(totals.tardies, 0),
            longest_absence_streak=ibis.coalesce(totals.longest_absence_streak, 0),
            recent_days_absent=ibis.coalesce(recent.recent_days_absent, 0.0),
        )
    )
    return _rates(joined)


def year_attendance(
    stays: ir.Table,
    day_index: ir.Table,
    days: ir.Table,
    school_year_start: str,
) -> ir.Table:
    """Days enrolled and absent of each student and whole school year.

    ``days`` is the output of :func:`attendance_days`.

    Returns ``student_id``, ``school_year``, ``days_enrolled``, ``days_absent`` and
    ``attendance_rate`` for every student and year with a stay.
    """
    years = stays.select("student_id", "school_year").distinct()
    periods = years.mutate(
        as_of_date=year_first_day(years.school_year + 1, school_year_start),
        recent_from=ibis.null("date"),
    )
    enrolled = enrolled_days(periods, stays, day_index)
    counted = days.filter(days.counted)
    absent = counted.group_by("student_id", "school_year").agg(
        days_absent=counted.missed.sum()
    )
    keyed = periods.select("student_id", "school_year", "as_of_date")
    totals = attach(keyed, enrolled, ["student_id", "as_of_date"])
    totals = attach(totals, absent, ["student_id", "school_year"])
    days_enrolled = ibis.coalesce(totals.days_enrolled, 0)
    days_absent = ibis.coalesce(totals.days_absent, 0.0)
    return totals.select(
        "student_id",
        "school_year",
        days_enrolled=days_enrolled.cast("float64"),
        days_absent=days_absent,
        attendance_rate=_present_share(days_absent, days_enrolled),
    )


def _rates(counts: ir.Table) -> ir.Table:
    """Rates from the day counts; null where the denominator is zero."""
    earlier_enrolled = counts.days_enrolled - counts.recent_days_enrolled
    earlier_absent = counts.days_absent - counts.recent_days_absent
    recent_rate = _present_share(counts.recent_days_absent, counts.recent_days_enrolled)
    earlier_rate = _present_share(earlier_absent, earlier_enrolled)
    return counts.select(
        "student_id",
        "as_of_date",
        days_enrolled=counts.days_enrolled.cast("float64"),
        days_absent=counts.days_absent,
        attendance_rate=_present_share(counts.days_absent, counts.days_enrolled),
        unexcused_share=_share(counts.unexcused_missed, counts.absence_missed),
        tardies=counts.tardies.cast("float64"),
        longest_absence_streak=counts.longest_absence_streak.cast("float64"),
        attendance_rate_last_20=recent_rate,
        attendance_trend=recent_rate - earlier_rate,
    )


def _present_share(
    absent: ir.NumericValue, enrolled: ir.NumericValue
) -> ir.FloatingValue:
    return 1.0 - _share(absent, enrolled)


def _share(part: ir.NumericValue, whole: ir.NumericValue) -> ir.FloatingValue:
    """``part / whole``, null when ``whole`` is zero."""
    return ibis.ifelse(whole > 0, part / whole, ibis.null("float64"))
