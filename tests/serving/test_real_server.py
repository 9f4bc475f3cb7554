"""`ontrack serve` for real: a BentoML server process, called over loopback HTTP.

One server is started for the module with the trained demo district, waited for
until ready, called (endpoints, ``/metrics``, the OpenAPI document, and a
schemathesis run over every operation that must find no 500) and stopped by its
process id with SIGTERM, which ``run_server`` passes on to BentoML.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from conftest import COUNSELOR, DASHBOARD, LEADER, snapshot_records
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

pytestmark = pytest.mark.slow

READY_SECONDS = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"server not ready within {READY_SECONDS} s")


@pytest.fixture(scope="module")
def server(trained_district):
    """The base URL of a running ``ontrack serve``; stopped by pid afterwards."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    ontrack = Path(sys.executable).with_name("ontrack")
    config_file = trained_district.base_dir / "district.toml"
    log = (trained_district.base_dir / "serve.log").open("w")
    process = subprocess.Popen(
        [ontrack, "serve", "--config", config_file, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "ONTRACK_CONFIG": ""},
    )
    try:
        _wait_ready(url, process)
        yield {"url": url, "process": process, "port": port}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def test_the_real_server_scores_lists_and_reports_metrics(server, trained_district):
    url = server["url"]
    records = snapshot_records(trained_district, 5)
    score = httpx.post(
        f"{url}/score", json={"records": records}, headers=DASHBOARD, timeout=30
    )
    assert score.status_code == 200
    assert [kpi["model_version"] for kpi in score.json()["kpis"]] == ["1", "1"]
    school_id = records[0]["school_id"]
    listing = httpx.post(
        f"{url}/at_risk",
        json={"school_id": school_id, "kpi": "chronic_absence", "top_k": 3},
        headers=LEADER if school_id not in ("0001", "0002") else COUNSELOR,
        timeout=30,
    )
    assert listing.status_code == 200
    assert listing.json()["n_students"] == 3
    refused = httpx.post(f"{url}/score", json={"records": records}, timeout=30)
    assert refused.status_code == 401
    bad = httpx.post(
        f"{url}/score",
        content=b'{"records": [{"as_of_date": "2025-02-01", "tardies": NaN}]}',
        headers={**DASHBOARD, "content-type": "application/json"},
        timeout=30,
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "records.0.tardies: Input should be a finite number"

    metrics = httpx.get(f"{url}/metrics", timeout=30)
    assert metrics.status_code == 200
    score_requests = [
        line
        for line in metrics.text.splitlines()
        if line.startswith("bentoml_service_request_total")
        and 'endpoint="/score"' in line
    ]
    counts = {
        ('http_response_code="200"' in line): float(line.rsplit(" ", 1)[1])
        for line in score_requests
    }
    assert counts[True] >= 1
    assert httpx.get(f"{url}/livez", timeout=30).status_code == 200
    document = httpx.get(f"{url}/docs.json", timeout=30).json()
    assert "/score" in document["paths"]
    page = httpx.get(f"{url}/public/", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    published = trained_district.state_dir / "public" / "index.html"
    assert page.text == published.read_text()


def _fuzz(operation, mode: GenerationMode, url: str) -> list[int]:
    """Call one operation with generated requests; the statuses it answered."""
    statuses = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case):
        response = case.call(base_url=url, headers=LEADER, timeout=60)
        statuses.append(response.status_code)
        assert response.status_code < 500, (
            f"{operation.label}: {response.status_code} {response.text[:300]}"
        )

    try:
        call()
    except Unsatisfiable:
        # An operation without a body (reload, public_indicators) has no invalid
        # request to generate.
        if mode is GenerationMode.POSITIVE:
            raise
    return statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error(server, mode):
    """Valid and schema-breaking requests to every operation: never a 5xx."""
    schema = schemathesis.openapi.from_url(f"{server['url']}/docs.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {operation.path for operation in operations} >= {
        "/score",
        "/explain",
        "/at_risk",
        "/school_risk",
        "/public_indicators",
        "/reload",
    }
    called = {
        operation.path
        for operation in operations
        if _fuzz(operation, mode, server["url"])
    }
    assert called >= {"/score", "/explain", "/at_risk", "/school_risk"}


def test_sigterm_to_ontrack_serve_stops_the_server(server):
    # Runs last in this module: stops the shared server by its process id.
    process = server["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server['url']}/livez", timeout=2)
