"""A tiny hand-made district for the snapshot tests, and the config that reads it.

Two schools, A and B, teach Monday to Friday. School year 2024 (2023-2024) runs from
Monday 4 September 2023 to Friday 7 June 2024; A is closed on Friday 15 September and
B on Friday 22 September. School year 2023 is only four weeks at A, Monday 1 May to
Friday 26 May 2023 (20 days). The checkpoints are 10-03 and 02-01, so the first
as-of date of 2024 is Tuesday 3 October 2023: A has taught 20 days before it
(4 September to 2 October, minus the 15th), B 20 days (minus the 22nd).

Students (the values the tests expect are worked out next to each assertion):

- ``0001`` at A all year: 2.5 days absent in September, 3 incidents, two terms of
  marks, a test last spring; at A in 2023 too.
- ``0002`` moves from A to B: at A 4 to 20 September, at B from 20 September (both
  stays hold the 20th, counted once).
- ``0003`` at A, leaves on 8 September and comes back on 18 September.
- ``0004`` at A for the last six weeks: 30 days, 3 absent (a tie at 10%).
- ``0005`` at A for the last 9 days: too few for a chronic-absence label.
- ``0006`` at A for the last 4 weeks: 20 days, 1.9 absent (under 10%).
- ``0007`` at B until 31 October, then leaves the district.
- ``0008`` and ``0009`` at A in 2023 only, tested in ELA with ``0001``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from features import write_warehouse
from ontrack.config import DistrictConfig

D = dt.date
FIRST_AS_OF = D(2023, 10, 3)
SECOND_AS_OF = D(2024, 2, 1)
A_CLOSED = D(2023, 9, 15)
B_CLOSED = D(2023, 9, 22)


def make_config(state_dir: Path, **sections) -> DistrictConfig:
    """The tiny district's config; ``sections`` replace whole top-level sections."""
    raw = {
        "district": {"name": "Tiny", "school_year_start": "08-01"},
        "paths": {"state_dir": str(state_dir), "mlruns_dir": str(state_dir / "mlruns")},
        "calendar": {"checkpoints": ["10-03", "02-01"]},
        "kpis": [
            {
                "name": "chronic_absence",
                "label": "Chronically absent",
                "definition": "chronic_absence",
                "absence_threshold": 0.10,
                "min_enrolled_days": 10,
                "district_target": 0.2,
            },
            {
                "name": "course_failure",
                "label": "Failed a core course",
                "definition": "course_failure",
                "failing_mark": 65,
                "district_target": 0.15,
            },
            {
                "name": "not_proficient_ela",
                "label": "Not proficient in ELA",
                "definition": "not_proficient",
                "subject": "ela",
                "district_target": 0.5,
            },
            {
                "name": "not_proficient_math",
                "label": "Not proficient in math",
                "definition": "not_proficient",
                "subject": "math",
                "district_target": 0.5,
            },
        ],
        "model": {"n_jobs": 1},
    }
    raw.update(sections)
    return DistrictConfig.model_validate(raw)


def weekdays(first: dt.date, last: dt.date, closed: tuple = ()) -> list[dt.date]:
    """Monday-to-Friday dates from ``first`` to ``last`` (inclusive) but ``closed``."""
    return [day for day in pd.bdate_range(first, last).date if day not in closed]


def tiny_district() -> dict[str, pd.DataFrame]:
    """The canonical tables of the tiny district."""
    return {
        "schools": pd.DataFrame(
            {
                "school_id": ["A", "B"],
                "school_name": ["School A", "School B"],
                "school_level": ["middle", "middle"],
                "lowest_grade": [6, 6],
                "highest_grade": [8, 8],
            }
        ),
        "students": _students(),
        "enrollments": _enrollments(),
        "calendar": _calendar(),
        "attendance": _attendance(),
        "discipline": _discipline(),
        "grades": _grades(),
        "assessments": _assessments(),
        "programs": pd.DataFrame(
            [
                ("0001", "tutoring", D(2023, 9, 10), D(2023, 10, 2)),
                ("0002", "mentoring", FIRST_AS_OF, None),
                ("0003", "tutoring", D(2023, 9, 5), D(2023, 9, 30)),
            ],
            columns=["student_id", "program", "begin_date", "end_date"],
        ),
    }


def write_district(
    state_dir: Path, tables: dict[str, pd.DataFrame], *, stored: bool = False
) -> Path:
    """Write the tables as the warehouse of ``state_dir``.

    With ``stored`` the warehouse also keeps the attendance days, as ingest does
    (for the tiny district's school-year start); without, snapshots derive them.
    """
    start = make_config(state_dir).district.school_year_start if stored else None
    return write_warehouse(state_dir, tables, school_year_start=start)


def _students() -> pd.DataFrame:
    ids = [f"000{n}" for n in range(1, 10)]
    births = [D(2010, 6, 1), D(2009, 5, 1)] + [D(2010, 3, 1)] * 7
    return pd.DataFrame(
        {
            "student_id": ids,
            "birth_date": births,
            "gender": ["female", "male", "nonbinary"] * 3,
            "race_ethnicity": ["white", "black", "hispanic"] * 3,
            "economically_disadvantaged": [True, False, False] * 3,
            "english_learner": [False, True, False] * 3,
            "disability": [False, False, True] * 3,
            "first_name": [f"Name{n}" for n in range(1, 10)],
            "last_name": ["Private"] * 9,
        }
    )


def _enrollments() -> pd.DataFrame:
    rows = [
        ("0001", "A", 2023, 7, D(2023, 5, 1), D(2023, 5, 26), "end_of_year"),
        ("0008", "A", 2023, 7, D(2023, 5, 1), D(2023, 5, 26), "end_of_year"),
        ("0009", "A", 2023, 7, D(2023, 5, 1), D(2023, 5, 26), "end_of_year"),
        ("0001", "A", 2024, 8, D(2023, 9, 4), None, None),
        ("0002", "A", 2024, 8, D(2023, 9, 4), D(2023, 9, 20), "transfer"),
        ("0002", "B", 2024, 8, D(2023, 9, 20), None, None),
        ("0003", "A", 2024, 8, D(2023, 9, 4), D(2023, 9, 8), "left_district"),
        ("0003", "A", 2024, 8, D(2023, 9, 18), None, None),
        ("0004", "A", 2024, 8, D(2024, 4, 29), D(2024, 6, 7), "end_of_year"),
        ("0005", "A", 2024, 8, D(2024, 5, 28), D(2024, 6, 7), "end_of_year"),
        ("0006", "A", 2024, 8, D(2024, 5, 13), D(2024, 6, 7), "end_of_year"),
        ("0007", "B", 2024, 8, D(2023, 9, 4), D(2023, 10, 31), "left_district"),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "student_id",
            "school_id",
            "school_year",
            "grade",
            "entry_date",
            "exit_date",
            "exit_reason",
        ],
    )


def _calendar() -> pd.DataFrame:
    year_2023 = weekdays(D(2023, 5, 1), D(2023, 5, 26))
    a_2024 = weekdays(D(2023, 9, 4), D(2024, 6, 7), closed=(A_CLOSED,))
    b_2024 = weekdays(D(2023, 9, 4), D(2024, 6, 7), closed=(B_CLOSED,))
    return pd.DataFrame(
        {
            "school_id": ["A"] * len(year_2023 + a_2024) + ["B"] * len(b_2024),
            "date": year_2023 + a_2024 + b_2024,
        }
    )


def _attendance() -> pd.DataFrame:
    rows = [
        # 0001: 2.5 days before 3 October; the 15th is a day off at A.
        ("0001", "A", D(2023, 9, 5), "excused", 1.0),
        ("0001", "A", D(2023, 9, 6), "unexcused", 1.0),
        ("0001", "A", D(2023, 9, 12), "unexcused", 0.5),
        ("0001", "A", A_CLOSED, "unexcused", 1.0),
        ("0001", "A", D(2023, 9, 20), "tardy", 0.1),
        ("0001", "A", FIRST_AS_OF, "unexcused", 1.0),
        ("0001", "A", D(2023, 11, 6), "excused", 1.0),
        # 0001 in 2023: 3 of 20 days.
        ("0001", "A", D(2023, 5, 2), "excused", 1.0),
        ("0001", "A", D(2023, 5, 3), "excused", 1.0),
        ("0001", "A", D(2023, 5, 4), "unexcused", 1.0),
        # 0002: the 22nd is a day off at B, where the student then is.
        ("0002", "B", D(2023, 9, 21), "unexcused", 1.0),
        ("0002", "B", B_CLOSED, "unexcused", 1.0),
        # 0003: the 12th falls between the two stays.
        ("0003", "A", D(2023, 9, 12), "unexcused", 1.0),
        ("0003", "A", D(2023, 9, 22), "unexcused", 1.0),
        ("0003", "A", D(2023, 9, 25), "excused", 1.0),
        # 0004: 3 of 30 days; 0005: 1 of 9; 0006: 1.9 of 20.
        ("0004", "A", D(2024, 5, 1), "unexcused", 1.0),
        ("0004", "A", D(2024, 5, 2), "unexcused", 1.0),
        ("0004", "A", D(2024, 5, 3), "unexcused", 1.0),
        ("0005", "A", D(2024, 6, 3), "unexcused", 1.0),
        ("0006", "A", D(2024, 5, 14), "excused", 1.0),
        ("0006", "A", D(2024, 5, 15), "excused", 0.9),
    ]
    return pd.DataFrame(
        rows, columns=["student_id", "school_id", "date", "category", "fraction_missed"]
    )


def _discipline() -> pd.DataFrame:
    rows = [
        ("i1", "0001", "A", D(2023, 9, 8), "minor", "none", 0.0),
        ("i2", "0001", "A", D(2023, 9, 18), "fighting", "in_school_suspension", 1.0),
        (
            "i3",
            "0001",
            "A",
            D(2023, 9, 25),
            "defiance",
            "out_of_school_suspension",
            2.0,
        ),
        ("i4", "0001", "A", FIRST_AS_OF, "defiance", "out_of_school_suspension", 3.0),
        (
            "i5",
            "0001",
            "A",
            D(2023, 5, 10),
            "bullying",
            "out_of_school_suspension",
            1.0,
        ),
        ("i6", "0003", "A", D(2023, 9, 26), "minor", "none", 0.0),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "incident_id",
            "student_id",
            "school_id",
            "date",
            "behavior_category",
            "action",
            "days_removed",
        ],
    )


def _grades() -> pd.DataFrame:
    q1, q2 = D(2023, 9, 29), D(2024, 1, 26)
    rows = [
        ("0001", "A", 2024, "q1", q1, "m8", "math", 70.0, 1.0, 1.0),
        ("0001", "A", 2024, "q1", q1, "e8", "ela", 60.0, 1.0, 0.0),
        ("0001", "A", 2024, "q1", q1, "s8", "science", 90.0, 1.0, 1.0),
        ("0001", "A", 2024, "q1", q1, "a8", "other", 50.0, 1.0, 0.0),
        ("0001", "A", 2024, "q2", q2, "m8", "math", 80.0, 1.0, 1.0),
        ("0001", "A", 2024, "q2", q2, "e8", "ela", 70.0, 1.0, 1.0),
        ("0001", "A", 2024, "q2", q2, "s8", "science", 85.0, 1.0, 1.0),
        ("0001", "A", 2024, "q2", q2, "a8", "other", 95.0, 1.0, 1.0),
        ("0001", "A", 2023, "q4", D(2023, 5, 26), "m7", "math", 50.0, 1.0, 0.0),
        ("0002", "B", 2024, "q1", q1, "m8", "math", 55.0, 1.0, 0.0),
        ("0003", "A", 2024, "q1", D(2023, 10, 6), "m8", "math", 40.0, 1.0, 0.0),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "student_id",
            "school_id",
            "school_year",
            "term",
            "term_end_date",
            "course_id",
            "subject",
            "mark",
            "credits_attempted",
            "credits_earned",
        ],
    )


def _assessments() -> pd.DataFrame:
    rows = [
        ("0001", 2023, D(2023, 5, 15), "ela", 340.0, 3, True),
        ("0008", 2023, D(2023, 5, 15), "ela", 300.0, 2, False),
        ("0009", 2023, D(2023, 5, 15), "ela", 320.0, 3, True),
        ("0001", 2024, D(2024, 4, 15), "math", 350.0, 3, True),
        ("0001", 2024, D(2024, 5, 15), "ela", 310.0, 2, False),
        ("0001", 2024, D(2024, 5, 20), "math", 305.0, 2, False),
        ("0002", 2024, D(2024, 5, 15), "ela", 330.0, 3, True),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "student_id",
            "school_year",
            "date",
            "subject",
            "scale_score",
            "performance_level",
            "proficient",
        ],
    )


# Labels for both school years: the last day of 2024 (7 June) is before this.
TODAY = D(2024, 8, 1)
_BUILT: dict[Path, tuple] = {}


def built_tiny_district(base: Path) -> tuple:
    """Build the tiny district's snapshots once per test session (cached by folder).

    Returns the config, the summary and the three frames read back from parquet.
    """
    from features import build_snapshots

    if base not in _BUILT:
        state = base / "tiny-district"
        config = make_config(state)
        write_district(state, tiny_district())
        summary = build_snapshots(config, today=TODAY)
        folder = config.state_dir / "snapshots"
        _BUILT[base] = (
            config,
            summary,
            pd.read_parquet(folder / "student_snapshots.parquet"),
            pd.read_parquet(folder / "school_snapshots.parquet"),
            pd.read_parquet(folder / "kpi_labels.parquet"),
        )
    return _BUILT[base]
