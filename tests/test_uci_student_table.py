"""The flat-table path on real data: the UCI Portuguese course table, end to end.

``ontrack ingest --format student-table`` (through the command line) -> train ->
score -> monitor -> publish run once, in process, on ``student-por.csv`` with the
shipped ``configs/uci-portuguese.toml`` and its mapping (early-warning setting: no
G1, G2), its ``[paths]`` moved into a temporary folder; then one student is
explained in process through the service's own app. 649 students of two schools,
100 of whom failed (G3 below 10), one school year (2005-06) and no events.

Data: P. Cortez and A. Silva, "Using Data Mining to Predict Secondary School Student
Performance", FUBUTEC 2008, pp. 5-12; UCI Machine Learning Repository, data set 320
(CC BY 4.0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from config_copies import config_in
from typer.testing import CliRunner

from features import feature_catalog_for
from monitoring import monitor_drift, publish_indicators
from ontrack.cli import app
from ontrack.config import DistrictConfig, Token, load_config
from training import score_students, train_models

REPO = Path(__file__).resolve().parents[1]
UCI = REPO.parent / "shared" / "data" / "uci-student-performance"
TABLE = UCI / "student-por.csv"
CONFIG = REPO / "configs" / "uci-portuguese.toml"
MAPPING = REPO / "configs" / "uci-portuguese.mapping.toml"
# sha256 of "uci-leader", the config's public token.
LEADER = "Bearer uci-leader"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not UCI.is_dir(), reason=f"reference data not at {UCI}"),
    # MLflow 3.17's sqlite store uses SQLAlchemy's deprecated ``noload`` strategy,
    # and log_model warns about ``Any`` hints of MLflow's own agent types: both
    # MLflow's to update (the training and monitoring tests allow them too).
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType"),
]


@dataclass(frozen=True)
class Run:
    config: DistrictConfig
    ingest_output: str
    summaries: dict[str, Any]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    folder = tmp_path_factory.mktemp("uci-portuguese")
    config_path = config_in(CONFIG, folder)
    ingest = CliRunner().invoke(
        app,
        [
            "ingest",
            "--format",
            "student-table",
            str(TABLE),
            "--mapping",
            str(MAPPING),
            "-c",
            str(config_path),
        ],
    )
    assert ingest.exit_code == 0, ingest.output
    config = load_config(config_path)
    summaries: dict[str, Any] = {"train": train_models(config)}
    summaries["score"] = score_students(config)
    summaries["monitor"] = monitor_drift(config)
    summaries["publish"] = publish_indicators(config)
    return Run(config, ingest.output, summaries)


def _snapshots(run: Run, name: str) -> pd.DataFrame:
    return pd.read_parquet(run.config.state_dir / "snapshots" / f"{name}.parquet")


def test_ingest_writes_one_snapshot_per_student_without_later_grades(run):
    assert "649 rows read, 649 students kept, 0 quarantined" in run.ingest_output
    assert "course_failure: 100 of 649 students missed the standard" in (
        run.ingest_output
    )
    students = _snapshots(run, "student_snapshots")
    assert len(students) == students["student_id"].nunique() == 649
    assert set(students["as_of_date"].astype(str)) == {"2005-10-01"}
    for column in ("G1", "G2", "G3", "sex", "school"):
        assert column not in students
    catalog = feature_catalog_for(run.config.state_dir)
    inputs = [name for name, feature in catalog.items() if not feature.protected]
    assert len(inputs) == 28
    assert (catalog["failures"].domain, catalog["failures"].kind) == (
        "course_performance",
        "count",
    )
    assert (catalog["Mjob"].kind, catalog["higher"].kind) == ("category", "flag")
    schools = _snapshots(run, "school_snapshots")
    assert schools.set_index("school_id")["enrollment"].to_dict() == {
        "GP": 423,
        "MS": 226,
    }


def test_training_reads_the_tables_inputs_and_beats_the_school_baseline(run):
    summary = run.summaries["train"]
    assert summary.split.startswith("only school year 2006 has labels")
    (kpi,) = summary.kpis
    # Above the school-level model and far above the base rate (15.4%), which is
    # what a score ranking nobody (the ABC flags here) gets as PR AUC.
    assert kpi.pr_auc > kpi.baseline_pr_auc["school_only"]
    assert kpi.pr_auc > 2 * kpi.baseline_pr_auc["abc_flags"]
    assert "the ABC flags flag nobody in the holdout" in summary.describe()
    report = json.loads(summary.json_path.read_text(encoding="utf-8"))
    catalog = feature_catalog_for(run.config.state_dir)
    assert report["kpis"]["course_failure"]["features"] == [
        *(name for name, feature in catalog.items() if not feature.protected),
        "days_into_year",
    ]


def test_scores_and_drivers_are_the_tables_own_in_plain_words(run):
    scored = pd.read_parquet(run.summaries["score"].scored_path)
    assert len(scored) == 649
    assert scored["tier"].value_counts().sum() == 649
    catalog = feature_catalog_for(run.config.state_dir)
    drivers = pd.concat(
        [
            scored[["student_id", f"driver_{slot}_feature", f"driver_{slot}"]].set_axis(
                ["student_id", "feature", "text"], axis=1
            )
            for slot in (1, 2, 3)
        ]
    )
    drivers = drivers[drivers["feature"] != ""]
    assert set(drivers["feature"]) <= {
        name for name, feature in catalog.items() if not feature.protected
    }
    # A category driver names the student's category (e.g. "R" for rural), not
    # its code.
    students = _snapshots(run, "student_snapshots").set_index("student_id")
    categories = drivers[
        drivers["feature"].map(lambda name: catalog[name].kind == "category")
    ]
    assert len(categories) > 0
    expected = [
        catalog[feature].describe(students.at[student_id, feature])
        for student_id, feature in zip(
            categories["student_id"], categories["feature"], strict=True
        )
    ]
    assert categories["text"].tolist() == expected
    assert "gender" in scored and "gender" not in set(drivers["feature"])


def test_explain_one_student_in_process_adds_up_to_the_scored_risk(run):
    from serving._app import OnTrackApp
    from serving._schemas import record_model
    from training import load_champions

    config = run.config.model_copy(
        update={
            "serving": run.config.serving.model_copy(
                update={
                    "tokens": [
                        Token(
                            name="uci-leader",
                            role="leader",
                            sha256=run.config.serving.tokens[0].sha256,
                        )
                    ]
                }
            )
        }
    )
    record_type = record_model(feature_catalog_for(config.state_dir))
    students = _snapshots(run, "student_snapshots")
    row = students[students["student_id"] == "por-149"].iloc[0].to_dict()
    record = record_type(**{k: (None if pd.isna(v) else v) for k, v in row.items()})
    service = OnTrackApp(config, lambda c: load_champions(c, n_jobs=1))

    (explanation,) = service.explain(LEADER, record, None).kpis
    contributions = sum(item.contribution for item in explanation.by_feature)
    assert explanation.base_value + contributions == pytest.approx(
        explanation.margin, abs=1e-9
    )
    scored = pd.read_parquet(run.summaries["score"].scored_path)
    assert explanation.risk == pytest.approx(
        scored.set_index("student_id").at["por-149", "risk"], abs=1e-12
    )
    assert np.isfinite(explanation.margin)


def test_a_table_compared_with_itself_does_not_drift(run):
    summary = run.summaries["monitor"]
    # One school year: the reference is the training year, the same 649 rows.
    assert (summary.n_current, summary.n_reference) == (649, 649)
    assert summary.n_drifted == 0 and not summary.alert


def test_the_public_page_counts_groups_and_holds_no_student(run):
    summary = run.summaries["publish"]
    indicators = pd.read_csv(summary.csv_path, dtype={"school_id": str})
    district = indicators[indicators["school_id"] == "district"]
    sizes = district.set_index("group")["n_size"].to_dict()
    assert sizes == {"all": 649, "female": 383, "male": 266}
    for path in (summary.page, summary.json_path, summary.csv_path):
        assert "por-" not in path.read_text(encoding="utf-8")
