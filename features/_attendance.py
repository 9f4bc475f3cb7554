"""Attendance indicators: days enrolled and absent, rates, streaks and the trend.

An ``attendance`` row is an absence or a tardy (presence is implied). Per student and
day, the fractions missed of the ``excused`` and ``unexcused`` rows add up, capped at
one day; tardies are counted, never added to the days absent. A day counts only when
the student was enrolled that day (see ``_enrolment``) and it was an instructional
day of the school of that stay; other rows are ignored and reported. The school that
counts a day is the stay's: the ``school_id`` written on an attendance row is not read.
The recent window of the trend is the last 20 instructional days of the calendar of
the school the student attends on the as-of date.

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


def absence_days(
    attendance: ir.Table, stays: ir.Table, day_index: ir.Table, school_year_start: str
) -> ir.Table:
    """One row per student and date with an absence, placed in enrolment.

    Reads the ``excused`` and ``unexcused`` rows of ``attendance``; tardies are
    counted row by row (:func:`counted_tardies`). Returns ``student_id``,
    ``school_year``, ``date``, ``school_id`` (the school of the stay counting the
    day, null outside enrolment), ``counted`` (enrolled on an instructional day),
    ``days_through`` (that school's instructional-day number), ``missed`` (capped at
    1), ``unexcused_missed`` and ``absence_missed`` (the uncapped sum).
    """
    absences = attendance.filter(attendance.category.isin(ABSENCE_CATEGORIES))
    # Grouped on two keys with the school year added after: this grouping has about
    # one group per row and is the costliest step of a snapshot.
    per_day = absences.group_by("student_id", "date").agg(
        absence_missed=absences.fraction_missed.sum(),
        unexcused_missed=absences.fraction_missed.sum(
            where=absences.category == "unexcused"
        ),
    )
    per_day = per_day.select(
        "student_id",
        "date",
        school_year=school_year_of(per_day.date, school_year_start),
        absence_missed=ibis.coalesce(per_day.absence_missed, 0.0),
        unexcused_missed=ibis.coalesce(per_day.unexcused_missed, 0.0),
    )
    located = _placed(per_day, stays, day_index)
    return located.mutate(missed=ibis.least(located.absence_missed, 1.0))


def counted_tardies(
    attendance: ir.Table, stays: ir.Table, day_index: ir.Table, school_year_start: str
) -> ir.Table:
    """The ``tardy`` rows on days that count: ``student_id``, ``school_year``, ``date``.

    Row by row, not per day: a tardy adds nothing to the days absent, so only the
    count matters, and a grouping per day costs more than the rows it would save.
    """
    placed = placed_records(
        attendance.filter(attendance.category == TARDY),
        stays,
        day_index,
        school_year_start,
    )
    return placed.filter(placed.counted).select("student_id", "school_year", "date")


def placed_records(
    attendance: ir.Table, stays: ir.Table, day_index: ir.Table, school_year_start: str
) -> ir.Table:
    """Each attendance row, placed in enrolment like the days of :func:`absence_days`.

    Returns ``student_id``, ``date``, ``category`` and, as there, ``school_year``,
    ``school_id`` (the stay's, not the row's), ``counted`` and ``days_through``:
    every row of one student and day lands in the same stay and calendar.
    """
    rows = attendance.select(
        "student_id",
        "date",
        "category",
        school_year=school_year_of(attendance.date, school_year_start),
    )
    return _placed(rows, stays, day_index)


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
    absences: ir.Table,
    tardies: ir.Table,
) -> ir.Table:
    """Attendance of each student and period, from the period's start to its as-of.

    ``student_periods`` has ``student_id``, ``school_year``, ``as_of_date``
    (exclusive) and ``recent_from`` (inclusive, may be null); ``absences`` is the
    output of :func:`absence_days`, ``tardies`` of :func:`counted_tardies`. Returns
    one row per student and period with ``days_enrolled``, ``days_absent``,
    ``attendance_rate``, ``unexcused_share``, ``tardies``,
    ``longest_absence_streak``, ``attendance_rate_last_20`` and
    ``attendance_trend`` (the recent rate minus the rate before the window). A rate
    without days to divide by is null.
    """
    days = enrolled_days(student_periods, stays, day_index)
    counted = absences.filter(absences.counted)
    before = counted.join(
        student_periods,
        [
            counted.student_id == student_periods.student_id,
            counted.school_year == student_periods.school_year,
            counted.date < student_periods.as_of_date,
        ],
    ).select(
        counted.student_id,
        student_periods.as_of_date,
        counted.date,
        counted.missed,
        counted.unexcused_missed,
        counted.absence_missed,
        counted.school_id,
        counted.days_through,
        student_periods.recent_from,
    )
    totals = before.group_by("student_id", "as_of_date").agg(
        days_absent=before.missed.sum(),
        recent_days_absent=before.missed.sum(where=before.date >= before.recent_from),
        unexcused_missed=before.unexcused_missed.sum(),
        absence_missed=before.absence_missed.sum(),
    )
    tardy_before = tardies.join(
        student_periods,
        [
            tardies.student_id == student_periods.student_id,
            tardies.school_year == student_periods.school_year,
            tardies.date < student_periods.as_of_date,
        ],
    ).select(tardies.student_id, student_periods.as_of_date)
    tardy_counts = tardy_before.group_by("student_id", "as_of_date").agg(
        tardies=tardy_before.count()
    )
    streaks = _longest_streaks(before)
    keys = ["student_id", "as_of_date"]
    joined = (
        student_periods.select("student_id", "as_of_date")
        .left_join(days, keys)
        .select(
            "student_id",
            "as_of_date",
            days_enrolled=ibis.coalesce(ibis._.days_enrolled, 0),
            recent_days_enrolled=ibis.coalesce(ibis._.recent_days_enrolled, 0),
        )
    )
    joined = joined.left_join(totals, keys).select(
        *[joined[column] for column in joined.columns],
        days_absent=ibis.coalesce(totals.days_absent, 0.0),
        recent_days_absent=ibis.coalesce(totals.recent_days_absent, 0.0),
        unexcused_missed=ibis.coalesce(totals.unexcused_missed, 0.0),
        absence_missed=ibis.coalesce(totals.absence_missed, 0.0),
    )
    joined = joined.left_join(tardy_counts, keys).select(
        *[joined[column] for column in joined.columns],
        tardies=ibis.coalesce(tardy_counts.tardies, 0),
    )
    joined = joined.left_join(streaks, keys).select(
        *[joined[column] for column in joined.columns],
        longest_absence_streak=ibis.coalesce(streaks.longest_absence_streak, 0),
    )
    return _rates(joined)


def year_attendance(
    stays: ir.Table,
    day_index: ir.Table,
    absences: ir.Table,
    school_year_start: str,
) -> ir.Table:
    """Days enrolled and absent of each student and whole school year.

    Returns ``student_id``, ``school_year``, ``days_enrolled``, ``days_absent`` and
    ``attendance_rate`` for every student and year with a stay.
    """
    years = stays.select("student_id", "school_year").distinct()
    periods = years.mutate(
        as_of_date=year_first_day(years.school_year + 1, school_year_start),
        recent_from=ibis.null("date"),
    )
    days = enrolled_days(periods, stays, day_index)
    counted = absences.filter(absences.counted)
    absent = counted.group_by("student_id", "school_year").agg(
        days_absent=counted.missed.sum()
    )
    keyed = periods.select("student_id", "school_year", "as_of_date")
    totals = attach(keyed, days, ["student_id", "as_of_date"])
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


def _longest_streaks(before: ir.Table) -> ir.Table:
    """Longest run of whole days absent before each as-of date (gaps and islands).

    ``before`` holds the counted absence days of each student and period dated
    before its as-of date. On consecutive school days ``days_through`` rises by one,
    as does the row number of the student's whole-day absences at that school, so
    their difference is constant along a run and names it.
    """
    whole_days = before.filter(before.missed >= 1.0)
    in_order = ibis.window(
        group_by=["student_id", "as_of_date", "school_id"], order_by="date"
    )
    whole_days = whole_days.mutate(position=ibis.row_number().over(in_order))
    whole_days = whole_days.mutate(run=whole_days.days_through - whole_days.position)
    runs = whole_days.group_by("student_id", "as_of_date", "school_id", "run").agg(
        length=whole_days.count()
    )
    return runs.group_by("student_id", "as_of_date").agg(
        longest_absence_streak=runs.length.max()
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
