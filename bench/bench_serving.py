"""Latency and throughput of the prediction service on loopback, against its floor.

Starts ``bentoml serve`` for a district that has been through ``ontrack demo`` (its
champions registered, its snapshot scored), then for each batch size (students per
request) and each concurrency (requests in flight) it sends ``POST /score`` for
``--seconds`` and reports p50 and p99 latency, requests and students per second and
the error count (anything but HTTP 200; it must be zero). Each batch size is also
timed in process, calling the very scoring code the service runs on records already
validated (the floor: no HTTP, no JSON); the ratio says what serving adds.

The load generator is a small asyncio client (httpx) in this process, on the same
machine: on 2 cores it competes with the server for CPU, so the figures are a floor
for the service rather than its ceiling. Request bodies are serialised before the
clock starts.

Usage::

    .venv/bin/ontrack demo --config /tmp/district/demo.toml --students 3000 \\
        --schools 8 --years 3
    .venv/bin/python bench/bench_serving.py --config /tmp/district/demo.toml \\
        [--seconds 60] [--batch 1 1000] [--concurrency 1 8 32] [--kpi KPI]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

import ontrack  # noqa: F401  (telemetry off before BentoML or MLflow load)
from ontrack.config import load_config
from serving import server_command

TOKEN = "demo-dashboard"
READY_SECONDS = 180
WARM_UP_REQUESTS = 5
console = Console(width=110)


def snapshot_records(state_dir: Path, n: int) -> list[dict]:
    """``n`` student snapshot rows (repeated if the district is smaller), as JSON."""
    snapshots = pd.read_parquet(state_dir / "snapshots" / "student_snapshots.parquet")
    dates = pd.to_datetime(snapshots["as_of_date"])
    rows = snapshots[dates == dates.max()].sort_values("student_id")
    rows = rows.iloc[np.arange(n) % len(rows)]
    records = json.loads(rows.to_json(orient="records", date_format="iso"))
    for record in records:
        record["as_of_date"] = record["as_of_date"][:10]
    return records


def request_bodies(records: list[dict], batch: int, kpi: str | None) -> list[bytes]:
    """Bodies of ``batch`` records each, rotating through the students."""
    count = max(1, min(200, len(records) // batch))
    bodies = []
    for start in range(count):
        body = {"records": records[start * batch : (start + 1) * batch]}
        if kpi:
            body["kpi"] = kpi
        bodies.append(json.dumps(body).encode())
    return bodies


def percentiles(latencies: list[float]) -> dict[str, float]:
    values = np.asarray(latencies) * 1000
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
    }


def floor(config, records: list[dict], batch: int, kpi, seconds: float) -> dict:
    """The same scoring code in process, one call after another."""
    from serving._app import OnTrackApp
    from serving._service import StudentRecord, _load_champions

    app = OnTrackApp(config, _load_champions)
    validated = [StudentRecord.model_validate_json(json.dumps(r)) for r in records]
    batches = [
        validated[start : start + batch]
        for start in range(0, len(validated) - batch + 1, batch)
    ][:200]
    authorization = f"Bearer {TOKEN}"
    for chunk in batches[:WARM_UP_REQUESTS]:
        app.score(authorization, chunk, kpi)
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        chunk = batches[len(latencies) % len(batches)]
        started = time.perf_counter()
        app.score(authorization, chunk, kpi)
        latencies.append(time.perf_counter() - started)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / sum(latencies),
        **percentiles(latencies),
    }


async def load(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    """``concurrency`` clients posting bodies back to back for ``seconds``."""
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=32)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=120
    ) as client:
        for body in bodies[:WARM_UP_REQUESTS]:
            await client.post("/score", content=body)
        deadline = time.perf_counter() + seconds
        started_all = time.perf_counter()

        async def worker(offset: int) -> None:
            sent = offset
            while time.perf_counter() < deadline:
                body = bodies[sent % len(bodies)]
                sent += concurrency
                started = time.perf_counter()
                try:
                    response = await client.post("/score", content=body)
                    status = str(response.status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                latencies.append(time.perf_counter() - started)
                if status != "200":
                    errors[status] = errors.get(status, 0) + 1

        await asyncio.gather(*(worker(offset) for offset in range(concurrency)))
        elapsed = time.perf_counter() - started_all
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        **percentiles(latencies),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(config, port: int, log_path: Path) -> subprocess.Popen:
    command, env = server_command(config, port)
    log = log_path.open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode}; see {log_path}")
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if ready.status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    sys.exit(f"the server was not ready within {READY_SECONDS} s; see {log_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=60.0, help="Per cell.")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 1000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--kpi", help="Score one KPI only (default: every KPI).")
    parser.add_argument("--port", type=int, default=0, help="Default: a free port.")
    parser.add_argument("--out", type=Path, default=Path("bench/out/serving.json"))
    args = parser.parse_args()

    config = load_config(args.config)
    records = snapshot_records(config.state_dir, max(args.batch) * 5)
    results = {"floor": {}, "served": []}
    floor_seconds = min(args.seconds, 20.0)
    for batch in args.batch:
        results["floor"][batch] = floor(config, records, batch, args.kpi, floor_seconds)
        base = results["floor"][batch]
        console.print(
            f"in process, {batch} students: p50 {base['p50_ms']:.1f} ms, "
            f"p99 {base['p99_ms']:.1f} ms"
        )

    port = args.port or free_port()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    server = start_server(config, port, args.out.with_suffix(".server.log"))
    try:
        for batch in args.batch:
            bodies = request_bodies(records, batch, args.kpi)
            for concurrency in args.concurrency:
                cell = asyncio.run(
                    load(f"http://127.0.0.1:{port}", bodies, concurrency, args.seconds)
                )
                cell.update(batch=batch, concurrency=concurrency)
                results["served"].append(cell)
                console.print(
                    f"served, {batch} students, {concurrency} in flight: "
                    f"{cell['rps']:.1f} req/s, p50 {cell['p50_ms']:.1f} ms, "
                    f"p99 {cell['p99_ms']:.1f} ms, errors {cell['errors']}"
                )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    table = Table(
        title=f"POST /score on 127.0.0.1, {args.seconds:g} s per cell "
        f"({args.kpi or 'every KPI'})"
    )
    for column in (
        "students",
        "in flight",
        "requests",
        "req/s",
        "students/s",
        "p50 ms",
        "p99 ms",
        "p50 / floor",
        "errors",
    ):
        table.add_column(column, justify="right")
    for cell in results["served"]:
        base = results["floor"][cell["batch"]]
        table.add_row(
            str(cell["batch"]),
            str(cell["concurrency"]),
            str(cell["requests"]),
            f"{cell['rps']:.1f}",
            f"{cell['rps'] * cell['batch']:.0f}",
            f"{cell['p50_ms']:.1f}",
            f"{cell['p99_ms']:.1f}",
            f"{cell['p50_ms'] / base['p50_ms']:.2f}",
            str(cell["errors"]),
        )
    for batch, base in results["floor"].items():
        table.add_row(
            str(batch),
            "in process",
            str(base["requests"]),
            f"{base['rps']:.1f}",
            f"{base['rps'] * batch:.0f}",
            f"{base['p50_ms']:.1f}",
            f"{base['p99_ms']:.1f}",
            "1.00",
            "-",
        )
    console.print(table)
    args.out.write_text(json.dumps(results, indent=2))
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
