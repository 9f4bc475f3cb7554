"""A small synthetic state folder in the shapes of docs/CONTRACTS.md.

Three school years (2024 and 2025 with outcomes, 2026 current), four schools of
very different sizes (one too small to judge for drift), every protected attribute,
missing values, and scores at the 2026-02-01 checkpoint. Built once per session
with a fixed seed; the first names and birth dates it carries exist only so the
tests can prove they never reach a public file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ontrack.config import load_config

SEED = 20260201
SCHOOL_SIZES = {"0001": 160, "0002": 110, "0003": 45, "0004": 12}
YEARS = (2024, 2025, 2026)
CHECKPOINTS = ("10-01", "12-01", "02-01", "04-01")
CURRENT = dt.date(2026, 2, 1)
DAYS_BY_CHECKPOINT = {"10-01": 40, "12-01": 75, "02-01": 110, "04-01": 150}
RACES = ["hispanic", "white", "black", "asian", "two_or_more", "american_indian"]
FIRST_NAMES = ["Avery", "Jordan", "Riley", "Quinn", "Rowan"]

CONFIG = """
[district]
name = "Synthetic Test District"

[paths]
state_dir = "state"
mlruns_dir = "mlruns"

[calendar]
checkpoints = ["10-01", "12-01", "02-01", "04-01"]

[[kpis]]
name = "chronic_absence"
label = "Chronically absent"
definition = "chronic_absence"
district_target = 0.22

[[kpis]]
name = "course_failure"
label = "Failed a core course"
definition = "course_failure"
district_target = 0.15
school_targets = {{ "0001" = 0.12 }}

[[kpis]]
name = "not_proficient_ela"
label = "Not proficient in ELA"
definition = "not_proficient"
subject = "ela"
district_target = 0.50

[privacy]
min_n = 10

[monitoring]
drift_alert_share = {alert_share}
min_school_n = 30
"""


def checkpoint_date(month_day: str, school_year: int) -> dt.date:
    month, day = (int(part) for part in month_day.split("-"))
    return dt.date(school_year - 1 if month >= 8 else school_year, month, day)


def make_students(rng: np.random.Generator) -> pd.DataFrame:
    """One row per student, with the protected attributes (and a personal field)."""
    rows = []
    for school_id, size in SCHOOL_SIZES.items():
        for index in range(size):
            rows.append(
                {"student_id": f"S{school_id}{index:04d}", "school_id": school_id}
            )
    students = pd.DataFrame(rows)
    n = len(students)
    students["race_ethnicity"] = rng.choice(
        RACES, n, p=[0.42, 0.3, 0.14, 0.08, 0.04, 0.02]
    )
    students["gender"] = rng.choice(
        ["female", "male", "nonbinary"], n, p=[0.49, 0.48, 0.03]
    )
    students["english_learner"] = (rng.random(n) < 0.18).astype(float)
    students["disability"] = (rng.random(n) < 0.13).astype(float)
    students["economically_disadvantaged"] = (rng.random(n) < 0.5).astype(float)
    # A few students with no reported race, to exercise "not reported".
    students.loc[rng.random(n) < 0.02, "race_ethnicity"] = None
    students["propensity"] = (
        rng.normal(0, 1, n) + 0.4 * students["economically_disadvantaged"]
    )
    students["first_name"] = rng.choice(FIRST_NAMES, n)
    students["birth_date"] = "2012-03-04"
    return students


def make_snapshots(
    students: pd.DataFrame, rng: np.random.Generator, shift: float = 0.0
):
    """Student snapshots of every checkpoint of every year (2026 up to February)."""
    frames = []
    for school_year in YEARS:
        for checkpoint in CHECKPOINTS:
            as_of = checkpoint_date(checkpoint, school_year)
            if as_of > CURRENT:
                continue
            drift = shift if school_year == YEARS[-1] else 0.0
            frames.append(
                _snapshot(students, rng, school_year, checkpoint, as_of, drift)
            )
    return pd.concat(frames, ignore_index=True)


def _snapshot(students, rng, school_year, checkpoint, as_of, shift):
    n = len(students)
    days = DAYS_BY_CHECKPOINT[checkpoint]
    absence_share = np.clip(
        0.06 + 0.04 * students["propensity"] + rng.normal(0, 0.03, n) + shift, 0, 1
    )
    days_absent = np.round(absence_share * days * 2) / 2
    failing = rng.poisson(np.exp(-1.2 + 0.6 * students["propensity"] + 3 * shift))
    snapshot = pd.DataFrame(
        {
            "student_id": students["student_id"],
            "as_of_date": pd.Timestamp(as_of),
            "school_year": school_year,
            "checkpoint": checkpoint,
            "school_id": students["school_id"],
            "days_enrolled": float(days),
            "days_absent": days_absent,
            "attendance_rate": 1 - days_absent / days,
            "unexcused_share": np.where(days_absent > 0, rng.uniform(0, 1, n), np.nan),
            "tardies": rng.poisson(2, n).astype(float),
            "incidents": rng.poisson(0.3 + shift * 5, n).astype(float),
            "failing_marks": failing.astype(float),
            "mean_core_mark": np.clip(
                78 - 6 * students["propensity"] + rng.normal(0, 5, n), 0, 100
            ),
            "ela_scale_z": -0.5 * students["propensity"]
            + rng.normal(0, 0.8, n)
            - shift * 10,
            "grade": rng.integers(6, 9, n).astype(float),
            "new_to_district": (rng.random(n) < 0.05).astype(float),
            "race_ethnicity": students["race_ethnicity"],
            "gender": students["gender"],
            "english_learner": students["english_learner"],
            "disability": students["disability"],
            "economically_disadvantaged": students["economically_disadvantaged"],
        }
    )
    return snapshot


def make_labels(students, snapshots):
    """KPI labels of the completed years from the last snapshot's features.

    Twelve more students of school 0001 have 2025 labels but no snapshot at all
    (enrolled only between checkpoints): last year has a "not reported" group
    that this year does not.
    """
    rows = []
    last = snapshots[snapshots["checkpoint"] == "04-01"]
    for school_year in YEARS[:-1]:
        year = last[last["school_year"] == school_year]
        for kpi, missed in (
            ("chronic_absence", year["days_absent"] / year["days_enrolled"] >= 0.1),
            ("course_failure", year["failing_marks"] > 0),
            ("not_proficient_ela", year["ela_scale_z"] < 0),
        ):
            rows.append(
                pd.DataFrame(
                    {
                        "student_id": year["student_id"],
                        "school_year": school_year,
                        "kpi": kpi,
                        "missed": missed.astype(bool),
                        "school_id": year["school_id"],
                    }
                )
            )
    unseen = [f"U0001{index:04d}" for index in range(12)]
    for kpi in ("chronic_absence", "course_failure", "not_proficient_ela"):
        rows.append(
            pd.DataFrame(
                {
                    "student_id": unseen,
                    "school_year": YEARS[-2],
                    "kpi": kpi,
                    "missed": [index % 3 == 0 for index in range(12)],
                    "school_id": "0001",
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def make_scores(snapshots: pd.DataFrame) -> pd.DataFrame:
    """A scored snapshot for the current as-of date: plausible risks per KPI."""
    current = snapshots[snapshots["as_of_date"] == pd.Timestamp(CURRENT)]
    frames = []
    linear = {
        "chronic_absence": -2.5
        + 12 * (current["days_absent"] / current["days_enrolled"]),
        "course_failure": -1.8 + 0.9 * current["failing_marks"],
        "not_proficient_ela": -1.2 * current["ela_scale_z"],
    }
    for kpi, margin in linear.items():
        risk = 1 / (1 + np.exp(-margin))
        frames.append(
            current[
                [
                    "student_id",
                    "as_of_date",
                    "school_year",
                    "school_id",
                    "grade",
                    "race_ethnicity",
                    "gender",
                    "disability",
                    "english_learner",
                    "economically_disadvantaged",
                ]
            ].assign(
                kpi=kpi,
                risk=risk.to_numpy(),
                tier=np.where(
                    risk >= 0.5, "high", np.where(risk >= 0.25, "moderate", "low")
                ),
                driver_1="attended 90% of school days so far",
                driver_1_feature="attendance_rate",
                driver_1_domain="attendance",
                model_version="1",
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_state(root: Path, seed: int, shift: float = 0.0, alert_share: float = 0.5):
    """Write a config and a state folder under ``root``; return the config."""
    rng = np.random.default_rng(seed)
    students = make_students(rng)
    snapshots = make_snapshots(students, rng, shift)
    state = root / "state"
    (state / "snapshots").mkdir(parents=True)
    (state / "scores").mkdir(parents=True)
    snapshots.to_parquet(state / "snapshots" / "student_snapshots.parquet")
    make_labels(students, snapshots).to_parquet(
        state / "snapshots" / "kpi_labels.parquet"
    )
    make_scores(snapshots).to_parquet(state / "scores" / "scored_snapshot.parquet")
    write_warehouse(state, students)
    config_path = root / "district.toml"
    config_path.write_text(CONFIG.format(alert_share=alert_share))
    return load_config(config_path), students


def write_warehouse(state: Path, students: pd.DataFrame) -> None:
    """The two warehouse tables publishing reads: schools and students (with the
    personal fields a real export has, to prove they stay out of public files)."""
    import duckdb

    schools = pd.DataFrame(
        {
            "school_id": list(SCHOOL_SIZES),
            "school_name": [
                f"{name} School" for name in ("Maple", "Cedar", "Oak", "Elm")
            ],
        }
    )
    registered = students[
        ["student_id", "gender", "race_ethnicity", "first_name", "birth_date"]
    ].assign(
        economically_disadvantaged=students["economically_disadvantaged"] == 1,
        english_learner=students["english_learner"] == 1,
        disability=students["disability"] == 1,
        last_name="Doe",
    )
    with duckdb.connect(str(state / "warehouse.duckdb")) as connection:
        connection.register("school_rows", schools)
        connection.register("student_rows", registered)
        connection.execute("CREATE TABLE schools AS SELECT * FROM school_rows")
        connection.execute("CREATE TABLE students AS SELECT * FROM student_rows")


@pytest.fixture(scope="session")
def synthetic_district(tmp_path_factory):
    """(config, students) of a district without drift, built once."""
    return write_state(tmp_path_factory.mktemp("district"), SEED)


@pytest.fixture(scope="session")
def state_writer():
    """:func:`write_state`, for tests that need a district of their own."""
    return write_state
