"""Who is enrolled where, and on how many instructional days.

Enrolment comes from stays (one ``enrollments`` row is a stay of a student at a
school, ``entry_date`` to ``exit_date``, both inclusive, an empty exit meaning still
enrolled). A student is *enrolled on* a date when ``entry_date <= date <= exit_date``.
The days a student was enrolled are the instructional days of the school of each stay
between its entry and exit, and a day is counted once even when two stays overlap:
stays are walked in order of entry and each one counts only from the day after the
latest exit of the stays before it.

Notes
-----
On a day covered by two overlapping stays the earlier stay's school calendar decides
whether it was a school day. Calendars of one district rarely differ on such days.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features._calendar import ONE_DAY, year_first_day, year_last_day


def enrolment_stays(enrollments: ir.Table, school_year_start: str) -> ir.Table:
    """Stays clipped to their school year, with the first day each one counts.

    Adds ``first_day`` and ``last_day`` (the stay inside its school year, both
    inclusive; an empty exit runs to the end of the year) and ``counted_from``
    (inclusive): ``first_day``, or the day after the latest ``last_day`` of the
    student's stays that entered earlier in the year, whichever is later. A stay that
    another covers entirely gets ``counted_from > last_day`` and counts no days.
    Adds ``next_entry`` too: the entry date of the student's next stay that year in
    order of entry, then grade (null for the last), so that the stay entered last on
    or before a date is the one with ``entry_date <= date < next_entry``.
    """
    year_first = year_first_day(enrollments.school_year, school_year_start)
    year_last = year_last_day(enrollments.school_year, school_year_start)
    stays = enrollments.select(
        "student_id",
        "school_id",
        "school_year",
        "grade",
        "entry_date",
        "exit_date",
        "exit_reason",
        first_day=ibis.greatest(enrollments.entry_date, year_first),
        last_day=ibis.least(ibis.coalesce(enrollments.exit_date, year_last), year_last),
    )
    # Order by entry then school, never by exit: an exit on or after an as-of date
    # is an event after it and must not change which stay counts a day before it.
    # The latest last day of the stays entered before this one: one window over
    # the earlier rows, not a running maximum and then its lag (two sorts).
    entered_before = ibis.window(
        group_by=["student_id", "school_year"],
        order_by=["first_day", "school_id"],
        rows=(None, -1),
    )
    before = stays.last_day.max().over(entered_before)
    in_entry_order = ibis.window(
        group_by=["student_id", "school_year"], order_by=["entry_date", "grade"]
    )
    return stays.mutate(
        counted_from=ibis.ifelse(
            before.isnull(),
            stays.first_day,
            ibis.greatest(stays.first_day, before + ONE_DAY),
        ),
        next_entry=stays.entry_date.lead().over(in_entry_order),
    )


def enrolled_on(stays: ir.Table, as_of_dates: ir.Table) -> ir.Table:
    """One row per student enrolled on each as-of date (both stay ends inclusive).

    ``school_id``, ``grade`` and ``entry_date`` come from the stay with the latest
    entry when two stays cover the date (then the larger ``school_id``).
    """
    covering = stays.join(
        as_of_dates,
        [
            stays.school_year == as_of_dates.school_year,
            stays.entry_date <= as_of_dates.as_of_date,
            stays.last_day >= as_of_dates.as_of_date,
        ],
    ).select(
        stays.student_id,
        as_of_dates.as_of_date,
        as_of_dates.school_year,
        as_of_dates.checkpoint,
        stays.school_id,
        stays.grade,
        stays.entry_date,
    )
    latest_first = ibis.window(
        group_by=["student_id", "as_of_date"],
        order_by=[ibis.desc("entry_date"), ibis.desc("school_id")],
    )
    return (
        covering.mutate(rank=ibis.row_number().over(latest_first))
        .filter(ibis._.rank == 0)
        .drop("rank")
    )


def recent_window_start(
    day_index: ir.Table, as_of_dates: ir.Table, school_year_start: str
) -> ir.Table:
    """Per school and as-of date, the first day of the last 20 instructional days.

    ``recent_from`` (inclusive) is the 20th-last instructional day of the school
    before ``as_of_date``, or the first day of the school year when the school has
    taught fewer than 20 days of it so far.
    """
    on_eve = day_index.join(
        as_of_dates, day_index.date == as_of_dates.as_of_date - ONE_DAY
    )
    year_first = year_first_day(as_of_dates.school_year, school_year_start)
    return on_eve.select(
        day_index.school_id,
        as_of_dates.as_of_date,
        recent_from=ibis.greatest(
            ibis.coalesce(day_index.recent_from, year_first), year_first
        ),
    )


def enrolled_days(
    student_periods: ir.Table, stays: ir.Table, day_index: ir.Table
) -> ir.Table:
    """Instructional days enrolled per student and period.

    ``student_periods`` has ``student_id``, ``school_year``, ``as_of_date`` (the
    exclusive end of the period) and ``recent_from`` (inclusive start of the recent
    window, may be null). Returns ``student_id``, ``as_of_date``, ``days_enrolled``
    (days from the start of the school year) and ``recent_days_enrolled`` (days on or
    after ``recent_from``; 0 when it is null), both before ``as_of_date``.
    """
    spans = student_periods.join(
        stays,
        [
            student_periods.student_id == stays.student_id,
            student_periods.school_year == stays.school_year,
            stays.counted_from < student_periods.as_of_date,
        ],
    ).select(
        student_periods.student_id,
        student_periods.as_of_date,
        stays.school_id,
        start=stays.counted_from,
        # No recent window without a start (a school without a calendar): no days.
        recent_start=ibis.ifelse(
            student_periods.recent_from.isnull(),
            ibis.null("date"),
            ibis.greatest(stays.counted_from, student_periods.recent_from),
        ),
        end=ibis.least(stays.last_day, student_periods.as_of_date - ONE_DAY),
    )
    spans = _days_through(spans, day_index, "end", "through_end", shift=0)
    spans = _days_through(spans, day_index, "start", "through_start", shift=1)
    spans = _days_through(spans, day_index, "recent_start", "through_recent", shift=1)
    return spans.group_by("student_id", "as_of_date").agg(
        days_enrolled=_span_days(spans.start, spans.end, spans, "through_start").sum(),
        recent_days_enrolled=_span_days(
            spans.recent_start, spans.end, spans, "through_recent"
        ).sum(),
    )


def _days_through(
    spans: ir.Table, day_index: ir.Table, column: str, name: str, shift: int
) -> ir.Table:
    """Attach ``days_through`` of ``column`` minus ``shift`` days as ``name``."""
    looked_up = spans[column] - ibis.interval(days=shift) if shift else spans[column]
    keyed = spans.mutate(lookup_date=looked_up)
    index = day_index.select(
        index_school_id="school_id", index_date="date", **{name: "days_through"}
    )
    # Key pairs by name: both sides may descend from the day index, and named keys
    # keep Ibis from confusing their columns.
    joined = keyed.left_join(
        index, [("school_id", "index_school_id"), ("lookup_date", "index_date")]
    )
    return joined.select(
        *[keyed[c] for c in spans.columns], **{name: ibis.coalesce(index[name], 0)}
    )


def _span_days(
    start: ir.DateValue, end: ir.DateValue, spans: ir.Table, before_start: str
) -> ir.IntegerValue:
    """School days from ``start`` to ``end`` (inclusive), 0 for an empty span."""
    return ibis.ifelse(end >= start, spans.through_end - spans[before_start], 0)
