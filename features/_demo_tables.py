"""The demo district's rows as canonical tables (docs/CONTRACTS.md), and their files.

Builders turn the generator's index arrays into Arrow tables with the contract's
column names, codes and types: identifiers as zero-padded strings (school
``"0001"``, student ``"0000123"``, incident ``"00000042"``), dates as ISO dates,
booleans as booleans. :class:`TableFiles` appends them to one CSV or Parquet file
per table, so a large district is written a school year at a time.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from features import _demo_outcomes as outcomes
from features import _demo_population as population
from features._demo_calendar import N_TERMS, YearCalendar

STUDENT_ID_WIDTH, SCHOOL_ID_WIDTH, INCIDENT_ID_WIDTH = 7, 4, 8
FILE_FORMATS = ("csv", "parquet")

_ID = pa.string()
SCHEMAS = {
    "schools": pa.schema(
        [
            ("school_id", _ID),
            ("school_name", pa.string()),
            ("school_level", pa.string()),
            ("lowest_grade", pa.int64()),
            ("highest_grade", pa.int64()),
        ]
    ),
    "students": pa.schema(
        [
            ("student_id", _ID),
            ("birth_date", pa.date32()),
            ("gender", pa.string()),
            ("race_ethnicity", pa.string()),
            ("economically_disadvantaged", pa.bool_()),
            ("english_learner", pa.bool_()),
            ("disability", pa.bool_()),
            ("first_name", pa.string()),
            ("last_name", pa.string()),
        ]
    ),
    "enrollments": pa.schema(
        [
            ("student_id", _ID),
            ("school_id", _ID),
            ("school_year", pa.int64()),
            ("grade", pa.int64()),
            ("entry_date", pa.date32()),
            ("exit_date", pa.date32()),
            ("exit_reason", pa.string()),
        ]
    ),
    "calendar": pa.schema([("school_id", _ID), ("date", pa.date32())]),
    "attendance": pa.schema(
        [
            ("student_id", _ID),
            ("school_id", _ID),
            ("date", pa.date32()),
            ("category", pa.string()),
            ("fraction_missed", pa.float64()),
        ]
    ),
    "discipline": pa.schema(
        [
            ("incident_id", _ID),
            ("student_id", _ID),
            ("school_id", _ID),
            ("date", pa.date32()),
            ("behavior_category", pa.string()),
            ("action", pa.string()),
            ("days_removed", pa.int64()),
        ]
    ),
    "grades": pa.schema(
        [
            ("student_id", _ID),
            ("school_id", _ID),
            ("school_year", pa.int64()),
            ("term", pa.string()),
            ("term_end_date", pa.date32()),
            ("course_id", pa.string()),
            ("subject", pa.string()),
            ("mark", pa.int64()),
            ("letter", pa.string()),
            ("credits_attempted", pa.float64()),
            ("credits_earned", pa.float64()),
        ]
    ),
    "assessments": pa.schema(
        [
            ("student_id", _ID),
            ("school_year", pa.int64()),
            ("date", pa.date32()),
            ("subject", pa.string()),
            ("scale_score", pa.int64()),
            ("performance_level", pa.int64()),
            ("proficient", pa.bool_()),
        ]
    ),
    "programs": pa.schema(
        [
            ("student_id", _ID),
            ("program", pa.string()),
            ("begin_date", pa.date32()),
            ("end_date", pa.date32()),
        ]
    ),
}
TABLES = tuple(SCHEMAS)


def zero_padded(number: np.ndarray, width: int) -> pa.Array:
    """Numbers as zero-padded strings: ``zero_padded([7], 4) -> ["0007"]``."""
    return pa.array(np.strings.zfill(np.asarray(number).astype(str), width))


def _codes(names: tuple[str, ...], code: np.ndarray) -> pa.Array:
    return pc.take(pa.array(names), pa.array(code))


def _table(name: str, columns: dict[str, pa.Array | np.ndarray]) -> pa.Table:
    schema = SCHEMAS[name]
    arrays = [
        column.cast(field.type)
        if isinstance(column := columns[field.name], pa.Array)
        else pa.array(column, type=field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


class YearTables:
    """Builds one school year's tables from the generator's arrays.

    ``student_ids`` holds the id of every student index so far and ``school_ids``
    of every school index; rows refer to students and schools by index.
    """

    def __init__(
        self,
        calendar: YearCalendar,
        stays: population.Stays,
        student_ids: pa.Array,
        school_ids: pa.Array,
    ) -> None:
        self.calendar = calendar
        self.stays = stays
        self.student_ids = student_ids
        self.school_ids = school_ids

    def _student(self, stay: np.ndarray) -> pa.Array:
        return pc.take(self.student_ids, pa.array(self.stays.student[stay]))

    def _school(self, stay: np.ndarray) -> pa.Array:
        return pc.take(self.school_ids, pa.array(self.stays.school[stay]))

    def _date(self, day: np.ndarray) -> np.ndarray:
        return self.calendar.dates[day]

    def _year(self, n: int) -> np.ndarray:
        return np.full(n, self.calendar.school_year, dtype=np.int64)

    def calendar_table(self) -> pa.Table:
        school = self.calendar.school_of_day(np.arange(len(self.calendar.dates)))
        return _table(
            "calendar",
            {
                "school_id": pc.take(self.school_ids, pa.array(school)),
                "date": self.calendar.dates,
            },
        )

    def enrollments(self) -> pa.Table:
        every = np.arange(len(self.stays))
        return _table(
            "enrollments",
            {
                "student_id": self._student(every),
                "school_id": self._school(every),
                "school_year": self._year(len(every)),
                "grade": self.stays.grade,
                "entry_date": self._date(self.stays.entry),
                "exit_date": self._date(self.stays.exit),
                "exit_reason": _codes(population.EXIT_REASONS, self.stays.exit_reason),
            },
        )

    def attendance(self, rows: outcomes.AttendanceRows) -> pa.Table:
        return _table(
            "attendance",
            {
                "student_id": self._student(rows.stay),
                "school_id": self._school(rows.stay),
                "date": self._date(rows.day),
                "category": _codes(outcomes.CATEGORIES, rows.category),
                "fraction_missed": rows.fraction,
            },
        )

    def discipline(self, rows: outcomes.IncidentRows, first_incident: int) -> pa.Table:
        number = np.arange(first_incident, first_incident + len(rows.stay))
        return _table(
            "discipline",
            {
                "incident_id": zero_padded(number, INCIDENT_ID_WIDTH),
                "student_id": self._student(rows.stay),
                "school_id": self._school(rows.stay),
                "date": self._date(rows.day),
                "behavior_category": _codes(outcomes.BEHAVIORS, rows.behavior),
                "action": _codes(outcomes.ACTIONS, rows.action),
                "days_removed": rows.days_removed,
            },
        )

    def grades(self, rows: outcomes.MarkRows) -> pa.Table:
        course_id, subject = outcomes.course_catalog()
        term_end = self.calendar.term_end[self.stays.school[rows.stay], rows.term]
        return _table(
            "grades",
            {
                "student_id": self._student(rows.stay),
                "school_id": self._school(rows.stay),
                "school_year": self._year(len(rows.stay)),
                "term": _codes(tuple(f"Q{t + 1}" for t in range(N_TERMS)), rows.term),
                "term_end_date": self._date(term_end),
                "course_id": pc.take(pa.array(course_id), pa.array(rows.course)),
                "subject": pc.take(pa.array(subject), pa.array(rows.course)),
                "mark": rows.mark,
                "letter": _codes(outcomes.LETTERS, outcomes.letters(rows.mark)),
                "credits_attempted": rows.credits_attempted,
                "credits_earned": rows.credits_earned,
            },
        )

    def assessments(self, rows: outcomes.TestRows) -> pa.Table:
        return _table(
            "assessments",
            {
                "student_id": self._student(rows.stay),
                "school_year": self._year(len(rows.stay)),
                "date": self._date(rows.day),
                "subject": _codes(outcomes.TEST_SUBJECTS, rows.subject),
                "scale_score": rows.scale_score,
                "performance_level": rows.performance_level,
                "proficient": rows.performance_level >= 3,
            },
        )

    def programs(self, rows: outcomes.ProgramStays) -> pa.Table:
        return _table(
            "programs",
            {
                "student_id": self._student(rows.stay),
                "program": _codes(outcomes.PROGRAMS, rows.program),
                "begin_date": self._date(rows.begin),
                "end_date": self._date(rows.end),
            },
        )


def schools_table(schools: population.Schools, school_ids: pa.Array) -> pa.Table:
    lowest, highest = np.array(population.LEVEL_GRADES)[schools.level].T
    return _table(
        "schools",
        {
            "school_id": school_ids,
            "school_name": pa.array(schools.name),
            "school_level": _codes(population.LEVELS, schools.level),
            "lowest_grade": lowest,
            "highest_grade": highest,
        },
    )


def students_table(students: population.Students, student_ids: pa.Array) -> pa.Table:
    return _table(
        "students",
        {
            "student_id": student_ids,
            "birth_date": students.birth_date,
            "gender": _codes(population.GENDERS, students.gender),
            "race_ethnicity": _codes(population.RACES, students.race),
            "economically_disadvantaged": students.economically_disadvantaged,
            "english_learner": students.english_learner,
            "disability": students.disability,
            "first_name": _codes(population.FIRST_NAMES, students.first_name),
            "last_name": _codes(population.LAST_NAMES, students.last_name),
        },
    )


class TableFiles:
    """One open file per canonical table in ``folder``, appended to in order.

    Every file gets its header (CSV) or schema (Parquet) even if no rows follow.
    Use as a context manager: the files are closed on the way out.
    """

    def __init__(self, folder: Path, file_format: str) -> None:
        self.row_counts = dict.fromkeys(TABLES, 0)
        self._writers: dict[str, pa_csv.CSVWriter | pq.ParquetWriter] = {}
        for name, schema in SCHEMAS.items():
            path = folder / f"{name}.{file_format}"
            if file_format == "csv":
                self._writers[name] = pa_csv.CSVWriter(path, schema)
            else:
                self._writers[name] = pq.ParquetWriter(path, schema)

    def write(self, name: str, table: pa.Table) -> None:
        self._writers[name].write_table(table)
        self.row_counts[name] += table.num_rows

    def __enter__(self) -> TableFiles:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for writer in self._writers.values():
            writer.close()
