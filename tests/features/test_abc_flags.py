"""ABC flags at and around every threshold, with the defaults and with a config's."""

from __future__ import annotations

import math

import ibis
import pandas as pd
import pytest

from features import abc_flags
from ontrack.config import ABCThresholds

NAN = float("nan")
DEFAULTS = ABCThresholds()


def flag(thresholds: ABCThresholds = DEFAULTS, **values) -> dict:
    """The ABC columns of one student with the given indicators."""
    row = {
        "attendance_rate": 1.0,
        "incidents": 0.0,
        "out_of_school_suspensions": 0.0,
        "latest_core_mark": 100.0,
        **values,
    }
    table = ibis.memtable(pd.DataFrame([row]))
    result = abc_flags(table, thresholds).to_pandas().iloc[0]
    return {
        name: result[name]
        for name in ("abc_attendance", "abc_behaviour", "abc_course", "abc_any_at_risk")
    }


@pytest.mark.parametrize(
    ("rate", "expected"),
    [(0.95, 0), (0.88, 0), (0.8799, 1), (0.80, 1), (0.7999, 2), (NAN, 0)],
)
def test_attendance_flag_is_raised_strictly_below_the_thresholds(rate, expected):
    assert flag(attendance_rate=rate)["abc_attendance"] == expected


@pytest.mark.parametrize(
    ("incidents", "suspensions", "expected"),
    [(0, 0, 0), (2, 0, 0), (3, 0, 2), (1, 1, 2), (0, 1, 2)],
)
def test_behaviour_is_at_risk_above_two_incidents_or_on_a_suspension(
    incidents, suspensions, expected
):
    flags = flag(incidents=incidents, out_of_school_suspensions=suspensions)
    assert flags["abc_behaviour"] == expected


@pytest.mark.parametrize(
    ("mark", "expected"),
    [(90.0, 0), (72.0, 0), (71.9, 1), (65.0, 1), (64.9, 2), (NAN, 0)],
)
def test_course_flag_reads_the_latest_core_mark(mark, expected):
    assert flag(latest_core_mark=mark)["abc_course"] == expected


def test_any_at_risk_needs_an_at_risk_flag_not_an_early_warning():
    warnings_only = flag(attendance_rate=0.85, latest_core_mark=70.0)
    assert (warnings_only["abc_attendance"], warnings_only["abc_course"]) == (1, 1)
    assert warnings_only["abc_any_at_risk"] == 0.0
    assert flag(latest_core_mark=50.0)["abc_any_at_risk"] == 1.0


def test_thresholds_come_from_the_config():
    strict = ABCThresholds(
        attendance_early_warning=0.95,
        attendance_at_risk=0.90,
        incidents_at_risk=0,
        out_of_school_suspensions_at_risk=2,
        mark_early_warning=80.0,
        mark_at_risk=75.0,
    )
    flags = flag(
        strict,
        attendance_rate=0.92,
        incidents=0.0,
        out_of_school_suspensions=1.0,
        latest_core_mark=74.0,
    )
    # 0.92 < 0.95; 0 incidents is not above 0, 1 suspension is under 2; 74 < 75.
    assert flags == {
        "abc_attendance": 1,
        "abc_behaviour": 0,
        "abc_course": 2,
        "abc_any_at_risk": 1.0,
    }
    assert flag(strict, incidents=1.0)["abc_behaviour"] == 2


def test_flags_are_integers_and_nothing_else_changes():
    table = ibis.memtable(
        pd.DataFrame(
            {
                "student_id": ["0001", "0002"],
                "attendance_rate": [0.5, NAN],
                "incidents": [0.0, 4.0],
                "out_of_school_suspensions": [0.0, 0.0],
                "latest_core_mark": [NAN, 70.0],
            }
        )
    )
    flagged = abc_flags(table, ABCThresholds()).to_pandas()
    assert flagged.abc_attendance.tolist() == [2, 0]
    assert flagged.abc_behaviour.tolist() == [0, 2]
    assert flagged.abc_course.tolist() == [0, 1]
    assert str(flagged.abc_course.dtype) == "int64"
    assert flagged.student_id.tolist() == ["0001", "0002"]
    assert math.isnan(flagged.attendance_rate[1])
