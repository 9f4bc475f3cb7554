"""School years, as-of dates and the instructional-day index of each school.

A school year is named by its spring year and starts on the config's
``school_year_start`` (month-day): with ``08-01``, school year 2024 runs from
2023-08-01 (inclusive) to 2024-08-01 (exclusive).

The *instructional-day index* has one row per school and calendar date (every date,
not only school days) with ``days_through``, the number of the school's instructional
days on or before that date. It turns "how many school days lie between two dates"
into two equality joins and a subtraction, which every engine runs (an ASOF join would
not compile for PySpark). Worked example: a school teaching Monday 2 October to Friday
6 October 2023 has ``days_through`` 1, 2, 3, 4, 5 on those days, 5 on Saturday 7 and
Sunday 8, and 6 on Monday 9. The days a stay from Wednesday 4 October to Monday 9
October (inclusive) was enrolled are ``days_through(9 Oct) - days_through(3 Oct)``
= 6 - 2 = 4.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from ontrack.config import DistrictConfig, checkpoint_date

logger = logging.getLogger(__name__)
# Columns of the frame of as-of dates that every builder receives.
AS_OF_SCHEMA = {"as_of_date": "date", "school_year": "int64", "checkpoint": "string"}
ONE_DAY = ibis.interval(days=1)
# Length of the recent window of the attendance trend, in instructional days.
RECENT_DAYS = 20


def month_day(value: str) -> tuple[int, int]:
    """``(month, day)`` of a ``MM-DD`` string."""
    month, day = value.split("-")
    return int(month), int(day)


def school_year_of_date(day: dt.date, school_year_start: str) -> int:
    """The school year (spring year) a date falls in."""
    month, first = month_day(school_year_start)
    return day.year + int((day.month, day.day) >= (month, first))


def first_day_of_year(school_year: int, school_year_start: str) -> dt.date:
    """The first day (inclusive) of a school year."""
    month, day = month_day(school_year_start)
    return dt.date(school_year - 1, month, day)


def school_year_of(day: ir.DateValue, school_year_start: str) -> ir.IntegerValue:
    """The school year of a date column, as an Ibis expression."""
    month, first = month_day(school_year_start)
    in_new_year = (day.month() * 100 + day.day()) >= month * 100 + first
    return day.year().cast("int64") + in_new_year.cast("int64")


def year_first_day(
    school_year: ir.IntegerValue, school_year_start: str
) -> ir.DateValue:
    """The first day (inclusive) of a school-year column."""
    month, day = month_day(school_year_start)
    return ibis.date(school_year - 1, month, day)


def year_last_day(school_year: ir.IntegerValue, school_year_start: str) -> ir.DateValue:
    """The last day (inclusive) of a school-year column."""
    month, day = month_day(school_year_start)
    return ibis.date(school_year, month, day) - ONE_DAY


def as_of_frame(config: DistrictConfig, as_of_dates: Iterable[dt.date]) -> pd.DataFrame:
    """The as-of dates with their school year and checkpoint (``MM-DD`` or ``""``).

    A date that is one of the config's checkpoints is named after it, so an ad-hoc
    ``--as-of 2023-10-01`` lands in the same rows as the checkpoint run.
    """
    start = config.district.school_year_start
    rows = []
    for as_of in sorted(set(as_of_dates)):
        school_year = school_year_of_date(as_of, start)
        month_day_text = as_of.strftime("%m-%d")
        is_checkpoint = month_day_text in config.calendar.checkpoints and (
            checkpoint_date(month_day_text, school_year) == as_of
        )
        rows.append((as_of, school_year, month_day_text if is_checkpoint else ""))
    return pd.DataFrame(rows, columns=list(AS_OF_SCHEMA))


def checkpoints_with_school_days(
    config: DistrictConfig, last_school_day_by_year: dict[int, dt.date]
) -> list[dt.date]:
    """Every checkpoint of every school year that has a school day on or after it.

    ``last_school_day_by_year`` maps a school year to its last instructional day
    (inclusive) across all schools. A checkpoint after the last school day of every
    year is logged as a warning: a checkpoint in the summer break (07-15 when school
    ends in June) never gets a snapshot. The config cannot refuse it, since only
    the calendar knows when teaching ends.
    """
    as_of_dates = [
        as_of
        for school_year, last_day in sorted(last_school_day_by_year.items())
        for as_of in config.checkpoint_dates(school_year)
        if as_of <= last_day
    ]
    built = {as_of.strftime("%m-%d") for as_of in as_of_dates}
    never = [md for md in config.calendar.checkpoints if md not in built]
    if never and last_school_day_by_year:
        last_days = ", ".join(
            f"{year}: {day}" for year, day in sorted(last_school_day_by_year.items())
        )
        logger.warning(
            "[calendar] checkpoints %s: after the last school day of every school "
            "year in the warehouse (%s); no snapshots are built for them",
            ", ".join(never),
            last_days,
        )
    return as_of_dates


def as_of_table(as_of_dates: pd.DataFrame) -> ir.Table:
    """An Ibis table of the frame :func:`as_of_frame` returns."""
    return ibis.memtable(as_of_dates, schema=AS_OF_SCHEMA)


def instructional_day_index(
    calendar: ir.Table, school_years: Sequence[int], school_year_start: str
) -> ir.Table:
    """Per school and date: ``instructional``, ``days_through``, ``recent_from``.

    The dates run from the day before the first school year in ``school_years`` to
    the last day of the last one, so that the day before any first day of a stay can
    be looked up. ``days_through`` counts the school's instructional days on or
    before the date (inclusive) and never decreases. ``recent_from`` is the first of
    the last ``RECENT_DAYS`` instructional days on or before the date (null while the
    school has taught fewer). Both depend only on calendar rows up to the date.
    """
    first = first_day_of_year(min(school_years), school_year_start) - dt.timedelta(1)
    last = first_day_of_year(max(school_years) + 1, school_year_start)
    dates = ibis.memtable(
        pd.DataFrame({"date": pd.date_range(first, last, inclusive="left").date}),
        schema={"date": "date"},
    )
    schools = calendar.select("school_id").distinct()
    school_days = calendar.select("school_id", "date").distinct()
    grid = schools.cross_join(dates)
    marked = grid.left_join(
        school_days.mutate(instructional=ibis.literal(True)), ["school_id", "date"]
    ).select(
        "school_id",
        "date",
        instructional=ibis.coalesce(ibis._.instructional, False),
    )
    running = ibis.cumulative_window(group_by="school_id", order_by="date")
    same_kind = ibis.window(group_by=["school_id", "instructional"], order_by="date")
    # Among the school's instructional days, the one RECENT_DAYS - 1 before; carried
    # forward over the days off with a running maximum (it never decreases).
    window_first = marked.date.lag(RECENT_DAYS - 1).over(same_kind)
    marked = marked.mutate(
        days_through=marked.instructional.cast("int64").sum().over(running),
        window_first=ibis.ifelse(marked.instructional, window_first, ibis.null("date")),
    )
    return marked.mutate(recent_from=marked.window_first.max().over(running)).drop(
        "window_first"
    )
