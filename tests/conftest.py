"""Shared test set-up: a clean environment, so no developer shell changes results."""

import pytest

import ontrack  # noqa: F401  (telemetry off for every test)

_LEAKY_VARIABLES = ("ONTRACK_CONFIG", "MLFLOW_TRACKING_URI", "BENTOML_HOME")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in _LEAKY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
