"""What an Ed-Fi export does not say outright: calendars and enrolments.

A district that sends no StudentEnrollment interchange still tells us where each
student was: every absence, discipline incident, gradebook mark and intervention
names a school and a date. :func:`derive_enrollments` turns those references into
one stay per student, school and school year, running from the school's first
instructional day to its last (both inclusive). When a student is seen at two
schools in one year, the stays are cut where the second school's first reference
falls.

A worked example, Grand Bend High School in 2021-2022: its sessions run from
2021-08-23 to 2021-12-17 and from 2022-01-04 to 2022-05-27. A student whose only
records are absences there on 2021-08-31 and 2022-03-02 gets the stay
2021-08-23 to 2022-05-27, exit reason ``end_of_year``. Had the same student a
first absence at the middle school on 2022-02-14, the stays would be the high school
from 2021-08-23 to 2022-02-13 (``transfer``) and the middle school from 2022-02-14
to 2022-05-27.

Calendars: Ed-Fi lists instructional days as CalendarDate records; an export that
lists fewer of them than its sessions' ``TotalInstructionalDays`` is taken to be
incomplete, and the calendar is derived as every weekday inside the school's
sessions (both ends inclusive). Holidays are not in such an export, so a derived
calendar over-counts enrolled days; the notes say by how much.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from features._edfi_read import Session

# Month from which a date belongs to the next school year when no session says
# otherwise: 2021-08-01 is in 2022 (2021-2022), 2021-07-31 in 2021.
_FIRST_MONTH_OF_SCHOOL_YEAR = 8
# Weekday numbers (Monday = 0) of a school week.
_SCHOOL_DAYS = range(0, 5)


@dataclass(frozen=True)
class SchoolYears:
    """Finds the school year of a dated record from the sessions of its school."""

    sessions: tuple[Session, ...]

    def of(self, school_id: str, date: str) -> str:
        """The spring year of the session of ``school_id`` that holds ``date``.

        Falls back to any school's session holding the date, then to the calendar
        rule: on or after 1 August is the next spring's school year.
        """
        candidates = [s for s in self.sessions if s.begin_date <= date <= s.end_date]
        for session in candidates:
            if session.school_id == school_id:
                return session.school_year
        if candidates:
            return candidates[0].school_year
        day = dt.date.fromisoformat(date)
        return str(
            day.year + 1 if day.month >= _FIRST_MONTH_OF_SCHOOL_YEAR else day.year
        )


@dataclass(frozen=True)
class CalendarResult:
    days: dict[tuple[str, str], list[str]]
    notes: list[str]


def build_calendars(
    sessions: Iterable[Session],
    instructional: dict[tuple[str, str], set[str]],
) -> CalendarResult:
    """Instructional days per (school, school year), listed or derived.

    ``instructional`` holds the days the export lists as instructional. Where the
    sessions state more instructional days than are listed, the calendar is every
    weekday inside the sessions, plus the listed days.
    """
    sessions_by_key: dict[tuple[str, str], list[Session]] = defaultdict(list)
    for session in sessions:
        sessions_by_key[(session.school_id, session.school_year)].append(session)
    days: dict[tuple[str, str], list[str]] = {}
    notes = []
    for key in sorted(set(sessions_by_key) | set(instructional)):
        listed = instructional.get(key, set())
        school_sessions = sessions_by_key.get(key, [])
        stated = [s.instructional_days for s in school_sessions]
        stated_total = sum(stated) if stated and None not in stated else None
        if not school_sessions or (
            stated_total is not None and len(listed) >= stated_total
        ):
            days[key] = sorted(listed)
            continue
        weekdays = set(listed)
        for session in school_sessions:
            weekdays.update(_weekdays(session.begin_date, session.end_date))
        days[key] = sorted(weekdays)
        school_id, year = key
        first, last = days[key][0], days[key][-1]
        note = (
            f"calendar of school {school_id}, {year}: {len(weekdays)} instructional "
            f"days derived as the weekdays of its sessions ({first} to {last}), "
            f"since the export lists {len(listed)}"
        )
        if stated_total is not None:
            extra = len(weekdays) - stated_total
            note += (
                f"; the sessions state {stated_total}, so holidays missing from the "
                f"export over-count enrolled days by {extra}"
            )
        notes.append(note)
    return CalendarResult(days, notes)


@dataclass(frozen=True)
class Reference:
    """A record that places a student at a school on a date."""

    student_id: str
    school_id: str
    school_year: str
    date: str


def derive_enrollments(
    references: Iterable[Reference],
    calendars: dict[tuple[str, str], list[str]],
) -> list[dict[str, str]]:
    """One stay per student, school and year, from the references to them.

    Returns rows with ``student_id``, ``school_id``, ``school_year``,
    ``entry_date``, ``exit_date`` (inclusive) and ``exit_reason``; the grade is
    filled in by the caller.
    """
    first_seen: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    last_seen: dict[tuple[str, str, str], str] = {}
    for ref in references:
        if not (ref.student_id and ref.school_id and ref.date):
            continue
        schools = first_seen[(ref.student_id, ref.school_year)]
        if ref.school_id not in schools or ref.date < schools[ref.school_id]:
            schools[ref.school_id] = ref.date
        key = (ref.student_id, ref.school_year, ref.school_id)
        last_seen[key] = max(last_seen.get(key, ref.date), ref.date)
    rows = []
    for (student_id, year), schools in sorted(first_seen.items()):
        ordered = sorted(schools.items(), key=lambda item: (item[1], item[0]))
        for position, (school_id, first_date) in enumerate(ordered):
            school_days = calendars.get((school_id, year), [])
            last_ref = last_seen[(student_id, year, school_id)]
            if position == 0:
                entry = school_days[0] if school_days else first_date
                entry = min(entry, first_date)
            else:
                entry = first_date
            if position + 1 < len(ordered):
                next_entry = dt.date.fromisoformat(ordered[position + 1][1])
                exit_date = (next_entry - dt.timedelta(days=1)).isoformat()
                reason = "transfer"
            else:
                exit_date = school_days[-1] if school_days else last_ref
                exit_date = max(exit_date, last_ref)
                reason = "end_of_year"
            rows.append(
                {
                    "student_id": student_id,
                    "school_id": school_id,
                    "school_year": year,
                    "entry_date": entry,
                    "exit_date": exit_date,
                    "exit_reason": reason,
                }
            )
    return rows


def grade_from_age(
    birth_date: str, school_year: str, lowest: int | None, highest: int | None
) -> int | None:
    """The usual grade for a student's age, kept inside the school's grades.

    A child aged 5 on 1 September of the autumn of the school year is in
    kindergarten (grade 0), aged 6 in grade 1, and so on. Born 2008-09-13, in
    2021-2022: aged 12 on 2021-09-01, so grade 7; at a school of grades 9 to 12
    that becomes 9.
    """
    if not birth_date:
        return None
    born = dt.date.fromisoformat(birth_date)
    cutoff = dt.date(int(school_year) - 1, 9, 1)
    age = (
        cutoff.year - born.year - ((cutoff.month, cutoff.day) < (born.month, born.day))
    )
    grade = age - 5
    if lowest is not None:
        grade = max(grade, lowest)
    if highest is not None:
        grade = min(grade, highest)
    return grade


def _weekdays(first: str, last: str) -> list[str]:
    """Every Monday to Friday from ``first`` to ``last``, both inclusive."""
    day = dt.date.fromisoformat(first)
    end = dt.date.fromisoformat(last)
    days = []
    while day <= end:
        if day.weekday() in _SCHOOL_DAYS:
            days.append(day.isoformat())
        day += dt.timedelta(days=1)
    return days
