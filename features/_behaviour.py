"""Behaviour indicators: incidents, suspensions and days removed.

Each ``discipline`` row is one incident, dated; it belongs to the school year of its
date. Expulsions count as out-of-school suspensions (the student is out of school
either way). ``prior_suspensions`` counts in- and out-of-school suspensions and
expulsions of the whole previous school year.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features._calendar import school_year_of

OUT_OF_SCHOOL_ACTIONS = ("out_of_school_suspension", "expulsion")
SUSPENSION_ACTIONS = ("in_school_suspension", *OUT_OF_SCHOOL_ACTIONS)


def behaviour_indicators(
    student_periods: ir.Table, discipline: ir.Table, school_year_start: str
) -> ir.Table:
    """Incidents of each student and period, from the start of its school year.

    ``student_periods`` has ``student_id``, ``school_year`` and ``as_of_date``
    (exclusive). Returns ``student_id``, ``as_of_date``, ``incidents``,
    ``in_school_suspensions``, ``out_of_school_suspensions``, ``suspensions`` (all
    kinds) and ``days_removed``; zero for a student without incidents.
    """
    incidents = discipline.mutate(
        school_year=school_year_of(discipline.date, school_year_start)
    )
    before = incidents.join(
        student_periods,
        [
            incidents.student_id == student_periods.student_id,
            incidents.school_year == student_periods.school_year,
            incidents.date < student_periods.as_of_date,
        ],
    ).select(
        incidents.student_id,
        student_periods.as_of_date,
        incidents.action,
        incidents.days_removed,
    )
    counts = before.group_by("student_id", "as_of_date").agg(
        incidents=before.count(),
        in_school_suspensions=before.count(
            where=before.action == "in_school_suspension"
        ),
        out_of_school_suspensions=before.count(
            where=before.action.isin(OUT_OF_SCHOOL_ACTIONS)
        ),
        suspensions=before.count(where=before.action.isin(SUSPENSION_ACTIONS)),
        days_removed=before.days_removed.sum(),
    )
    periods = student_periods.select("student_id", "as_of_date")
    joined = periods.left_join(counts, ["student_id", "as_of_date"])
    return joined.select(
        periods.student_id,
        periods.as_of_date,
        **{
            name: ibis.coalesce(counts[name], 0).cast("float64")
            for name in (
                "incidents",
                "in_school_suspensions",
                "out_of_school_suspensions",
                "suspensions",
                "days_removed",
            )
        },
    )


def year_behaviour(discipline: ir.Table, school_year_start: str) -> ir.Table:
    """Incidents and suspensions of each student and whole school year.

    Returns ``student_id``, ``school_year``, ``incidents`` and ``suspensions`` (in-
    and out-of-school suspensions and expulsions) for students with an incident.
    """
    incidents = discipline.mutate(
        school_year=school_year_of(discipline.date, school_year_start)
    )
    return incidents.group_by("student_id", "school_year").agg(
        incidents=incidents.count().cast("float64"),
        suspensions=incidents.count(
            where=incidents.action.isin(SUSPENSION_ACTIONS)
        ).cast("float64"),
    )
