"""ABC flags: attendance, behaviour and course performance, the baseline of every model.

The rules of the Ed-Fi Analytics Middle Tier early-warning samples, with every
threshold from ``[abc]`` of the config (defaults in brackets). Each flag is 0 (none),
1 (early warning) or 2 (at risk):

- attendance: the rate so far strictly below ``attendance_at_risk`` (0.80) is at risk,
  strictly below ``attendance_early_warning`` (0.88) an early warning;
- behaviour: strictly more than ``incidents_at_risk`` (2) incidents, or at least
  ``out_of_school_suspensions_at_risk`` (1) out-of-school suspensions, is at risk
  (there is no early-warning level);
- course performance: the lowest core-course mark of the most recent term strictly
  below ``mark_at_risk`` (65) is at risk, strictly below ``mark_early_warning`` (72)
  an early warning.

A student without the measure (no school day yet, no mark yet) gets 0.
``abc_any_at_risk`` is 1.0 when any flag is at risk.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from ontrack.config import ABCThresholds

NONE, EARLY_WARNING, AT_RISK = 0, 1, 2
ABC_COLUMNS = ("abc_attendance", "abc_behaviour", "abc_course", "abc_any_at_risk")


def abc_flags(indicators: ir.Table, thresholds: ABCThresholds) -> ir.Table:
    """Add the ABC columns to a table with the indicators the rules read.

    ``indicators`` needs ``attendance_rate``, ``incidents``,
    ``out_of_school_suspensions`` and ``latest_core_mark``.
    """
    attendance = _level(
        indicators.attendance_rate,
        thresholds.attendance_at_risk,
        thresholds.attendance_early_warning,
    )
    behaviour = ibis.ifelse(
        (indicators.incidents > thresholds.incidents_at_risk)
        | (
            indicators.out_of_school_suspensions
            >= thresholds.out_of_school_suspensions_at_risk
        ),
        AT_RISK,
        NONE,
    )
    course = _level(
        indicators.latest_core_mark,
        thresholds.mark_at_risk,
        thresholds.mark_early_warning,
    )
    flagged = indicators.mutate(
        abc_attendance=attendance, abc_behaviour=behaviour, abc_course=course
    )
    any_at_risk = (
        (flagged.abc_attendance == AT_RISK)
        | (flagged.abc_behaviour == AT_RISK)
        | (flagged.abc_course == AT_RISK)
    )
    return flagged.mutate(abc_any_at_risk=any_at_risk.cast("float64"))


def _level(
    value: ir.NumericValue, at_risk: float, early_warning: float
) -> ir.IntegerValue:
    """2 strictly below ``at_risk``, 1 strictly below ``early_warning``, else 0."""
    return ibis.cases(
        (value < at_risk, AT_RISK),
        (value < early_warning, EARLY_WARNING),
        else_=NONE,
    ).cast("int64")
