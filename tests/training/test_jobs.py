"""``train_models`` and ``score_students`` end to end, on a temporary state."""

from __future__ import annotations

import json
import logging

import duckdb
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from training_district import make_config, make_district, write_snapshots

from training import (
    SnapshotError,
    TrainingDataError,
    load_champions,
    score_students,
    train_models,
)
from training._jobs import _date_list

pytestmark = [
    # MLflow 3.17's sqlite store maps a relationship with SQLAlchemy's deprecated
    # ``noload`` strategy when it is first used; MLflow's to update, not ours.
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
    # Importing mlflow.pyfunc (log_model does) infers schemas of MLflow's own agent
    # types and warns about their ``Any`` hints; nothing of ours is involved.
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType"),
]
KPIS = ("chronic_absence", "course_failure")
# Configured too, but with labels for 25 students only: skipped, never registered.
FEW_LABELS = "not_proficient_math"
FEW_LABELS_REASON = "25 labelled students (at least 50 needed)"
SCORED_COLUMNS = [
    "student_id",
    "as_of_date",
    "school_year",
    "school_id",
    "grade",
    "kpi",
    "risk",
    "tier",
    "driver_1",
    "driver_1_feature",
    "driver_1_domain",
    "driver_2",
    "driver_2_feature",
    "driver_2_domain",
    "driver_3",
    "driver_3_feature",
    "driver_3_domain",
    "model_version",
    "race_ethnicity",
    "gender",
    "disability",
    "english_learner",
    "economically_disadvantaged",
]


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _write_warehouse_names(config, students: pd.DataFrame) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(config.state_dir / "warehouse.duckdb")) as connection:
        connection.register("named", students)
        connection.execute("create table students as select * from named")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One MLflow store for the module."""
    return tmp_path_factory.mktemp("mlruns")


def _few_labels(district: dict[str, pd.DataFrame], kpi: str) -> dict:
    """The district with ``kpi`` labelled for its first 25 student-years only."""
    labels = district["kpi_labels"]
    of_kpi = labels[labels["kpi"] == kpi]
    kept = pd.concat([labels[labels["kpi"] != kpi], of_kpi.head(25)])
    return {**district, "kpi_labels": kept.reset_index(drop=True)}


@pytest.fixture(scope="module")
def run(tmp_path_factory, district, store):
    """Train and score once; keep the summaries, the config and the log lines."""
    config = make_config(tmp_path_factory.mktemp("jobs"), (*KPIS, FEW_LABELS), store)
    write_snapshots(config, _few_labels(district, FEW_LABELS))
    _write_warehouse_names(config, district["students"])
    records = _Records()
    root = logging.getLogger()
    root.addHandler(records)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        training = train_models(config)
        scoring = score_students(config)
    finally:
        root.removeHandler(records)
        root.setLevel(previous)
    return {
        "config": config,
        "training": training,
        "scoring": scoring,
        "logs": records.lines,
        "names": district["students"],
    }


def test_training_summary_names_versions_metrics_and_paths(run):
    summary = run["training"]
    text = summary.describe()

    assert [kpi.kpi for kpi in summary.kpis] == list(KPIS)
    assert "chronic_absence: model version 1" in text
    assert "version 1 is champion: first version of this model" in text
    assert "baselines' PR AUC: ABC flags" in text
    assert f"report: {summary.report_path}" in text
    assert f"JSON: {summary.json_path}" in text
    assert summary.report_path.read_text().startswith("<!doctype html>")


def test_a_kpi_with_too_few_labels_is_skipped_and_not_registered(run):
    summary = run["training"]
    document = json.loads(summary.json_path.read_text())
    client = MlflowClient(tracking_uri=run["config"].mlflow_uri)

    assert summary.skipped == {FEW_LABELS: FEW_LABELS_REASON}
    assert f"{FEW_LABELS}: skipped, {FEW_LABELS_REASON}" in summary.describe()
    assert document["skipped"] == {FEW_LABELS: FEW_LABELS_REASON}
    assert FEW_LABELS not in document["kpis"]
    assert client.search_registered_models(f"name = 'ontrack-{FEW_LABELS}'") == []


def test_training_fails_when_every_kpi_has_too_few_labels(tmp_path, district, store):
    config = make_config(tmp_path, (FEW_LABELS,), store)
    write_snapshots(config, _few_labels(district, FEW_LABELS))

    with pytest.raises(TrainingDataError) as error:
        train_models(config)

    assert str(error.value) == (
        f"kpi_labels: no KPI can be trained ({FEW_LABELS}: {FEW_LABELS_REASON}); "
        "each KPI needs at least 50 labelled students, and at least 10 who missed "
        "and 10 who did not in both the training rows and the holdout"
    )
    assert not (config.state_dir / "reports" / "training.json").exists()


def test_json_report_holds_every_kpi_with_findings_and_fairness(run):
    document = json.loads(run["training"].json_path.read_text())

    assert set(document["kpis"]) == set(KPIS)
    section = document["kpis"]["chronic_absence"]
    assert section["model_version"] == "1"
    assert section["temporal"] is True
    assert section["holdout_year"] == 2024
    assert document["protected_as_inputs"] is False
    assert {row["scorer"] for row in section["metrics"]} == {
        "lightgbm",
        "abc_flags",
        "last_year_outcome",
        "logistic_regression",
        "school_only",
    }
    assert {row["baseline"] for row in section["pr_auc_differences"]} == {
        "logistic_regression",
        "school_only",
        "last_year_outcome",
    }
    assert section["findings"][0].startswith("At the same number of students flagged")
    assert {row["attribute"] for row in section["fairness"]} >= {"gender"}


def test_mlflow_run_records_params_fingerprint_versions_and_model_card(run):
    config = run["config"]
    client = MlflowClient(
        tracking_uri=config.mlflow_uri, registry_uri=config.mlflow_uri
    )

    version = client.get_model_version_by_alias("ontrack-chronic_absence", "champion")
    mlflow_run = client.get_run(version.run_id)
    artifacts = {item.path for item in client.list_artifacts(version.run_id)}
    experiment = client.get_experiment(mlflow_run.info.experiment_id)

    assert str(version.version) == "1"
    assert mlflow_run.data.params["seed"] == "42"
    assert len(mlflow_run.data.tags["training_data_fingerprint"]) == 64
    assert mlflow_run.data.tags["code_version"]
    assert mlflow_run.data.tags["library.lightgbm"].startswith("4.")
    assert "lightgbm/all/pr_auc" in mlflow_run.data.metrics
    assert {"model_card.md", "report", "tables"} <= artifacts
    assert experiment.artifact_location == (config.mlruns_dir / "artifacts").as_uri()
    card = client.download_artifacts(version.run_id, "model_card.md")
    with open(card, encoding="utf-8") as file:
        text = file.read()
    for heading in ("## Intended use", "## Data", "## Fairness", "## Known limits"):
        assert heading in text


def test_no_student_name_reaches_mlflow_the_reports_or_the_logs(run):
    config = run["config"]
    names = set(run["names"]["first_name"]) | set(run["names"]["last_name"])
    written = [
        *sorted((config.mlruns_dir / "artifacts").rglob("*")),
        *sorted((config.state_dir / "reports").rglob("*")),
    ]
    texts = [
        path.read_text(encoding="utf-8", errors="ignore")
        for path in written
        if path.is_file() and path.suffix in {".md", ".json", ".html", ".txt", ".yaml"}
    ]

    assert texts
    for name in ("First1", "Last1", "First599"):
        assert name in names
        assert not any(name in text for text in texts)
        assert not any(name in line for line in run["logs"])


def test_scored_snapshot_has_the_contract_columns_one_row_per_student_and_kpi(run):
    scored = pd.read_parquet(run["scoring"].scored_path)

    assert list(scored.columns) == SCORED_COLUMNS
    assert not scored.duplicated(["student_id", "as_of_date", "kpi"]).any()
    assert set(scored["kpi"]) == set(KPIS)
    assert str(run["scoring"].as_of_date) == "2024-04-01"
    assert scored["risk"].between(0, 1).all()
    assert set(scored["tier"]) <= {"high", "moderate", "low"}


def test_lists_hold_high_and_moderate_students_riskiest_first_with_names(run):
    scored = pd.read_parquet(run["scoring"].scored_path)
    lists_dir = run["scoring"].lists_dir
    files = sorted(lists_dir.glob("*/*.csv"))

    assert (
        len(files)
        == run["scoring"].n_lists
        == scored[["school_id", "kpi"]].drop_duplicates().shape[0]
    )
    at_risk = pd.read_csv(files[0], dtype={"student_id": str})
    school_id, kpi = files[0].parent.name, files[0].stem
    expected = scored[
        (scored["school_id"] == school_id)
        & (scored["kpi"] == kpi)
        & scored["tier"].isin(["high", "moderate"])
    ]
    assert len(at_risk) == len(expected) > 0
    assert at_risk["risk"].is_monotonic_decreasing
    assert at_risk["first_name"].str.startswith("First").all()
    assert list(at_risk.columns[:6]) == [
        "student_id",
        "first_name",
        "last_name",
        "grade",
        "risk",
        "tier",
    ]


def test_projections_roll_up_the_scored_risks(run):
    scored = pd.read_parquet(run["scoring"].scored_path)
    projections = pd.read_parquet(run["scoring"].projections_path)

    district = projections[projections["school_id"] == "district"].set_index("kpi")
    chronic = scored[scored["kpi"] == "chronic_absence"]
    assert district.loc["chronic_absence", "n_students"] == len(chronic)
    assert district.loc["chronic_absence", "expected_rate"] == pytest.approx(
        chronic["risk"].mean()
    )
    assert district.loc["chronic_absence", "target"] == 0.22
    assert projections["p_miss_target"].between(0, 1).all()
    assert (projections["rate_low"] <= projections["expected_rate"] + 1e-9).all()
    assert (projections["expected_rate"] <= projections["rate_high"] + 1e-9).all()
    assert district["observed_rate_so_far"].notna().tolist() == [True, False]


def test_champions_loaded_in_process_reproduce_the_scored_snapshot(run, district):
    scorers = load_champions(run["config"], n_jobs=1)
    scored = pd.read_parquet(run["scoring"].scored_path)
    students = district["student_snapshots"]
    latest = students[students["as_of_date"] == students["as_of_date"].max()]

    again = scorers["course_failure"].score(latest)

    expected = scored[scored["kpi"] == "course_failure"]
    np.testing.assert_allclose(again["risk"], expected["risk"], atol=1e-12)
    assert (again["driver_1"].to_numpy() == expected["driver_1"].to_numpy()).all()
    assert scorers["course_failure"].model_version == "1"


def test_scoring_a_date_without_snapshots_names_the_dates_that_exist(run):
    import datetime as dt

    with pytest.raises(SnapshotError) as error:
        score_students(run["config"], as_of=dt.date(2030, 1, 1))

    # All twelve, the earliest too: the first school year is not cut off.
    assert str(error.value) == (
        "student_snapshots: no rows with as_of_date 2030-01-01; available dates: "
        "2021-10-01, 2021-12-01, 2022-02-01, 2022-04-01, 2022-10-01, 2022-12-01, "
        "2023-02-01, 2023-04-01, 2023-10-01, 2023-12-01, 2024-02-01, 2024-04-01; "
        "run `ontrack features --as-of 2030-01-01` first"
    )


def test_more_snapshot_dates_than_fit_a_line_give_the_first_last_and_count():
    dates = pd.Series(pd.date_range("2020-10-01", periods=40, freq="MS"))

    assert _date_list(dates) == "40 dates from 2020-10-01 to 2024-01-01"


def _worse(district: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The same holdout year, with every training-year feature row shuffled."""
    students = district["student_snapshots"].copy()
    training = students["school_year"] < 2024
    keys = ["student_id", "as_of_date", "school_year", "checkpoint", "school_id"]
    features = [column for column in students.columns if column not in keys]
    order = np.random.default_rng(0).permutation(int(training.sum()))
    students.loc[training, features] = (
        students.loc[training, features].iloc[order].to_numpy()
    )
    return {**district, "student_snapshots": students}


@pytest.mark.slow
def test_champion_moves_only_to_a_version_that_is_not_worse(tmp_path, store):
    # Its own KPI in the shared store, so the versions are this test's alone.
    kpi, name = "not_proficient_ela", "ontrack-not_proficient_ela"
    district = make_district(n_students=300, n_schools=3, seed=11)
    config = make_config(tmp_path, (kpi,), store)
    client = MlflowClient(
        tracking_uri=config.mlflow_uri, registry_uri=config.mlflow_uri
    )

    write_snapshots(config, district)
    first = train_models(config).kpis[0]
    write_snapshots(config, _worse(district))
    second = train_models(config).kpis[0]
    after_worse = str(client.get_model_version_by_alias(name, "champion").version)
    write_snapshots(config, district)
    third = train_models(config).kpis[0]
    after_same = str(client.get_model_version_by_alias(name, "champion").version)

    assert (first.model_version, second.model_version) == ("1", "2")
    assert after_worse == "1"
    assert not second.champion
    assert second.decision.startswith("version 2 is not champion: holdout PR AUC ")
    assert f"is worse than champion version 1's {first.pr_auc:.4f}" in second.decision
    # Same data and seed: the same model, so not worse, and the alias moves.
    assert third.pr_auc == first.pr_auc
    assert third.champion
    assert after_same == "3"


def test_scoring_before_any_training_names_the_command_to_run(tmp_path, district):
    # A store of its own: the module's store has champions by now.
    config = make_config(tmp_path, KPIS)
    write_snapshots(config, district)

    with pytest.raises(LookupError) as error:
        score_students(config)

    assert str(error.value) == (
        f"MLflow registry at {config.mlflow_uri}: no champion model for any KPI; "
        "run `ontrack train` first"
    )
