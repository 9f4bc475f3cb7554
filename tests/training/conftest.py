"""Session fixtures: one small synthetic district, trained once, scored once."""

from __future__ import annotations

import pandas as pd
import pytest
from training_district import PROTECTED, SEED, make_district

from training._catalog import feature_catalog, model_inputs
from training._training import TrainingSettings, train_kpi


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
