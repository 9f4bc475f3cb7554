"""Start ``bentoml serve`` for the district, and find the config again inside it.

``run_server`` runs BentoML in a child process on 127.0.0.1 only. The child must see
the very config the command line validated, so the runner writes it as JSON into the
BentoML home (``<state>/bentoml/ontrack-config.json``) and names that file in
``ONTRACK_SERVING_CONFIG``; the service reads it back at start-up. Run by hand,
``ONTRACK_CONFIG=configs/demo.toml bentoml serve serving._service:OnTrackService``
reads the TOML file instead.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from ontrack.config import ConfigError, DistrictConfig, load_config

logger = logging.getLogger(__name__)

SERVICE_IMPORT = "serving._service:OnTrackService"
CONFIG_SNAPSHOT_ENV = "ONTRACK_SERVING_CONFIG"
CONFIG_FILE_ENV = "ONTRACK_CONFIG"
WORKERS_ENV = "ONTRACK_SERVING_WORKERS"
HOST = "127.0.0.1"
# Student data systems must not phone home; the child gets these whatever the
# parent's environment says.
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
_STOP_SECONDS = 10


def bentoml_home(config: DistrictConfig) -> Path:
    """``<state>/bentoml``: BentoML's own store, kept with the district's state."""
    return config.state_dir / "bentoml"


def server_command(
    config: DistrictConfig, port: int
) -> tuple[list[str], dict[str, str]]:
    """The ``bentoml serve`` command line and environment for ``config``.

    Writes the config snapshot the service will read (readable by its owner only:
    it holds the token digests).
    """
    home = bentoml_home(config)
    home.mkdir(parents=True, exist_ok=True)
    snapshot = home / "ontrack-config.json"
    snapshot.write_text(config.model_dump_json(indent=2), encoding="utf-8")
    snapshot.chmod(0o600)
    env = dict(os.environ)
    env.update(TELEMETRY_OFF)
    env["BENTOML_HOME"] = str(home)
    env[CONFIG_SNAPSHOT_ENV] = str(snapshot)
    project_root = Path(__file__).resolve().parents[1]
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        SERVICE_IMPORT,
        "--host",
        HOST,
        "--port",
        str(port),
        "--working-dir",
        str(project_root),
    ]
    return command, env


def run_server(config: DistrictConfig, port: int = 3000) -> None:
    """Serve the district's champion models on ``127.0.0.1:port`` until stopped.

    Blocks while the BentoML server runs. Ctrl-C or SIGTERM stop the server (and
    its workers) before returning.

    Raises
    ------
    OSError
        With ``errno.EADDRINUSE``: the port is taken, so BentoML is not started.
    RuntimeError
        The server exited on its own with a non-zero code (a service that failed
        to start: its log says why).
    """
    check_port_free(port)
    command, env = server_command(config, port)
    process = subprocess.Popen(command, env=env)
    logger.info(
        "serving %s on http://%s:%s (pid %s, BENTOML_HOME %s)",
        config.district.name,
        HOST,
        port,
        process.pid,
        env["BENTOML_HOME"],
    )
    previous = _forward_sigterm(process)
    interrupted = False
    try:
        code = process.wait()
    except KeyboardInterrupt:
        interrupted = True
        code = _stop(process)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    logger.info("server pid %s stopped with code %s", process.pid, code)
    if code and not interrupted and not _stopped_by_signal(code):
        raise RuntimeError(
            f"bentoml serve {SERVICE_IMPORT} exited with code {code}; "
            "its log above says why"
        )


def check_port_free(port: int) -> None:
    """Raise ``OSError(EADDRINUSE)`` when ``HOST:port`` cannot be listened on.

    Checked before BentoML starts, whose child would otherwise fail with a
    traceback of its own. Another program can still take the port in the moment
    between this check and BentoML's bind; that rare case keeps BentoML's error.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers do: a port a stopped server left in TIME_WAIT is free; only a
        # socket still bound to it counts as in use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise OSError(
                errno.EADDRINUSE, f"port {port} on {HOST} is in use; pass --port"
            ) from None


def _forward_sigterm(process: subprocess.Popen):
    """Pass SIGTERM on to the child, so stopping ``ontrack serve`` stops the server.

    Returns the handler it replaced, or None off the main thread (where Python
    allows no signal handlers and nothing is forwarded).
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def forward(signum, frame):
        process.send_signal(signal.SIGTERM)

    return signal.signal(signal.SIGTERM, forward)


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        logger.warning("server pid %s ignored SIGTERM; killing it", process.pid)
        process.kill()
        return process.wait()


def _stopped_by_signal(code: int) -> bool:
    return code in (-signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGTERM)


def config_from_environment() -> DistrictConfig:
    """The config the service runs with: the runner's snapshot, else a TOML file.

    Raises
    ------
    ConfigError
        Neither ``ONTRACK_SERVING_CONFIG`` nor ``ONTRACK_CONFIG`` is set, or the
        file they name is not a valid config.
    """
    snapshot = os.environ.get(CONFIG_SNAPSHOT_ENV)
    if snapshot:
        try:
            text = Path(snapshot).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                f"{CONFIG_SNAPSHOT_ENV}={snapshot}: no such config snapshot"
            ) from None
        return DistrictConfig.model_validate_json(text)
    path = os.environ.get(CONFIG_FILE_ENV)
    if path:
        return load_config(Path(path))
    raise ConfigError(
        f"the service needs a district config: set {CONFIG_FILE_ENV} to a TOML file "
        f"(or start it with `ontrack serve`, which sets {CONFIG_SNAPSHOT_ENV})"
    )
