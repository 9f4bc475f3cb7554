"""Instructional calendars of the demo district, one school year at a time.

Every school of the district starts on the same day in late August and closes the
usual US holidays (Labor Day, Veterans Day, Thanksgiving Wednesday to Friday, a
winter break from 21 December to 3 January inclusive, Martin Luther King Jr. Day,
Presidents' Day, a spring break week, Memorial Day, Juneteenth). Each school then
takes two professional-development days of its own and holds 178 to 180
instructional days, so calendars differ a little between schools and end around
the turn of May and June.

The days of all schools are laid end to end in one array: school ``s`` owns
``dates[starts[s]:starts[s + 1]]``. The generator refers to a day by its index in that
array (a *day index*), which turns "the next instructional day" into ``+ 1`` and keeps
every event on a day of the right school's calendar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

N_TERMS = 4
MIN_DAYS, MAX_DAYS = 178, 180
# Absence weight of a day, relative to the school-year mean. Winter (December to
# February) is the flu season; Mondays and Fridays stretch weekends.
MONTH_WEIGHT = {
    8: 0.80,
    9: 0.85,
    10: 0.90,
    11: 1.00,
    12: 1.15,
    1: 1.20,
    2: 1.20,
    3: 1.05,
    4: 0.95,
    5: 1.00,
    6: 1.10,
}
WEEKDAY_WEIGHT = np.array([1.18, 0.93, 0.90, 0.94, 1.20])  # Monday .. Friday
# Extra weight of the last instructional day before a break of four or more days.
BEFORE_BREAK_WEIGHT = 1.3


@dataclass(frozen=True)
class YearCalendar:
    """The instructional days of every school in one school year.

    ``dates`` holds the days of school 0, then of school 1, and so on; ``starts`` has
    one more entry than there are schools. ``cum_weight[i]`` is the sum of the
    absence weights of days ``0 .. i - 1`` (so ``cum_weight[0] == 0``); the weights
    average 1 within each school. ``term`` is the quarter (0 to 3) of each day and
    ``term_end[s, t]`` the day index of the last day of quarter ``t`` at school
    ``s``; ``test_day[s, k]`` is the day index of the spring state test ``k`` (ELA,
    math, science) at school ``s``.
    """

    school_year: int
    dates: np.ndarray
    starts: np.ndarray
    cum_weight: np.ndarray
    term: np.ndarray
    term_end: np.ndarray
    test_day: np.ndarray

    @property
    def first_day(self) -> np.ndarray:
        """Day index of each school's first instructional day."""
        return self.starts[:-1]

    @property
    def last_day(self) -> np.ndarray:
        """Day index of each school's last instructional day (inclusive)."""
        return self.starts[1:] - 1

    def school_of_day(self, day: np.ndarray) -> np.ndarray:
        """The school whose calendar holds each day index."""
        return np.searchsorted(self.starts, day, side="right") - 1


def build_year_calendar(
    school_year: int, n_schools: int, rng: np.random.Generator
) -> YearCalendar:
    """Lay out the instructional days of every school for one school year."""
    autumn = school_year - 1
    first = _first_weekday_on_or_after(dt.date(autumn, 8, 19), weekday=2)  # Wed
    candidates = np.arange(
        np.datetime64(first), np.datetime64(dt.date(school_year, 6, 30)) + 1
    )
    district_days = candidates[np.is_busday(candidates, holidays=_holidays(autumn))]
    # Professional-development days: weekdays from October to March.
    pd_pool = np.flatnonzero(
        (district_days >= np.datetime64(dt.date(autumn, 10, 1)))
        & (district_days < np.datetime64(dt.date(school_year, 4, 1)))
    )
    n_days = rng.integers(MIN_DAYS, MAX_DAYS + 1, size=n_schools)
    per_school = []
    for school in range(n_schools):
        dropped = rng.choice(pd_pool, size=2, replace=False)
        days = np.delete(district_days, dropped)[: n_days[school]]
        per_school.append(days)
    dates = np.concatenate(per_school)
    starts = np.concatenate([[0], np.cumsum([len(days) for days in per_school])])

    weight = np.concatenate([_absence_weight(days) for days in per_school])
    cum_weight = np.concatenate([[0.0], np.cumsum(weight)])
    position = np.arange(len(dates)) - np.repeat(starts[:-1], np.diff(starts))
    length = np.repeat(np.diff(starts), np.diff(starts))
    term = (position * N_TERMS // length).astype(np.int64)
    term_end = np.array(
        [
            starts[s]
            + (np.arange(1, N_TERMS + 1) * (starts[s + 1] - starts[s]) - 1) // N_TERMS
            for s in range(n_schools)
        ]
    )
    # Spring state tests about six weeks before the last day: ELA, then math two
    # days later, then science.
    last = starts[1:] - 1
    test_day = np.stack([last - 32, last - 30, last - 28], axis=1)
    return YearCalendar(
        school_year=school_year,
        dates=dates,
        starts=starts,
        cum_weight=cum_weight,
        term=term,
        term_end=term_end,
        test_day=test_day,
    )


def _absence_weight(days: np.ndarray) -> np.ndarray:
    """Relative absence weight of each of one school's days, averaging 1."""
    months = days.astype("datetime64[M]").astype(int) % 12 + 1
    weekdays = (days.astype("datetime64[D]").astype(int) + 3) % 7  # 1970-01-01: Thu
    by_month = np.zeros(13)
    by_month[list(MONTH_WEIGHT)] = list(MONTH_WEIGHT.values())
    weight = by_month[months] * WEEKDAY_WEIGHT[weekdays]
    gap_after = np.diff(days).astype(int)
    weight[:-1][gap_after >= 4] *= BEFORE_BREAK_WEIGHT
    return weight / weight.mean()


def _holidays(autumn: int) -> list[dt.date]:
    """District-wide closures of the school year whose autumn is in ``autumn``."""
    spring = autumn + 1
    thanksgiving = _nth_weekday(autumn, 11, weekday=3, n=4)
    spring_break = _nth_weekday(spring, 3, weekday=0, n=4)
    closures = [
        _nth_weekday(autumn, 9, weekday=0, n=1),  # Labor Day
        dt.date(autumn, 11, 11),  # Veterans Day
        *(thanksgiving + dt.timedelta(days=k) for k in (-1, 0, 1)),
        *(dt.date(autumn, 12, 21) + dt.timedelta(days=k) for k in range(14)),
        _nth_weekday(spring, 1, weekday=0, n=3),  # Martin Luther King Jr. Day
        _nth_weekday(spring, 2, weekday=0, n=3),  # Presidents' Day
        *(spring_break + dt.timedelta(days=k) for k in range(5)),
        _last_weekday(spring, 5, weekday=0),  # Memorial Day
        dt.date(spring, 6, 19),  # Juneteenth
    ]
    return closures


def _nth_weekday(year: int, month: int, *, weekday: int, n: int) -> dt.date:
    """The ``n``-th Monday (``weekday=0``) .. Sunday of a month."""
    first = _first_weekday_on_or_after(dt.date(year, month, 1), weekday)
    return first + dt.timedelta(weeks=n - 1)


def _last_weekday(year: int, month: int, *, weekday: int) -> dt.date:
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _first_weekday_on_or_after(day: dt.date, weekday: int) -> dt.date:
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)
