"""The snapshot files ``build_snapshots`` writes: their row order and as-of dates."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd
import pytest
from snapshot_district import (
    FIRST_AS_OF,
    SECOND_AS_OF,
    TODAY,
    make_config,
    tiny_district,
    write_district,
)

from features import build_snapshots, write_warehouse
from features._snapshots import NoStudentOnDate, WarehouseError

FILES = ("student_snapshots", "school_snapshots", "kpi_labels")
KEYS = {
    "student_snapshots": ["student_id", "as_of_date"],
    "school_snapshots": ["school_id", "as_of_date"],
    "kpi_labels": ["student_id", "school_year", "kpi", "school_id"],
}
IN_MARCH = dt.date(2024, 3, 15)
IN_APRIL = dt.date(2024, 4, 1)


@pytest.fixture
def config(tmp_path: Path):
    config = make_config(tmp_path / "state")
    write_district(config.state_dir, tiny_district())
    return config


def written(config, name: str) -> pd.DataFrame:
    return pd.read_parquet(config.state_dir / "snapshots" / f"{name}.parquet")


def file_bytes(config) -> dict[str, bytes]:
    folder = config.state_dir / "snapshots"
    return {name: (folder / f"{name}.parquet").read_bytes() for name in FILES}


def as_of_dates(frame: pd.DataFrame) -> list[dt.date]:
    return sorted(set(pd.to_datetime(frame["as_of_date"]).dt.date))


def test_every_file_is_written_in_the_order_of_its_key(config):
    build_snapshots(config, today=TODAY)

    for name, key in KEYS.items():
        frame = written(config, name)
        in_order = frame.sort_values(key, kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(frame, in_order, obj=name)


def test_two_builds_write_the_same_bytes(config):
    build_snapshots(config, today=TODAY)
    first = file_bytes(config)

    build_snapshots(config, today=TODAY)

    assert file_bytes(config) == first


def test_stored_attendance_days_write_the_same_files_as_deriving_them(config, tmp_path):
    derived = build_snapshots(config, today=TODAY)
    stored_config = make_config(tmp_path / "stored")
    write_district(stored_config.state_dir, tiny_district(), stored=True)

    stored = build_snapshots(stored_config, today=TODAY)

    for name in FILES:
        pd.testing.assert_frame_equal(
            written(stored_config, name), written(config, name), obj=name
        )
    assert (stored.absences_on_days_off, stored.absences_outside_enrolment) == (
        derived.absences_on_days_off,
        derived.absences_outside_enrolment,
    )
    assert derived.absences_on_days_off > 0


def test_absences_in_a_school_year_without_a_calendar_are_reported(tmp_path):
    config = make_config(tmp_path)
    tables = tiny_district()
    # A year before any calendar: 2021-2022.
    early = tables["attendance"].iloc[[0]].assign(date=dt.date(2021, 10, 4))
    tables["attendance"] = pd.concat([tables["attendance"], early])
    write_district(config.state_dir, tables)

    summary = build_snapshots(config, today=TODAY)

    assert summary.absences_without_calendar == 1


def test_attendance_days_stored_for_another_school_year_start_are_not_read(
    tmp_path, caplog
):
    config = make_config(tmp_path / "derived")
    write_district(config.state_dir, tiny_district())
    build_snapshots(config, today=TODAY)
    # Stored as if school years started on 1 July: the tiny config says 1 August.
    other = make_config(tmp_path / "other")
    write_warehouse(other.state_dir, tiny_district(), school_year_start="07-01")

    with caplog.at_level(logging.WARNING, logger="features._derived_tables"):
        build_snapshots(other, today=TODAY)

    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING
    ]
    assert warnings == [
        "the warehouse's derived tables are marked 'ontrack derived tables v2, "
        "school_year_start=07-01', not 'ontrack derived tables v2, "
        "school_year_start=08-01' (this version, the config's school-year start): "
        "deriving them (run `ontrack ingest` again to store them)"
    ]
    for name in FILES:
        pd.testing.assert_frame_equal(written(other, name), written(config, name))


def test_an_ad_hoc_date_is_added_to_the_checkpoints_and_earlier_ones_kept(config):
    build_snapshots(config, today=TODAY)
    labels = written(config, "kpi_labels")

    build_snapshots(config, IN_MARCH, today=TODAY)
    summary = build_snapshots(config, IN_APRIL, today=TODAY)
    again = build_snapshots(config, IN_APRIL, today=TODAY)

    dates = [FIRST_AS_OF, SECOND_AS_OF, IN_MARCH, IN_APRIL]
    students = written(config, "student_snapshots")
    assert as_of_dates(students) == dates
    assert as_of_dates(written(config, "school_snapshots")) == dates
    # Asking for the same date again replaces its rows, it does not add more.
    assert not students.duplicated(["student_id", "as_of_date"]).any()
    assert again.rows_by_as_of == summary.rows_by_as_of
    # The 2023 checkpoints precede that year's four weeks of school in May.
    assert summary.rows_by_as_of == {
        dt.date(2022, 10, 3): 0,
        dt.date(2023, 2, 1): 0,
        FIRST_AS_OF: 4,
        SECOND_AS_OF: 3,
        IN_MARCH: 3,
        IN_APRIL: 3,
    }
    assert summary.checkpoint_by_as_of[IN_MARCH] == ""
    pd.testing.assert_frame_equal(written(config, "kpi_labels"), labels)

    # A build without an ad-hoc date is the checkpoints only.
    build_snapshots(config, today=TODAY)
    assert as_of_dates(written(config, "student_snapshots")) == dates[:2]


def test_earlier_ad_hoc_dates_are_built_again_from_the_warehouse_as_it_is(config):
    build_snapshots(config, IN_MARCH, today=TODAY)
    before = written(config, "student_snapshots")
    # A new export adds an absence of 0001 on Tuesday 5 March.
    tables = tiny_district()
    late = pd.DataFrame(
        {
            "student_id": ["0001"],
            "school_id": ["A"],
            "date": [dt.date(2024, 3, 5)],
            "category": ["unexcused"],
            "fraction_missed": [1.0],
        }
    )
    tables["attendance"] = pd.concat([tables["attendance"], late])
    write_district(config.state_dir, tables)

    build_snapshots(config, IN_APRIL, today=TODAY)

    after = written(config, "student_snapshots")

    def absent(frame: pd.DataFrame) -> float:
        in_march = pd.to_datetime(frame.as_of_date).dt.date == IN_MARCH
        return frame[in_march & (frame.student_id == "0001")].days_absent.item()

    assert absent(after) == absent(before) + 1
    assert as_of_dates(after) == [FIRST_AS_OF, SECOND_AS_OF, IN_MARCH, IN_APRIL]


@pytest.mark.parametrize("as_of", [dt.date(2010, 1, 1), dt.date(2030, 1, 1)])
def test_an_as_of_date_with_nobody_enrolled_is_refused_naming_the_span(config, as_of):
    build_snapshots(config, today=TODAY)
    before = file_bytes(config)

    with pytest.raises(NoStudentOnDate) as error:
        build_snapshots(config, as_of, today=TODAY)

    assert isinstance(error.value, WarehouseError | ValueError)
    assert str(error.value) == (
        f"as-of date {as_of.isoformat()}: no student is enrolled on that day; the "
        "warehouse's calendar covers 2023-05-01 to 2024-06-07 (both inclusive): "
        "pick a school day in it"
    )
    assert file_bytes(config) == before


def test_a_school_year_start_after_the_first_school_day_is_warned_about(tmp_path):
    # From 15 May, the tiny district's last three weeks of school (May-June 2024)
    # fall in a school year 2025 that nobody is enrolled in.
    config = make_config(
        tmp_path, district={"name": "Tiny", "school_year_start": "05-15"}
    )
    write_district(config.state_dir, tiny_district())

    summary = build_snapshots(config, today=TODAY)

    assert summary.notes == (
        "warning: school year 2025 has school days in the calendar but no "
        "enrolment; is [district] school_year_start (05-15) later than the first "
        "day of school?",
    )
    assert summary.notes[0] in summary.describe()


def test_a_failure_while_writing_leaves_the_old_files_as_they_were(config, monkeypatch):
    build_snapshots(config, today=TODAY)
    before = file_bytes(config)
    import features._snapshots as snapshots

    write_table = snapshots.pq.write_table

    def fail_on_the_labels(table, where, *args, **kwargs):
        if "kpi_labels" in str(where):
            raise OSError("disk full")
        write_table(table, where, *args, **kwargs)

    monkeypatch.setattr(snapshots.pq, "write_table", fail_on_the_labels)

    with pytest.raises(OSError, match="disk full"):
        build_snapshots(config, IN_MARCH, today=TODAY)

    # The student and school files were written first: none of them moved in.
    assert file_bytes(config) == before
    leftovers = list((config.state_dir / "snapshots").glob(".*.tmp"))
    assert leftovers == []
