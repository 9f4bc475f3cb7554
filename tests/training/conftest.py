"""Session fixtures: one small synthetic district, trained once, scored once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from training_district import make_district

from ontrack.config import DistrictConfig, load_config
from training._catalog import feature_catalog, model_inputs
from training._training import TrainingSettings, train_kpi

DEMO_CONFIG = Path(__file__).parents[2] / "configs" / "demo.toml"
PROTECTED = (
    "race_ethnicity",
    "gender",
    "disability",
    "english_learner",
    "economically_disadvantaged",
)
SEED = 42


def make_config(folder: Path, kpis: tuple[str, ...] | None = None) -> DistrictConfig:
    """The demo config with its state and MLflow store inside ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    text = text.replace('state_dir = "../state"', 'state_dir = "state"')
    text = text.replace('mlruns_dir = "../mlruns"', 'mlruns_dir = "mlruns"')
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


@pytest.fixture(scope="session")
def district() -> dict[str, pd.DataFrame]:
    return make_district(n_students=600, n_schools=5, seed=7)


@pytest.fixture(scope="session")
def settings() -> TrainingSettings:
    return TrainingSettings(
        seed=SEED,
        n_jobs=1,
        school_year_start="08-01",
        protected_attributes=PROTECTED,
        use_protected=False,
        min_n=10,
    )


@pytest.fixture(scope="session")
def inputs(district):
    columns = list(district["student_snapshots"].columns)
    return model_inputs(feature_catalog(), columns, False, list(PROTECTED))


@pytest.fixture(scope="session")
def chronic(district, inputs, settings):
    """The chronic-absence model trained and evaluated once per session."""
    return train_kpi(
        "chronic_absence",
        district["student_snapshots"],
        district["school_snapshots"],
        district["kpi_labels"],
        inputs,
        settings,
    )
