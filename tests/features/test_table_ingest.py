"""A flat student table written as snapshot files: exact frames from the handwritten
table, the stored catalog the later stages read, and exact refusals."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from features import (
    FEATURE_CATALOG,
    Feature,
    StudentTableError,
    feature_catalog_for,
    ingest_student_table,
    read_student_table,
)
from ontrack.config import Paths, load_config

DATA = Path(__file__).parent / "data" / "student-table"
REPO = Path(__file__).resolve().parents[2]
SMALL = DATA / "small.csv"
SMALL_MAPPING = DATA / "small.mapping.toml"
UCI = REPO.parent / "shared" / "data" / "uci-student-performance"


@pytest.fixture
def config(tmp_path):
    """The UCI Portuguese config (one checkpoint, 10-01; gender only) in tmp_path."""
    config = load_config(REPO / "configs" / "uci-portuguese.toml")
    paths = Paths(state_dir=tmp_path / "state", mlruns_dir=tmp_path / "mlruns")
    return config.model_copy(update={"paths": paths})


def _mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_rows_become_the_snapshot_files(config):
    report = ingest_student_table(config, SMALL, SMALL_MAPPING)
    snapshots = config.state_dir / "snapshots"

    # School year 2024 (mapping) at the config's checkpoint 10-01: 2023-10-01.
    assert report.as_of_date == dt.date(2023, 10, 1)
    assert (report.rows_read, report.students, report.quarantined) == (8, 2, 6)
    assert report.labels == {"course_failure": (1, 2)}
    students = pd.read_parquet(snapshots / "student_snapshots.parquet")
    pd.testing.assert_frame_equal(
        students,
        pd.DataFrame(
            {
                "student_id": ["007", "013"],
                "as_of_date": [dt.date(2023, 10, 1)] * 2,
                "school_year": [2024, 2024],
                "checkpoint": ["10-01", "10-01"],
                "school_id": ["GP", "MS"],
                "gender": ["female", "male"],
                "age": [16.0, 18.0],
                "paid": [1.0, 1.0],
                "Mjob": pd.Categorical(["teacher", "services"]),
            }
        ),
    )
    schools = pd.read_parquet(snapshots / "school_snapshots.parquet")
    assert schools.to_dict("list") == {
        "school_id": ["GP", "MS"],
        "as_of_date": [dt.date(2023, 10, 1)] * 2,
        "enrollment": [1, 1],
        "school_age": [16.0, 18.0],
        "school_paid": [1.0, 1.0],
    }
    labels = pd.read_parquet(snapshots / "kpi_labels.parquet")
    assert labels.to_dict("list") == {
        "student_id": ["007", "013"],
        "school_year": [2024, 2024],
        "kpi": ["course_failure", "course_failure"],
        "missed": [False, True],
        "school_id": ["GP", "MS"],
    }
    quarantine = pd.read_csv(
        config.state_dir / "quarantine" / "student_table.csv", dtype=str
    )
    assert quarantine["_row"].tolist() == ["2", "3", "4", "5", "6", "7"]


def test_the_stored_catalog_describes_the_tables_own_inputs(config, tmp_path):
    assert feature_catalog_for(config.state_dir) is FEATURE_CATALOG
    mapping = SMALL_MAPPING.read_text(encoding="utf-8") + (
        'domains = { age = "mobility" }\n'
        'words = { age = "aged {value} (median {reference})" }\n'
    )
    ingest_student_table(config, SMALL, _mapping(tmp_path, mapping))

    catalog = feature_catalog_for(config.state_dir)
    assert dict(catalog) == {
        "age": Feature("age", "mobility", "aged {value} (median {reference})"),
        "paid": Feature("paid", "other", "paid: {value}", kind="flag"),
        "Mjob": Feature("Mjob", "other", "Mjob: {value}", kind="category"),
        "gender": FEATURE_CATALOG["gender"],
    }
    assert catalog["age"].describe(16.0, 17.0) == "aged 16 (median 17)"
    stored = json.loads(
        (config.state_dir / "snapshots" / "feature_catalog.json").read_text()
    )
    assert [entry["name"] for entry in stored["features"]] == list(catalog)


def test_a_mapped_count_is_stored_as_a_count(config, tmp_path):
    mapping = SMALL_MAPPING.read_text(encoding="utf-8") + 'counts = ["age"]\n'

    ingest_student_table(config, SMALL, _mapping(tmp_path, mapping))

    catalog = feature_catalog_for(config.state_dir)
    assert catalog["age"].kind == "count"
    assert catalog["age"].describe(16.0, 17.0) == "age 16 (median 17)"


def test_include_puts_excluded_columns_back():
    table = read_student_table(SMALL, SMALL_MAPPING, include=["G1"])
    assert table.feature_columns == ["age", "paid", "Mjob", "G1"]


@pytest.mark.skipif(not UCI.is_dir(), reason=f"reference data not at {UCI}")
def test_published_figures_are_found_by_the_columns_put_back():
    table = read_student_table(
        UCI / "student-mat.csv", REPO / "configs" / "uci-math.mapping.toml"
    )
    assert table.mapping.published_for(["G2", "G1"]).accuracy == 0.919
    assert table.mapping.published_for(["G1"]).accuracy == 0.838
    assert table.mapping.published_for([]).accuracy == 0.706
    assert table.mapping.published_for(["G2"]) is None


def test_including_a_column_the_mapping_does_not_exclude_is_refused():
    with pytest.raises(StudentTableError) as error:
        read_student_table(SMALL, SMALL_MAPPING, include=["age"])
    assert str(error.value) == (
        f"{SMALL_MAPPING}: cannot include 'age': it is not in [features] exclude "
        "(excluded: G1, G2)"
    )


def test_words_may_name_only_value_and_reference(tmp_path):
    path = _mapping(
        tmp_path,
        SMALL_MAPPING.read_text(encoding="utf-8") + 'words = { age = "{age} years" }\n',
    )
    with pytest.raises(StudentTableError) as error:
        read_student_table(SMALL, path)
    assert str(error.value) == (
        f"{path}: [features.words] age = '{{age}} years': may name only {{value}} "
        "and {reference}"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("school_year = 2024\n", ""),
            "{path}: [table] school_year is missing; ingesting a flat table needs "
            "the school year its rows belong to (named by its spring year, e.g. 2006 "
            "for 2005-06)",
        ),
        (
            ("course_failure =", "failed ="),
            "{path}: [labels] failed: the config defines no KPI of that name; its "
            "KPIs: course_failure",
        ),
        (
            ('gender = { column = "sex", values = { F = "female", M = "male" } }', ""),
            "{path}: the config's [privacy] protected_attributes lists gender, which "
            "[groups] does not map (it maps: none); map them or take them off the "
            "config's list",
        ),
    ],
)
def test_a_table_that_does_not_fit_the_config_is_refused(
    config, tmp_path, change, message
):
    text = SMALL_MAPPING.read_text(encoding="utf-8").replace(*change)
    path = _mapping(tmp_path, text)
    with pytest.raises(StudentTableError) as error:
        ingest_student_table(config, SMALL, path)
    assert str(error.value) == message.format(path=path)
    assert not (config.state_dir / "snapshots").exists()


def test_the_command_needs_a_mapping_for_a_student_table(tmp_path):
    from typer.testing import CliRunner

    from ontrack.cli import app

    config_path = tmp_path / "district.toml"
    config_path.write_text(
        (REPO / "configs" / "uci-portuguese.toml")
        .read_text(encoding="utf-8")
        .replace('"../state/uci-portuguese"', f'"{tmp_path / "state"}"'),
        encoding="utf-8",
    )
    arguments = ["ingest", "--format", "student-table", str(SMALL)]
    refused = CliRunner().invoke(app, [*arguments, "-c", str(config_path)])
    assert refused.exit_code == 2  # a usage error, as click and typer give
    assert (
        "Invalid value for '--mapping': --format student-table needs it: the TOML "
        "file naming the id, school, group and label columns"
    ) in refused.output

    accepted = CliRunner().invoke(
        app, [*arguments, "--mapping", str(SMALL_MAPPING), "-c", str(config_path)]
    )
    assert accepted.exit_code == 0, accepted.output
    assert (tmp_path / "state" / "snapshots" / "student_snapshots.parquet").is_file()


def test_a_table_with_no_row_to_keep_leaves_the_snapshots_as_they_were(
    config, tmp_path
):
    ingest_student_table(config, SMALL, SMALL_MAPPING)
    snapshots = config.state_dir / "snapshots"
    before = {path.name: path.read_bytes() for path in snapshots.iterdir()}
    header_only = tmp_path / "header.csv"
    header_only.write_text(SMALL.read_text().splitlines()[0] + "\n")

    with pytest.raises(StudentTableError) as error:
        ingest_student_table(config, header_only, SMALL_MAPPING)

    assert str(error.value) == (
        f"{header_only}: no student row to keep (0 rows read, 0 quarantined); "
        "refused as a whole"
    )
    assert {path.name: path.read_bytes() for path in snapshots.iterdir()} == before
