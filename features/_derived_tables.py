"""What ingest derives from the canonical tables and keeps in the warehouse beside them.

Every snapshot starts from the same steps over the whole warehouse: the enrolment
stays clipped to their school years (:func:`features._enrolment.enrolment_stays`),
the instructional-day index of the calendars
(:func:`features._calendar.instructional_day_index`), the attendance rows grouped per
student and day and placed in enrolment
(:func:`features._attendance.attendance_days`), and each student's whole-year
attendance (:func:`features._attendance.year_attendance`), which the labels read
too. Ingest builds them once, from the canonical tables it has just written, and
stores them as ``enrolment_stays``, ``day_index``, ``attendance_days`` and
``attendance_years``: grouping and placing twenty million attendance rows is most of
a snapshot's work, and a district builds many snapshots from one export.

The stored tables are the same Ibis expressions the builders would otherwise run,
materialised; their comment records the version and the school-year start they
were built with. A warehouse without them (written before they existed, or by
``write_warehouse`` without a school-year start), or built by another version or
with another start than the config's, is read the slow way: the builders derive
them.
"""

from __future__ import annotations

import logging

import duckdb
import ibis
import ibis.expr.types as ir

from features._attendance import attendance_days, year_attendance
from features._calendar import instructional_day_index, school_year_of
from features._enrolment import enrolment_stays

logger = logging.getLogger(__name__)

STORED_STAYS = "enrolment_stays"
STORED_DAY_INDEX = "day_index"
STORED_DAYS = "attendance_days"
STORED_YEARS = "attendance_years"
STORED_TABLES = (STORED_STAYS, STORED_DAY_INDEX, STORED_DAYS, STORED_YEARS)
# The comment a stored table carries: what it was built with. The version changes
# whenever a derived table changes shape; an older one is then derived again.
_COMMENT = "ontrack derived tables v2, school_year_start={}"


def store_derived_tables(
    connection: duckdb.DuckDBPyConnection, school_year_start: str
) -> dict[str, int]:
    """Build the derived tables from the warehouse tables of ``connection``.

    Replaces them if they exist. Rows are ordered by school year and student (then
    date; the day index by date): a snapshot reading one or two school years skips
    the blocks of the others, and grouping rows that arrive student by student is
    several times faster than grouping them in date order. Returns the rows stored
    per table (none when the warehouse has no enrolment or calendar).
    """
    con = ibis.duckdb.from_connection(connection)
    calendar = con.table("calendar")
    enrollments = con.table("enrollments")
    found = con.to_pyarrow(_school_years(calendar, enrollments, school_year_start))
    years = sorted(year for year in found["school_year"].to_pylist() if year)
    for name in STORED_TABLES:
        connection.execute(f"DROP TABLE IF EXISTS {name}")
    if not years:
        return {}
    stays = enrolment_stays(enrollments, school_year_start)
    stays = con.create_table(
        STORED_STAYS, stays.order_by("school_year", "student_id", "first_day")
    )
    day_index = instructional_day_index(calendar, years, school_year_start)
    day_index = con.create_table(
        STORED_DAY_INDEX, day_index.order_by("date", "school_id")
    )
    days = attendance_days(con.table("attendance"), stays, day_index, school_year_start)
    days = con.create_table(
        STORED_DAYS, days.order_by("school_year", "student_id", "date")
    )
    totals = year_attendance(stays, day_index, days, school_year_start)
    con.create_table(STORED_YEARS, totals.order_by("school_year", "student_id"))
    rows = {}
    for name in STORED_TABLES:
        connection.execute(
            f"COMMENT ON TABLE {name} IS '{_COMMENT.format(school_year_start)}'"
        )
        (rows[name],) = connection.execute(f"SELECT count(*) FROM {name}").fetchone()
    return rows


def stored_derived_tables(con, school_year_start: str) -> dict[str, ir.Table]:
    """The stored derived tables of an Ibis DuckDB connection, if usable.

    Empty when the warehouse lacks them or built them with another version or
    school-year start (then logged: the snapshots derive them, the same but
    slower).
    """
    names = ", ".join(f"'{name}'" for name in STORED_TABLES)
    found = dict(
        con.raw_sql(
            "SELECT table_name, comment FROM duckdb_tables() "
            f"WHERE table_name IN ({names})"
        ).fetchall()
    )
    if set(found) != set(STORED_TABLES):
        logger.info(
            "the warehouse stores no derived tables: deriving them "
            "(run `ontrack ingest` again to store them)"
        )
        return {}
    comments = {comment or "no school-year start" for comment in found.values()}
    if comments != {_COMMENT.format(school_year_start)}:
        logger.warning(
            "the warehouse's derived tables are marked %s, not %s (this version, "
            "the config's school-year start): deriving them (run `ontrack ingest` "
            "again to store them)",
            " and ".join(repr(comment) for comment in sorted(comments)),
            repr(_COMMENT.format(school_year_start)),
        )
        return {}
    return {name: con.table(name) for name in STORED_TABLES}


def _school_years(
    calendar: ir.Table, enrollments: ir.Table, school_year_start: str
) -> ir.Table:
    """The school years of the calendar's dates and of the enrolments."""
    taught = calendar.select(
        school_year=school_year_of(calendar.date, school_year_start).cast("int64")
    )
    enrolled = enrollments.select(school_year=enrollments.school_year.cast("int64"))
    return taught.union(enrolled)
