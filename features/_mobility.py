"""Mobility and context: schools attended, time at the school, grade, age, programs.

``schools_this_year`` counts the schools of the stays entered on or before the as-of
date in its school year; ``schools_last_year`` those of the whole previous year (0 when
the student was not enrolled). ``new_to_district`` is 1 when the student has no stay
in an earlier school year. In the warehouse's first school year nobody's past is
known, and both are null. A student is ``over_age`` when on 1 September of the school
year's autumn they are at least ``grade + 6`` years old (kindergarten, grade 0, at 6):
a year older than the usual age for the grade. A program counts as current when it
ran on the day before the as-of date (begin and end inclusive, an empty end ongoing).

The protected attributes ride along from ``students`` for audits; booleans become 0/1
floats. Birth dates are read for ``over_age`` and never leave this module.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features._calendar import ONE_DAY
from features._joins import attach, attach_all

PROTECTED_FLAGS = ("disability", "english_learner", "economically_disadvantaged")
PROTECTED_LABELS = ("race_ethnicity", "gender")
# The usual age on 1 September for grade g is g + 5; a year more is over age.
OVER_AGE_YEARS = 6
AGE_DATE_MONTH_DAY = (9, 1)
NAMED_PROGRAMS = ("tutoring", "mentoring")


def mobility_indicators(
    spine: ir.Table,
    stays: ir.Table,
    enrollments: ir.Table,
    students: ir.Table,
    programs: ir.Table,
) -> ir.Table:
    """Mobility and context columns of each enrolled student and as-of date.

    ``spine`` is the output of ``enrolled_on`` (one row per student and as-of date
    with ``school_year``, ``grade`` and the current stay's ``entry_date``);
    ``stays`` those of the as-of dates' school years and the previous ones;
    ``enrollments`` every stay in the warehouse, for the student's history.
    """
    keys = ["student_id", "as_of_date"]
    result = spine.select(
        *keys,
        "school_year",
        days_since_entry=spine.as_of_date.delta(spine.entry_date, unit="day").cast(
            "float64"
        ),
        grade=spine.grade.cast("float64"),
    )
    parts = [
        _schools(spine, stays),
        _history(spine, enrollments),
        _context(spine, students),
        _programs(spine, programs),
    ]
    result = attach_all(result, parts, keys)
    # In the warehouse's first school year nobody's previous year is known.
    return result.mutate(
        schools_last_year=ibis.ifelse(
            result.new_to_district.isnull(),
            ibis.null("float64"),
            result.schools_last_year,
        )
    ).drop("school_year")


def _schools(spine: ir.Table, stays: ir.Table) -> ir.Table:
    """Schools attended this year (stays entered by the as-of date) and last year."""
    this_year = (stays.school_year == spine.school_year) & (
        stays.entry_date <= spine.as_of_date
    )
    # One join for both years: the stays of this year and of the one before.
    joined = spine.join(
        stays,
        [
            spine.student_id == stays.student_id,
            stays.school_year >= spine.school_year - 1,
            stays.school_year <= spine.school_year,
        ],
    ).select(
        spine.student_id,
        spine.as_of_date,
        stays.school_id,
        this_year=this_year,
        last_year=stays.school_year == spine.school_year - 1,
    )
    # Per school first, then counted: two distinct counts with filters would
    # group twice and join the halves.
    per_school = joined.group_by("student_id", "as_of_date", "school_id").agg(
        this_year=joined.this_year.max().cast("float64"),
        last_year=joined.last_year.max().cast("float64"),
    )
    return per_school.group_by("student_id", "as_of_date").agg(
        schools_this_year=per_school.this_year.sum(),
        schools_last_year=per_school.last_year.sum(),
    )


def _history(spine: ir.Table, enrollments: ir.Table) -> ir.Table:
    """``new_to_district``: no stay in an earlier school year (null in the first).

    Only whether the student's first school year is earlier than the as-of date's
    matters, so later stays cannot change it.
    """
    first_seen = enrollments.group_by("student_id").agg(
        first_seen=enrollments.school_year.min()
    )
    earliest = enrollments.aggregate(first_year=enrollments.school_year.min())
    joined = attach(spine, first_seen, ["student_id"]).cross_join(earliest)
    return joined.select(
        "student_id",
        "as_of_date",
        new_to_district=ibis.ifelse(
            joined.school_year > joined.first_year,
            ibis.ifelse(joined.first_seen < joined.school_year, 0.0, 1.0),
            ibis.null("float64"),
        ),
    )


def _context(spine: ir.Table, students: ir.Table) -> ir.Table:
    """Over age for the grade, and the protected attributes for audits."""
    joined = spine.left_join(students, spine.student_id == students.student_id)
    month, day = AGE_DATE_MONTH_DAY
    autumn = spine.school_year - 1
    birth = students.birth_date
    not_yet_birthday = (birth.month() * 100 + birth.day()) > month * 100 + day
    age = autumn - birth.year() - not_yet_birthday.cast("int64")
    over_age = ibis.ifelse(age >= spine.grade + OVER_AGE_YEARS, 1.0, 0.0)
    return joined.select(
        spine.student_id,
        spine.as_of_date,
        over_age=ibis.ifelse(birth.isnull(), ibis.null("float64"), over_age),
        **{name: students[name] for name in PROTECTED_LABELS},
        **{name: students[name].cast("float64") for name in PROTECTED_FLAGS},
    )


def _programs(spine: ir.Table, programs: ir.Table) -> ir.Table:
    eve = spine.as_of_date - ONE_DAY
    running = spine.join(
        programs,
        [
            spine.student_id == programs.student_id,
            programs.begin_date <= eve,
            ibis.coalesce(programs.end_date, spine.as_of_date) >= eve,
        ],
    ).select(spine.student_id, spine.as_of_date, programs.program)
    counts = running.group_by("student_id", "as_of_date").agg(
        current_programs=running.program.nunique(),
        **{
            f"in_{name}": running.count(where=running.program == name)
            for name in NAMED_PROGRAMS
        },
    )
    joined = spine.left_join(counts, ["student_id", "as_of_date"])
    return joined.select(
        spine.student_id,
        spine.as_of_date,
        current_programs=ibis.coalesce(counts.current_programs, 0).cast("float64"),
        **{
            f"in_{name}": ibis.ifelse(counts[f"in_{name}"] > 0, 1.0, 0.0)
            for name in NAMED_PROGRAMS
        },
    )
