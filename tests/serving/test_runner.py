"""The `bentoml serve` command line: loopback only, telemetry off, the same config."""

from __future__ import annotations

import stat

import pytest
from conftest import DEMO_CONFIG, district_config

from ontrack.config import ConfigError, DistrictConfig
from serving import server_command
from serving._runner import config_from_environment


def test_the_server_listens_on_loopback_only_with_bentoml_home_in_the_state(tmp_path):
    config = district_config(tmp_path)
    command, env = server_command(config, 3917)
    assert command[1:] == [
        "-m",
        "bentoml",
        "serve",
        "serving._service:OnTrackService",
        "--host",
        "127.0.0.1",
        "--port",
        "3917",
        "--working-dir",
        command[-1],
    ]
    assert env["BENTOML_HOME"] == str(tmp_path / "state" / "bentoml")
    for name in ("DO_NOT_TRACK", "BENTOML_DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY"):
        assert env[name] == "true"


def test_the_service_reads_back_exactly_the_config_it_was_started_with(
    tmp_path, monkeypatch
):
    config = district_config(tmp_path, max_records=17)
    _, env = server_command(config, 3917)
    snapshot = env["ONTRACK_SERVING_CONFIG"]
    # It holds the token digests: readable by its owner only.
    assert (
        stat.S_IMODE(
            (tmp_path / "state" / "bentoml" / "ontrack-config.json").stat().st_mode
        )
        == 0o600
    )
    monkeypatch.setenv("ONTRACK_SERVING_CONFIG", snapshot)
    assert config_from_environment() == config
    assert isinstance(config_from_environment(), DistrictConfig)


def test_by_hand_the_service_reads_the_toml_file_named_in_ontrack_config(monkeypatch):
    monkeypatch.setenv("ONTRACK_CONFIG", str(DEMO_CONFIG))
    assert config_from_environment().district.name == (
        "OnTrack Demo Unified School District"
    )


def test_without_a_config_the_service_says_which_variable_to_set(monkeypatch):
    monkeypatch.delenv("ONTRACK_SERVING_CONFIG", raising=False)
    with pytest.raises(ConfigError) as caught:
        config_from_environment()
    assert str(caught.value) == (
        "the service needs a district config: set ONTRACK_CONFIG to a TOML file (or "
        "start it with `ontrack serve`, which sets ONTRACK_SERVING_CONFIG)"
    )


def test_a_port_in_use_is_refused_before_bentoml_starts(tmp_path, monkeypatch):
    import errno
    import socket

    import serving._runner as runner

    def no_server(*args, **kwargs):
        raise AssertionError("bentoml serve must not start on a port in use")

    monkeypatch.setattr(runner.subprocess, "Popen", no_server)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(OSError) as caught:
            runner.run_server(district_config(tmp_path), port=port)

    assert caught.value.errno == errno.EADDRINUSE
    assert caught.value.strerror == f"port {port} on 127.0.0.1 is in use; pass --port"
