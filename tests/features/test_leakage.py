"""The leakage guard: a snapshot as of a date never sees an event on or after it.

Every event dated on or after the as-of date, in every table, is changed, deleted or
joined by new ones; the snapshots as of that date must come out identical. Two
things dated on or after it are kept, by contract: a stay that starts on the as-of
date (a student enrolled on that date has a snapshot) and the facts that a stay
still runs and a program has not ended yet. The KPI label, which is the outcome of
the whole year, must change when the events after the date do.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from snapshot_district import (
    FIRST_AS_OF,
    SECOND_AS_OF,
    TODAY,
    built_tiny_district,
    make_config,
    tiny_district,
    weekdays,
    write_district,
)

from features import build_snapshots, generate_demo_district

EVENT_DATES = {
    "attendance": "date",
    "discipline": "date",
    "grades": "term_end_date",
    "assessments": "date",
    "calendar": "date",
}


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    return built_tiny_district(tmp_path_factory.getbasetemp())


def rewrite_after(tables: dict, as_of: dt.date, seed: int) -> dict:
    """The district with every event on or after ``as_of`` changed or deleted."""
    rng = np.random.default_rng(seed)
    changed = {name: frame.copy() for name, frame in tables.items()}
    for name, column in EVENT_DATES.items():
        frame = changed[name]
        later = pd.to_datetime(frame[column]).dt.date >= as_of
        kept = frame[~later | (rng.random(len(frame)) < 0.5)]
        changed[name] = _scramble(name, kept, later.loc[kept.index], as_of)
    changed["enrollments"] = _enrollments_after(changed["enrollments"], as_of)
    changed["programs"] = _programs_after(changed["programs"], as_of)
    return changed


def _scramble(name: str, frame: pd.DataFrame, later: pd.Series, as_of: dt.date):
    frame = frame.copy()
    if name == "attendance":
        frame.loc[later, ["category", "fraction_missed"]] = ["unexcused", 1.0]
        extra = frame.drop_duplicates("student_id").assign(
            date=as_of, category="excused", fraction_missed=1.0
        )
        return pd.concat([frame, extra], ignore_index=True)
    if name == "discipline":
        frame.loc[later, ["action", "days_removed"]] = ["expulsion", 9.0]
        extra = frame.drop_duplicates("student_id").assign(
            incident_id=lambda f: f.incident_id + "-late", date=as_of
        )
        return pd.concat([frame, extra], ignore_index=True)
    if name == "grades":
        frame.loc[later, ["mark", "credits_earned"]] = [1.0, 0.0]
        return frame
    if name == "assessments":
        frame.loc[later, "scale_score"] = frame.loc[later, "scale_score"] + 500
        frame.loc[later, "proficient"] = ~frame.loc[later, "proficient"].astype(bool)
        extra = frame.drop_duplicates("student_id").assign(
            school_year=_school_year(as_of),
            date=as_of,
            subject="math",
            scale_score=1.0,
            proficient=False,
        )
        return pd.concat([frame, extra], ignore_index=True)
    # The calendar: later school days thinned out above; add weekend days.
    saturday = as_of + dt.timedelta(days=(5 - as_of.weekday()) % 7)
    extra = frame.drop_duplicates("school_id").assign(date=saturday)
    return pd.concat([frame, extra], ignore_index=True)


def _school_year(day: dt.date) -> int:
    return day.year + (day.month >= 8)


def _enrollments_after(enrollments: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    entry = pd.to_datetime(enrollments.entry_date).dt.date
    exit_ = pd.to_datetime(enrollments.exit_date).dt.date
    kept = enrollments[entry <= as_of].copy()
    # A stay that runs past the as-of date now runs to the end of the year.
    running = exit_.loc[kept.index].notna() & (exit_.loc[kept.index] >= as_of)
    kept.loc[running, ["exit_date", "exit_reason"]] = [None, None]
    newcomer = kept.iloc[[0]].assign(
        student_id="late-arrival",
        entry_date=as_of + dt.timedelta(days=1),
        exit_date=None,
    )
    return pd.concat([kept, newcomer], ignore_index=True)


def _programs_after(programs: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    begin = pd.to_datetime(programs.begin_date).dt.date
    end = pd.to_datetime(programs.end_date).dt.date
    kept = programs[begin < as_of].copy()
    ends_later = end.loc[kept.index].notna() & (end.loc[kept.index] >= as_of)
    kept.loc[ends_later, "end_date"] = as_of + dt.timedelta(days=300)
    started = kept.drop_duplicates("student_id").assign(
        program="mentoring", begin_date=as_of, end_date=None
    )
    return pd.concat([kept, started], ignore_index=True)


def _snapshots_as_of(state: Path, config, as_of: dt.date) -> tuple:
    build_snapshots(config, as_of=as_of, today=TODAY)
    folder = state / "snapshots"
    snapshots = []
    for name, keys in (
        ("student_snapshots.parquet", ["student_id", "as_of_date"]),
        ("school_snapshots.parquet", ["school_id", "as_of_date"]),
    ):
        frame = pd.read_parquet(folder / name)
        # The file holds every checkpoint as well: keep the rows of ``as_of``.
        on_date = frame[pd.to_datetime(frame.as_of_date).dt.date == as_of]
        snapshots.append(on_date.sort_values(keys).reset_index(drop=True))
    return tuple(snapshots)


@pytest.mark.parametrize("stored", [False, True], ids=["derived", "stored days"])
@pytest.mark.parametrize("as_of", [FIRST_AS_OF, SECOND_AS_OF])
def test_tiny_district_snapshot_ignores_everything_from_the_as_of_date(
    district, tmp_path, as_of, stored
):
    # ``district`` derives the attendance days; ``stored`` reads the ones stored
    # from the rewritten events, later ones included.
    config, _, students, schools, _ = district
    rewritten = rewrite_after(tiny_district(), as_of, seed=1)
    write_district(tmp_path, rewritten, stored=stored)
    after = _snapshots_as_of(tmp_path, make_config(tmp_path), as_of)
    before = [
        frame[frame.as_of_date == as_of]
        .sort_values(list(frame.columns[:2]))
        .reset_index(drop=True)
        for frame in (students, schools)
    ]
    assert len(before[0]) > 0
    pd.testing.assert_frame_equal(after[0], before[0])
    pd.testing.assert_frame_equal(after[1], before[1])


@pytest.mark.slow
def test_generated_district_snapshot_ignores_everything_from_the_as_of_date(
    tmp_path,
):
    export = tmp_path / "export"
    generate_demo_district(
        export, n_students=150, n_schools=3, n_years=2, seed=11, file_format="parquet"
    )
    tables = {path.stem: pd.read_parquet(path) for path in export.glob("*.parquet")}
    as_of = dt.date(2025, 2, 1)
    original, rewritten = tmp_path / "original", tmp_path / "rewritten"
    write_district(original, tables)
    # Stored days for the rewrite: they hold the later events, cut at the as-of date.
    write_district(rewritten, rewrite_after(tables, as_of, seed=2), stored=True)
    before = _snapshots_as_of(original, make_config(original), as_of)
    after = _snapshots_as_of(rewritten, make_config(rewritten), as_of)
    assert len(before[0]) > 100
    # The rewrite did reach the snapshot's own school year.
    assert before[0].days_absent.sum() > 0
    pd.testing.assert_frame_equal(after[0], before[0])
    pd.testing.assert_frame_equal(after[1], before[1])


def test_the_label_uses_the_events_after_the_as_of_date(district, tmp_path):
    config, _, students, _, labels = district
    tables = tiny_district()
    # After 1 February, 0001 misses 20 school days and fails the spring term.
    spring = weekdays(dt.date(2024, 3, 4), dt.date(2024, 3, 29))
    absences = pd.DataFrame(
        {
            "student_id": "0001",
            "school_id": "A",
            "date": spring,
            "category": "unexcused",
            "fraction_missed": 1.0,
        }
    )
    tables["attendance"] = pd.concat([tables["attendance"], absences])
    final = tables["grades"].iloc[[4]].assign(term="q4", term_end_date=spring[-1])
    tables["grades"] = pd.concat([tables["grades"], final.assign(mark=30.0)])
    write_district(tmp_path, tables)
    after = _snapshots_as_of(tmp_path, make_config(tmp_path), SECOND_AS_OF)

    before = (
        students[students.as_of_date == SECOND_AS_OF]
        .sort_values(["student_id", "as_of_date"])
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(after[0], before)
    relabelled = pd.read_parquet(tmp_path / "snapshots" / "kpi_labels.parquet")
    key = ["student_id", "school_year", "kpi"]
    old = labels.set_index(key).missed
    new = relabelled.set_index(key).missed
    # 4.5 + 20 days of 199 is 12.3%: chronic now; the final math mark is 30.
    assert set(new.index) == set(old.index)
    flipped = old[old != new.reindex(old.index)]
    assert sorted(flipped.index) == [
        ("0001", 2024, "chronic_absence"),
        ("0001", 2024, "course_failure"),
    ]
    assert not flipped.any()
