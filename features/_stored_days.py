"""The day-level attendance the warehouse keeps beside the canonical tables.

Every snapshot reads the attendance rows grouped per student and day and placed in
enrolment (:func:`features._attendance.attendance_days`). Ingest builds that table
once, from the canonical tables it has just written, and stores it in the warehouse
as ``attendance_days``: grouping and placing twenty million rows is most of a
snapshot's work, and a district builds many snapshots from one export.

The stored table is the same Ibis expression the builders would otherwise run,
materialised; its comment records the school-year start it was built with. A
warehouse without it (written before it existed, or by ``write_warehouse`` without
a school-year start), or built with another start than the config's, is read the
slow way: the builders derive the days themselves.
"""

from __future__ import annotations

import logging

import duckdb
import ibis
import ibis.expr.types as ir

from features._attendance import attendance_days
from features._calendar import instructional_day_index, school_year_of
from features._enrolment import enrolment_stays

logger = logging.getLogger(__name__)

STORED_DAYS = "attendance_days"
_COMMENT = "school_year_start={}"


def store_attendance_days(
    connection: duckdb.DuckDBPyConnection, school_year_start: str
) -> int:
    """Build ``attendance_days`` from the warehouse tables of ``connection``.

    Replaces the table if it exists. Rows are ordered by school year, student and
    date: a snapshot reading one or two school years skips the blocks of the
    others, and grouping rows that arrive student by student is several times
    faster than grouping them in date order. Returns the number of rows stored (0
    when the warehouse has no enrolment or calendar).
    """
    con = ibis.duckdb.from_connection(connection)
    calendar = con.table("calendar")
    enrollments = con.table("enrollments")
    found = con.to_pyarrow(_school_years(calendar, enrollments, school_year_start))
    years = sorted(year for year in found["school_year"].to_pylist() if year)
    connection.execute(f"DROP TABLE IF EXISTS {STORED_DAYS}")
    if not years:
        return 0
    days = attendance_days(
        con.table("attendance"),
        enrolment_stays(enrollments, school_year_start),
        instructional_day_index(calendar, years, school_year_start),
        school_year_start,
    )
    con.create_table(STORED_DAYS, days.order_by("school_year", "student_id", "date"))
    connection.execute(
        f"COMMENT ON TABLE {STORED_DAYS} IS '{_COMMENT.format(school_year_start)}'"
    )
    (rows,) = connection.execute(f"SELECT count(*) FROM {STORED_DAYS}").fetchone()
    return rows


def stored_attendance_days(con, school_year_start: str) -> ir.Table | None:
    """The stored ``attendance_days`` of an Ibis DuckDB connection, if usable.

    None when the warehouse has none or built it with another school-year start
    (then logged: the snapshots derive the days, the same but slower).
    """
    found = con.raw_sql(
        f"SELECT comment FROM duckdb_tables() WHERE table_name = '{STORED_DAYS}'"
    ).fetchall()
    if not found:
        logger.info(
            "the warehouse stores no attendance days: deriving them "
            "(run `ontrack ingest` again to store them)"
        )
        return None
    if found[0][0] != _COMMENT.format(school_year_start):
        logger.warning(
            "the warehouse's attendance days were built with %s, not the config's "
            "school_year_start=%s: deriving them (run `ontrack ingest` again to "
            "store them)",
            found[0][0] or "no school-year start",
            school_year_start,
        )
        return None
    return con.table(STORED_DAYS)


def _school_years(
    calendar: ir.Table, enrollments: ir.Table, school_year_start: str
) -> ir.Table:
    """The school years of the calendar's dates and of the enrolments."""
    taught = calendar.select(
        school_year=school_year_of(calendar.date, school_year_start).cast("int64")
    )
    enrolled = enrollments.select(school_year=enrollments.school_year.cast("int64"))
    return taught.union(enrolled)
