"""KPI labels: the outcome of each student's whole school year, one row per KPI.

A label is known only after the school year ends, and it may use every event of the
year, including those after any as-of date of a snapshot of that year. Each label is
``missed`` (bool: the student missed the KPI's standard) with the school of the
student's last enrolment that year (latest entry; of two on one day, the larger
``school_id``). Every student with a stay in the year is a candidate; who gets no
label is counted, never guessed:

- ``chronic_absence``: absent on at least ``absence_threshold`` of the instructional
  days enrolled in the year (a tie is chronic). Students enrolled on fewer than
  ``min_enrolled_days`` days get no label.
- ``course_failure``: a final mark (the course's last term of the year) strictly below
  ``failing_mark`` in a core subject. Students without a numeric core mark get no label.
- ``not_proficient``: the year's last result in the KPI's subject (the spring state
  test) is not proficient. Students without a result get no label.

Students who leave the district mid-year (the last stay of the year ended for a
transfer, leaving the district, dropping out or another reason, not at the end of the
year or at graduation) keep the labels their enrolled days earn under the same rules:
labelled on the days they were enrolled if they meet the minimum, and counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from features._assessments import latest_results
from features._courses import final_core_marks
from ontrack.config import KPI

LEAVING_REASONS = ("transfer", "left_district", "dropped_out", "other")
# Day counts and fractions are sums of floats; a tie at the threshold must stay a tie.
TIE_TOLERANCE = 1e-9
LABEL_SCHEMA = {
    "student_id": "string",
    "school_year": "int64",
    "kpi": "string",
    "missed": "boolean",
    "school_id": "string",
}


def student_years(stays: ir.Table) -> ir.Table:
    """One row per student and school year with a stay.

    Returns ``student_id``, ``school_year``, ``school_id`` (the last enrolment) and
    ``left_mid_year`` (the last stay ended for a reason in ``LEAVING_REASONS``).
    """
    last_first = ibis.window(
        group_by=["student_id", "school_year"],
        order_by=[ibis.desc("entry_date"), ibis.desc("school_id")],
    )
    last = stays.mutate(rank=ibis.row_number().over(last_first)).filter(
        ibis._.rank == 0
    )
    return last.select(
        "student_id",
        "school_year",
        "school_id",
        left_mid_year=ibis.coalesce(
            last.exit_date.notnull() & last.exit_reason.isin(LEAVING_REASONS), False
        ),
    )


def absent_at_least_threshold(days_absent, days_enrolled, kpi: KPI):
    """Whether days absent reach the KPI's share of days enrolled; a tie counts.

    Written with plain operators so that it applies alike to Ibis columns, pandas
    Series and NumPy arrays: the labels, the "so far" rates of scoring and the
    public indicators all use this one rule. The minimum of days enrolled is the
    caller's to apply.
    """
    return days_absent >= kpi.absence_threshold * days_enrolled - TIE_TOLERANCE


def chronically_absent(
    days_absent: ir.NumericValue, days_enrolled: ir.NumericValue, kpi: KPI
) -> ir.BooleanValue:
    """The chronic-absence rule; null when enrolled on fewer than the minimum days."""
    missed = absent_at_least_threshold(days_absent, days_enrolled, kpi)
    return ibis.ifelse(
        days_enrolled >= kpi.min_enrolled_days, missed, ibis.null("boolean")
    )


def kpi_label_rows(
    years: ir.Table,
    year_attendance: ir.Table,
    grades: ir.Table,
    assessments: ir.Table,
    kpis: Sequence[KPI],
) -> ir.Table:
    """The labels of every KPI for the student-years in ``years``.

    ``years`` is the output of :func:`student_years`; ``year_attendance`` has
    ``student_id``, ``school_year``, ``days_enrolled`` and ``days_absent`` of whole
    school years. Returns the columns of ``LABEL_SCHEMA``.
    """
    per_kpi = [
        _missed(kpi, years, year_attendance, grades, assessments)
        .filter(ibis._.missed.notnull())
        .mutate(kpi=ibis.literal(kpi.name))
        for kpi in kpis
    ]
    missed = ibis.union(*per_kpi) if len(per_kpi) > 1 else per_kpi[0]
    labelled = years.join(
        missed,
        [
            years.student_id == missed.student_id,
            years.school_year == missed.school_year,
        ],
    )
    return labelled.select(
        years.student_id,
        years.school_year.cast("int64").name("school_year"),
        missed.kpi,
        missed.missed,
        years.school_id,
    )


def _missed(
    kpi: KPI,
    years: ir.Table,
    year_attendance: ir.Table,
    grades: ir.Table,
    assessments: ir.Table,
) -> ir.Table:
    """``student_id``, ``school_year`` and ``missed`` (null: no label) of one KPI."""
    if kpi.definition == "chronic_absence":
        return year_attendance.select(
            "student_id",
            "school_year",
            missed=chronically_absent(
                year_attendance.days_absent, year_attendance.days_enrolled, kpi
            ),
        )
    if kpi.definition == "course_failure":
        finals = final_core_marks(grades, kpi.core_subjects)
        return finals.group_by("student_id", "school_year").agg(
            missed=finals.mark.min() < kpi.failing_mark
        )
    results = latest_results(assessments, kpi.subject)
    # Not ``~proficient``: Ibis 12 prints ``NOT x IS NOT NULL`` for a later null test
    # of it, which DuckDB reads as ``NOT (x IS NOT NULL)``.
    return results.select(
        "student_id", "school_year", missed=results.proficient.cast("int64") == 0
    )
