"""A small made-up district's snapshots, shaped exactly as docs/CONTRACTS.md says.

Students carry a persistent engagement that drifts from year to year; absences,
incidents, marks and test scores follow from it with noise, and a school effect adds to
the absence rate. Labels are the year-end outcomes of the same draws, so indicators
taken earlier in the year predict them only in part. Fixed seed, no tuning towards any
model.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from ontrack.config import DistrictConfig, load_config

DEMO_CONFIG = Path(__file__).parents[2] / "configs" / "demo.toml"
PROTECTED = (
    "race_ethnicity",
    "gender",
    "disability",
    "english_learner",
    "economically_disadvantaged",
)
SEED = 42


def make_config(
    folder: Path, kpis: tuple[str, ...] | None = None, mlruns_dir: Path | None = None
) -> DistrictConfig:
    """The demo config with its state (and MLflow store, by default) in ``folder``.

    A new MLflow sqlite store costs about 6 s of CPU to create (its migrations), so
    tests share one through ``mlruns_dir`` where they can.
    """
    folder.mkdir(parents=True, exist_ok=True)
    mlruns = mlruns_dir or folder / "mlruns"
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    text = text.replace('state_dir = "../state"', 'state_dir = "state"')
    text = text.replace('mlruns_dir = "../mlruns"', f'mlruns_dir = "{mlruns}"')
    path = folder / "district.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    if kpis is not None:
        config = config.model_copy(update={"kpis": [config.kpi(name) for name in kpis]})
    return config


def write_snapshots(config: DistrictConfig, district: dict[str, pd.DataFrame]) -> None:
    """The three snapshot files where ``build_snapshots`` would write them."""
    folder = config.state_dir / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    for table in ("student_snapshots", "school_snapshots", "kpi_labels"):
        district[table].to_parquet(folder / f"{table}.parquet", index=False)


CHECKPOINTS = (("10-01", 40), ("12-01", 80), ("02-01", 120), ("04-01", 160))
DAYS_IN_YEAR = 180
RACES = ("hispanic", "white", "black", "asian", "two_or_more")


def make_district(
    n_students: int = 900, n_schools: int = 6, years=(2022, 2023, 2024), seed: int = 7
) -> dict[str, pd.DataFrame]:
    """``student_snapshots``, ``school_snapshots``, ``kpi_labels`` and ``students``."""
    rng = np.random.default_rng(seed)
    student_id = np.array([f"{i:06d}" for i in range(1, n_students + 1)])
    students = pd.DataFrame(
        {
            "student_id": student_id,
            "first_name": [f"First{i}" for i in range(n_students)],
            "last_name": [f"Last{i}" for i in range(n_students)],
            "gender": rng.choice(["female", "male"], n_students),
            "race_ethnicity": rng.choice(
                RACES, n_students, p=[0.4, 0.3, 0.15, 0.1, 0.05]
            ),
            "disability": (rng.random(n_students) < 0.12).astype(float),
            "english_learner": (rng.random(n_students) < 0.1).astype(float),
            "economically_disadvantaged": (rng.random(n_students) < 0.45).astype(float),
        }
    )
    school_ids = np.array([f"{i:04d}" for i in range(1, n_schools + 1)])
    school_effect = rng.normal(0, 0.35, n_schools)
    school_of = rng.integers(0, n_schools, n_students)
    grade0 = rng.integers(3, 9, n_students)
    engagement = (
        rng.normal(0, 1, n_students)
        - 0.3 * students["economically_disadvantaged"].to_numpy()
    )

    snapshot_parts, label_parts = [], []
    prior: dict[str, np.ndarray] | None = None
    for index, year in enumerate(years):
        engagement = 0.8 * engagement + 0.6 * rng.normal(0, 1, n_students)
        moved = rng.random(n_students) < 0.05
        school_of = np.where(moved, rng.integers(0, n_schools, n_students), school_of)
        school = school_ids[school_of]
        daily_absence = 0.02 + 0.16 * expit(
            -1.6 - 1.1 * engagement + school_effect[school_of]
        )
        absent = rng.random((n_students, DAYS_IN_YEAR)) < daily_absence[:, None]
        incident_rate = np.exp(-1.2 - 0.9 * engagement)
        incident_day = rng.random((n_students, DAYS_IN_YEAR)) < (
            incident_rate[:, None] / DAYS_IN_YEAR
        )
        suspension = incident_day & (rng.random(incident_day.shape) < 0.25)
        ability = 74 + 7 * engagement + rng.normal(0, 3, n_students)
        final_marks = ability[:, None] + rng.normal(0, 6, (n_students, 4))
        term_marks = ability[:, None] + rng.normal(0, 7, (n_students, 4))
        ela_z = 0.75 * engagement + rng.normal(0, 0.65, n_students)
        math_z = 0.7 * engagement + rng.normal(0, 0.7, n_students)
        full_absence = absent.mean(axis=1)
        missed = {
            "chronic_absence": full_absence >= 0.10,
            "course_failure": (final_marks < 65).any(axis=1),
            "not_proficient_ela": ela_z < 0.0,
            "not_proficient_math": math_z < 0.1,
        }
        for kpi, values in missed.items():
            label_parts.append(
                pd.DataFrame(
                    {
                        "student_id": student_id,
                        "school_year": year,
                        "kpi": kpi,
                        "missed": values,
                        "school_id": school,
                    }
                )
            )
        for checkpoint, days in CHECKPOINTS:
            month, day = (int(part) for part in checkpoint.split("-"))
            as_of = dt.date(year - 1 if month >= 8 else year, month, day)
            days_absent = absent[:, :days].sum(axis=1).astype(float)
            incidents = incident_day[:, :days].sum(axis=1).astype(float)
            suspensions = suspension[:, :days].sum(axis=1).astype(float)
            terms = days // 45
            marks = term_marks[:, :terms] if terms else None
            snapshot = {
                "student_id": student_id,
                "as_of_date": as_of,
                "school_year": year,
                "checkpoint": checkpoint,
                "school_id": school,
                "days_enrolled": float(days),
                "days_absent": days_absent,
                "attendance_rate": 1 - days_absent / days,
                "unexcused_share": np.where(
                    days_absent > 0, rng.beta(2, 3, n_students), np.nan
                ),
                "tardies": rng.poisson(1 + days / 40, n_students).astype(float),
                "longest_absence_streak": _longest_run(absent[:, :days]),
                "attendance_rate_last_20": 1 - absent[:, days - 20 : days].mean(axis=1),
                "attendance_trend": absent[:, : days - 20].mean(axis=1)
                - absent[:, days - 20 : days].mean(axis=1),
                "incidents": incidents,
                "in_school_suspensions": np.floor(suspensions / 2),
                "out_of_school_suspensions": np.ceil(suspensions / 2),
                "days_removed": suspensions * 2,
                "failing_marks": (marks < 65).sum(axis=1).astype(float)
                if marks is not None
                else np.zeros(n_students),
                "mean_core_mark": marks.mean(axis=1) if marks is not None else np.nan,
                "credit_ratio": (marks >= 65).mean(axis=1)
                if marks is not None
                else np.nan,
                "schools_this_year": 1.0 + moved,
                "schools_last_year": np.ones(n_students),
                "days_since_entry": np.where(moved, days / 2, days + 180 * index),
                "new_to_district": np.full(n_students, float(index == 0)),
                "grade": (grade0 + index).astype(float),
                "over_age": (rng.random(n_students) < 0.05).astype(float),
                "current_programs": (rng.random(n_students) < 0.1).astype(float),
                "in_tutoring": (rng.random(n_students) < 0.07).astype(float),
                "in_mentoring": (rng.random(n_students) < 0.04).astype(float),
            }
            if prior is None:
                for name in (
                    "prior_attendance_rate",
                    "prior_chronic_absence",
                    "prior_incidents",
                    "prior_suspensions",
                    "prior_failures",
                    "ela_scale_z",
                    "ela_proficient",
                    "math_scale_z",
                    "math_proficient",
                ):
                    snapshot[name] = np.full(n_students, np.nan)
            else:
                snapshot.update(prior)
            snapshot_parts.append(pd.DataFrame(snapshot))
        prior = {
            "prior_attendance_rate": 1 - full_absence,
            "prior_chronic_absence": missed["chronic_absence"].astype(float),
            "prior_incidents": incident_day.sum(axis=1).astype(float),
            "prior_suspensions": suspension.sum(axis=1).astype(float),
            "prior_failures": (final_marks < 65).sum(axis=1).astype(float),
            "ela_scale_z": ela_z,
            "ela_proficient": (ela_z >= 0).astype(float),
            "math_scale_z": math_z,
            "math_proficient": (math_z >= 0.1).astype(float),
        }

    student_snapshots = pd.concat(snapshot_parts, ignore_index=True)
    student_snapshots = student_snapshots.merge(
        students.drop(columns=["first_name", "last_name"]), on="student_id"
    )
    student_snapshots = _abc_flags(student_snapshots)
    student_snapshots["as_of_date"] = pd.to_datetime(student_snapshots["as_of_date"])
    kpi_labels = pd.concat(label_parts, ignore_index=True)
    return {
        "student_snapshots": student_snapshots,
        "school_snapshots": _school_snapshots(student_snapshots, kpi_labels),
        "kpi_labels": kpi_labels,
        "students": students,
    }


def _longest_run(absent: np.ndarray) -> np.ndarray:
    longest = np.zeros(absent.shape[0])
    current = np.zeros(absent.shape[0])
    for day in range(absent.shape[1]):
        current = np.where(absent[:, day], current + 1, 0)
        longest = np.maximum(longest, current)
    return longest


def _abc_flags(student_snapshots: pd.DataFrame) -> pd.DataFrame:
    rate = student_snapshots["attendance_rate"]
    incidents = student_snapshots["incidents"]
    mark = student_snapshots["mean_core_mark"]
    flags = student_snapshots.copy()
    flags["abc_attendance"] = np.select([rate < 0.80, rate < 0.88], [2, 1], 0)
    flags["abc_behaviour"] = np.select(
        [
            (incidents > 2) | (student_snapshots["out_of_school_suspensions"] >= 1),
            incidents > 0,
        ],
        [2, 1],
        0,
    )
    flags["abc_course"] = np.select([mark < 65, mark < 72], [2, 1], 0)
    flags["abc_any_at_risk"] = (
        flags[["abc_attendance", "abc_behaviour", "abc_course"]].max(axis=1) == 2
    ).astype(int)
    return flags


def _school_snapshots(
    student_snapshots: pd.DataFrame, kpi_labels: pd.DataFrame
) -> pd.DataFrame:
    keys = ["school_id", "as_of_date"]
    chronic_so_far = (1 - student_snapshots["attendance_rate"]) >= 0.10
    schools = (
        student_snapshots.assign(
            chronic=chronic_so_far, failing=student_snapshots["failing_marks"] > 0
        )
        .groupby(keys)
        .agg(
            school_year=("school_year", "first"),
            enrollment=("student_id", "size"),
            school_attendance_rate=("attendance_rate", "mean"),
            school_chronic_rate_so_far=("chronic", "mean"),
            school_incident_rate=("incidents", "mean"),
            school_failing_rate=("failing", "mean"),
        )
        .reset_index()
    )
    rates = (
        kpi_labels.groupby(["school_id", "school_year", "kpi"])["missed"]
        .mean()
        .unstack("kpi")
        .add_prefix("school_prior_")
        .add_suffix("_rate")
        .reset_index()
    )
    rates["school_year"] += 1
    schools = schools.merge(rates, on=["school_id", "school_year"], how="left")
    return schools.drop(columns="school_year")
