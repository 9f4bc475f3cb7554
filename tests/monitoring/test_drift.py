"""Drift verdicts on hand-built samples, and ``ontrack monitor`` end to end."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from monitoring import monitor_drift
from monitoring._calibration import auc_by_year, calibration_over_time
from monitoring._drift import column_drift, school_drift
from monitoring._jobs import reference_checkpoint, training_years
from ontrack.cli import app

# MLflow 3.17's sqlite store uses SQLAlchemy's deprecated ``noload`` strategy when it
# is first used; MLflow's to update, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated"
)

NUMERIC = ["attendance_rate", "incidents", "ela_scale_z", "english_learner"]
CATEGORICAL = ["gender"]


def _students(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "school_id": rng.choice(["0001", "0002"], n),
            "attendance_rate": rng.beta(40, 3, n) - shift / 4,
            "incidents": rng.poisson(0.4 + 2 * shift, n).astype(float),
            "ela_scale_z": rng.normal(-shift, 1, n),
            "english_learner": (rng.random(n) < 0.15 + shift / 2).astype(float),
            "gender": rng.choice(["female", "male"], n),
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize("n", [600, 1500])  # p-values below 1,000 rows, distances above
def test_shift_drifts_and_the_same_distribution_does_not(n):
    reference = _students(n, seed=1)

    same = column_drift(reference, _students(n, seed=2), NUMERIC, CATEGORICAL)
    shifted = column_drift(
        reference, _students(n, seed=3, shift=0.4), NUMERIC, CATEGORICAL
    )

    assert same.n_judged == shifted.n_judged == 5
    assert same.drift_share < 0.5
    verdicts = dict(
        zip(shifted.columns["column"], shifted.columns["verdict"], strict=True)
    )
    assert verdicts == {
        "attendance_rate": "drifted",
        "incidents": "drifted",
        "ela_scale_z": "drifted",
        "english_learner": "drifted",
        "gender": "stable",
    }
    assert shifted.drift_share == 0.8


@pytest.mark.parametrize("n", [600, 1500])
def test_direct_stattests_agree_with_the_report(n):
    reference = _students(n, seed=1)
    for current in (_students(n, seed=2), _students(n, seed=3, shift=0.1)):
        report = column_drift(reference, current, NUMERIC, CATEGORICAL)
        direct = column_drift(reference, current, NUMERIC, CATEGORICAL, for_html=False)

        assert direct.snapshot is None
        assert direct.columns["verdict"].tolist() == report.columns["verdict"].tolist()
        assert direct.columns["score"].tolist() == pytest.approx(
            report.columns["score"].tolist()
        )
        assert (
            direct.columns["threshold"].tolist() == report.columns["threshold"].tolist()
        )


@pytest.mark.slow
def test_empty_constant_new_category_and_missing_columns_are_handled():
    reference = _students(400, seed=4).assign(
        notes=1.0, constant=1.0, other_constant=1.0
    )
    current = _students(400, seed=5).assign(
        notes=np.nan, constant=1.0, other_constant=0.0
    )
    current.loc[:19, "gender"] = "nonbinary"
    current.loc[current.index[::4], "ela_scale_z"] = np.nan

    result = column_drift(
        reference,
        current,
        ["ela_scale_z", "notes", "constant", "other_constant"],
        ["gender"],
    )

    columns = result.columns.set_index("column")
    assert columns.loc["notes", "verdict"] == "empty"
    assert columns.loc["constant", "verdict"] == "stable"
    assert columns.loc["other_constant", "verdict"] == "drifted"
    assert columns.loc["gender", "new_categories"] == ["nonbinary"]
    assert columns.loc["ela_scale_z", "missing_share_current"] == 0.25
    assert columns.loc["ela_scale_z", "missing_share_reference"] == 0.0
    assert columns.loc["ela_scale_z", "verdict"] == "stable"
    # The empty column is not judged, so it counts in neither part of the share.
    assert result.n_judged == 4
    assert result.drift_share == result.n_drifted / 4


@pytest.mark.slow
def test_small_schools_and_schools_without_reference_are_not_flagged():
    reference = _students(300, seed=6)
    current = _students(300, seed=7, shift=0.4)
    reference.loc[:, "school_id"] = np.where(reference.index < 290, "0001", "0002")
    current.loc[:, "school_id"] = np.where(
        current.index < 280, "0001", np.where(current.index < 290, "0002", "0009")
    )

    schools = school_drift(
        reference, current, NUMERIC, CATEGORICAL, min_school_n=30, alert_share=0.5
    ).set_index("school_id")

    assert schools.loc["0001", "verdict"] == "drifted"
    assert bool(schools.loc["0001", "flagged"])
    assert schools.loc["0002", "verdict"] == "too_small"
    assert schools.loc["0002", ["n_current", "n_reference"]].tolist() == [10, 10]
    assert schools.loc["0009", "verdict"] == "no_reference"
    assert not schools.loc[["0002", "0009"], "flagged"].any()


def test_training_years_leave_out_the_latest_labelled_year():
    labels = pd.DataFrame({"school_year": [2023, 2024, 2025, 2025]})

    assert training_years(labels) == [2023, 2024]
    assert training_years(labels[labels["school_year"] == 2025]) == [2025]
    with pytest.raises(ValueError, match="no school year has outcomes"):
        training_years(labels.iloc[0:0])


def test_reference_checkpoint_of_checkpoint_and_ad_hoc_dates():
    checkpoints = ["10-01", "12-01", "02-01", "04-01"]

    assert reference_checkpoint("02-01", checkpoints) == "02-01"
    assert reference_checkpoint("03-15", checkpoints) == "02-01"
    assert reference_checkpoint("01-10", checkpoints) == "12-01"
    assert reference_checkpoint("09-10", checkpoints) == "10-01"


def test_calibration_compares_mean_risk_with_the_observed_rate():
    predictions = pd.DataFrame(
        {
            "student_id": ["a", "b", "c", "d", "a", "b", "c", "d"],
            "school_year": [2025] * 8,
            "checkpoint": ["10-01"] * 4 + ["02-01"] * 4,
            "kpi": ["chronic_absence"] * 8,
            "risk": [0.1, 0.2, 0.6, 0.7, 0.05, 0.5, 0.4, 0.9],
        }
    )
    labels = pd.DataFrame(
        {
            "student_id": ["a", "b", "c", "d"],
            "school_year": [2025] * 4,
            "kpi": ["chronic_absence"] * 4,
            "missed": [False, True, False, True],
        }
    )

    calibration = calibration_over_time(predictions, labels)
    auc = auc_by_year(predictions, labels)

    assert calibration["checkpoint"].tolist() == ["10-01", "02-01"]
    assert calibration["predicted_rate"].tolist() == pytest.approx([0.4, 0.4625])
    assert calibration["observed_rate"].tolist() == [0.5, 0.5]
    # 10-01: positives 0.2, 0.7 against negatives 0.1, 0.6: 3 of 4 pairs ordered;
    # 02-01: positives 0.5, 0.9 above negatives 0.05, 0.4: all 4.
    assert calibration["auc"].tolist() == [0.75, 1.0]
    assert auc["n_students"].tolist() == [8]


@pytest.fixture(scope="module")
def monitored(synthetic_district):
    config, students = synthetic_district
    return config, students, monitor_drift(config)


@pytest.mark.slow
def test_monitor_writes_report_json_and_mlflow_run_without_alert(monitored):
    config, students, summary = monitored
    document = json.loads(summary.json_path.read_text(encoding="utf-8"))
    html = summary.report.read_text(encoding="utf-8")

    assert not summary.alert and document["alert"] is False
    assert summary.reference_years == [2024] and summary.checkpoint == "02-01"
    assert summary.n_current == summary.n_reference == len(students)
    assert summary.schools_too_small == ["0004"]
    assert summary.report.name == "drift.html" and "OnTrack drift report" in html
    assert {c["column"] for c in document["columns"]} >= {"attendance_rate", "gender"}
    assert document["drift_share"] == round(summary.n_drifted / summary.n_judged, 4)
    for student_id in students["student_id"].head(50):
        assert (
            student_id not in html and student_id not in summary.json_path.read_text()
        )

    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=config.mlflow_uri).get_run(summary.run_id)
    assert run.data.metrics["drift_share"] == pytest.approx(document["drift_share"])
    assert run.data.metrics["alert"] == 0.0


@pytest.mark.slow
def test_monitor_command_exits_3_on_a_shifted_district(tmp_path, state_writer):
    config, _ = state_writer(tmp_path, seed=11, shift=0.15, alert_share=0.25)

    result = CliRunner().invoke(
        app, ["monitor", "--config", str(tmp_path / "district.toml")]
    )

    assert result.exit_code == 3, result.output
    assert "ALERT" in result.output
    assert config.state_dir.joinpath("reports", "drift.json").is_file()


@pytest.mark.slow
def test_one_school_year_is_not_judged_rather_than_called_free_of_drift(
    tmp_path, state_writer
):
    # Shifted enough to alert against 2025; but with outcomes for the current year
    # only (labels of 2026), the reference is 2026 itself.
    config, _ = state_writer(tmp_path, seed=11, shift=0.15, alert_share=0.25)
    path = config.state_dir / "snapshots" / "kpi_labels.parquet"
    labels = pd.read_parquet(path)
    labels[labels["school_year"] == 2025].assign(school_year=2026).to_parquet(path)

    summary = monitor_drift(config)
    document = json.loads(summary.json_path.read_text(encoding="utf-8"))

    assert summary.reference_years == [2026]
    assert not summary.judged and not summary.alert
    assert summary.schools_flagged == []
    assert summary.describe().splitlines()[0] == (
        "drift as of 2026-02-01 (checkpoint 02-01) against school year(s) 2026: "
        "not judged: no earlier school year to compare with"
    )
    assert (document["drift_judged"], document["alert"]) == (False, False)
    assert document["drift_not_judged_reason"] == (
        "not judged: no earlier school year to compare with"
    )
    assert "Drift not judged: no earlier school year to compare with." in (
        summary.report.read_text(encoding="utf-8")
    )
