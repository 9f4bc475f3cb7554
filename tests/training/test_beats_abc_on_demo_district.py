"""The models on the demo generator's district: the chain users run, small, seeded."""

from __future__ import annotations

import pandas as pd
import pytest
from training_district import PROTECTED, make_config

from features import build_snapshots, generate_demo_district, ingest_district
from training._catalog import feature_catalog, model_inputs
from training._training import TrainingSettings, train_kpi

KPIS = (
    "chronic_absence",
    "course_failure",
    "not_proficient_ela",
    "not_proficient_math",
)


@pytest.fixture(scope="module")
def demo_snapshots(tmp_path_factory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("demo")
    config = make_config(folder)
    generate_demo_district(
        folder / "export", n_students=800, n_schools=4, n_years=3, seed=42
    )
    ingest_district(config, folder / "export")
    build_snapshots(config)
    snapshots = config.state_dir / "snapshots"
    tables = {
        table: pd.read_parquet(snapshots / f"{table}.parquet")
        for table in ("student_snapshots", "school_snapshots", "kpi_labels")
    }
    for table in tables.values():
        if "as_of_date" in table:
            table["as_of_date"] = pd.to_datetime(table["as_of_date"])
    return tables


@pytest.mark.slow
@pytest.mark.parametrize("kpi", KPIS)
def test_model_beats_the_abc_flags_at_the_same_number_flagged(demo_snapshots, kpi):
    students = demo_snapshots["student_snapshots"]
    settings = TrainingSettings(
        seed=42,
        n_jobs=1,
        school_year_start="08-01",
        protected_attributes=PROTECTED,
        use_protected=False,
        min_n=10,
    )
    inputs = model_inputs(feature_catalog(), list(students.columns), False, [])

    result = train_kpi(
        kpi,
        students,
        demo_snapshots["school_snapshots"],
        demo_snapshots["kpi_labels"],
        inputs,
        settings,
    )

    pooled = result.abc.set_index("checkpoint").loc["all"]
    assert result.split.temporal
    assert pooled["n_flagged"] > 0
    assert pooled["model_precision"] > pooled["abc_precision"]
