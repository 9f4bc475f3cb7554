"""Course-performance indicators: failing marks, core-course marks and credits.

A ``grades`` row is a student's mark in a course for a term; it is known at its
``term_end_date``, so a snapshot as of a date sees the terms that ended strictly
before it. Marks are numbers from 0 to 100; a row with only a letter counts for
credits but not for marks. A mark is failing when it is strictly below the
``failing_mark`` of the course-failure KPI; core subjects are that KPI's
``core_subjects``.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from features._calendar import year_first_day


def course_indicators(
    student_periods: ir.Table,
    grades: ir.Table,
    failing_mark: float,
    core_subjects: Sequence[str],
) -> ir.Table:
    """Marks of the terms that ended in each period's school year before its as-of.

    Returns ``student_id``, ``as_of_date``, ``failing_marks`` (count, 0 without
    marks), ``mean_core_mark`` and ``credit_ratio`` (credits earned over attempted;
    both null without a denominator), ``marks`` (count of numeric marks) and
    ``latest_core_mark``: the lowest core mark of the most recent term, the one the
    ABC course flag reads.
    """
    # Cut at the as-of dates (a handful of rows) before meeting the students.
    as_of = student_periods.select("school_year", "as_of_date").distinct()
    before = grades.join(
        as_of,
        [
            grades.school_year == as_of.school_year,
            grades.term_end_date < as_of.as_of_date,
        ],
    ).select(
        grades.student_id,
        as_of.as_of_date,
        grades.term_end_date,
        grades.mark,
        grades.credits_attempted,
        grades.credits_earned,
        core_mark=ibis.ifelse(
            grades.subject.isin(list(core_subjects)), grades.mark, ibis.null("float64")
        ),
    )
    # The most recent term's lowest core mark: the core mark that comes last in
    # order of term, then of the mark from high to low. One pass, no grouping by
    # term.
    latest_then_lowest = ibis.struct(
        {"term_end_date": before.term_end_date, "lowest": -before.core_mark}
    )
    marks = before.group_by("student_id", "as_of_date").agg(
        failing_marks=before.count(where=before.mark < failing_mark),
        core_total=before.core_mark.sum(),
        core_count=before.core_mark.count(),
        credits_earned=before.credits_earned.sum(),
        credits_attempted=before.credits_attempted.sum(),
        marks=before.mark.count(),
        latest_core_mark=before.core_mark.argmax(
            latest_then_lowest, where=before.core_mark.notnull()
        ),
    )
    periods = student_periods.select("student_id", "as_of_date")
    joined = periods.left_join(marks, ["student_id", "as_of_date"])
    return joined.select(
        periods.student_id,
        periods.as_of_date,
        failing_marks=ibis.coalesce(marks.failing_marks, 0).cast("float64"),
        mean_core_mark=ibis.ifelse(
            marks.core_count > 0,
            marks.core_total / marks.core_count,
            ibis.null("float64"),
        ),
        credit_ratio=ibis.ifelse(
            marks.credits_attempted > 0,
            marks.credits_earned / marks.credits_attempted,
            ibis.null("float64"),
        ),
        marks=ibis.coalesce(marks.marks, 0),
        latest_core_mark=marks.latest_core_mark,
    )


def year_failures(
    grades: ir.Table, failing_mark: float, school_year_start: str
) -> ir.Table:
    """Failing term marks of each student and whole school year.

    Returns ``student_id``, ``school_year`` and ``failing_marks`` for every student
    and year with a grade row. A term that ends after its school year is left out.
    """
    in_year = grades.filter(
        grades.term_end_date < year_first_day(grades.school_year + 1, school_year_start)
    )
    return in_year.group_by("student_id", "school_year").agg(
        failing_marks=in_year.count(where=in_year.mark < failing_mark).cast("float64")
    )


def final_core_marks(grades: ir.Table, core_subjects: Sequence[str]) -> ir.Table:
    """The final mark of each core course of each student and school year.

    A course's final mark is its mark in the term that ended last (of two rows on
    that day, the lower mark). Returns ``student_id``, ``school_year``,
    ``course_id`` and ``mark``; courses without a numeric mark are left out.
    """
    core = grades.filter(
        grades.subject.isin(list(core_subjects)), grades.mark.notnull()
    )
    last_first = ibis.window(
        group_by=["student_id", "school_year", "course_id"],
        order_by=[ibis.desc("term_end_date"), "mark"],
    )
    return (
        core.mutate(rank=ibis.row_number().over(last_first))
        .filter(ibis._.rank == 0)
        .select("student_id", "school_year", "course_id", "mark")
    )
