"""A district whose state folder holds small scored files written by hand.

The files follow docs/CONTRACTS.md column for column, so the list, projection and
public endpoints are tested without training a model; scoring and explaining use the
real champions (see ``test_scoring.py``).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from ontrack.config import DistrictConfig, Paths, load_config

with warnings.catch_warnings():
    # Starlette warns at import that its TestClient will move from httpx to httpx2;
    # the client works as documented and the move is not ours to make.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    # BentoML 1.4.40, at import, builds its ignore-file patterns in pathspec's
    # deprecated 'gitwildmatch' style and calls a pydantic hook deprecated since
    # 2.11; both are BentoML's to update, and neither changes what we test.
    warnings.filterwarnings("ignore", "GitWildMatchPattern", DeprecationWarning)
    warnings.filterwarnings(
        "ignore", category=DeprecationWarning, module="_bentoml_sdk"
    )
    from starlette.testclient import TestClient

    from serving._service import OnTrackService

# Library warnings raised while the service runs; test modules that call it set
# ``pytestmark = LIBRARY_WARNINGS``.
LIBRARY_WARNINGS = [
    # BentoML 1.4.40 reads ``model_fields`` off a model instance on every request,
    # which pydantic 2.11 deprecates; BentoML's to update.
    pytest.mark.filterwarnings(
        "ignore:Accessing the 'model_fields' attribute on the instance"
        ":DeprecationWarning"
    ),
    # MLflow 3.17's sqlite store maps a relationship with SQLAlchemy's deprecated
    # ``noload`` strategy when it is first imported; MLflow's to update.
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]
DEMO_CONFIG = Path(__file__).parents[2] / "configs" / "demo.toml"
LEADER = {"authorization": "Bearer demo-leader"}
COUNSELOR = {"authorization": "Bearer demo-counselor"}  # schools 0001 and 0002
DASHBOARD = {"authorization": "Bearer demo-dashboard"}


def district_config(root: Path, **serving) -> DistrictConfig:
    """The demo config with its state and MLflow store under ``root``."""
    config = load_config(DEMO_CONFIG)
    update = {"paths": Paths(state_dir=root / "state", mlruns_dir=root / "mlruns")}
    if serving:
        update["serving"] = config.serving.model_copy(update=serving)
    return config.model_copy(update=update)


def write_config_file(root: Path, n_kpis: int) -> Path:
    """``root/district.toml``: the demo config, state and MLflow store in ``root``.

    Only the first ``n_kpis`` KPIs are kept: training each one takes seconds.
    """
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    text = text.replace('state_dir = "../state"', 'state_dir = "state"')
    text = text.replace('mlruns_dir = "../mlruns"', 'mlruns_dir = "mlruns"')
    head, *kpis = text.split("[[kpis]]")
    rest = kpis[-1].index("[abc]")
    tail, kpis[-1] = kpis[-1][rest:], kpis[-1][:rest]
    text = head + "".join(f"[[kpis]]{block}" for block in kpis[:n_kpis]) + tail
    path = root / "district.toml"
    path.write_text(text, encoding="utf-8")
    assert len(load_config(path).kpis) == n_kpis
    return path


def _scored_rows() -> pd.DataFrame:
    """Two scorings (the later one is served) of five students at three schools."""
    rows = []
    students = [
        ("s01", "0001", 3, 0.81, "high"),
        ("s02", "0001", 4, 0.40, "moderate"),
        ("s03", "0001", 4, 0.40, "moderate"),
        ("s04", "0001", 5, 0.05, "low"),
        ("s05", "0002", 7, 0.66, "high"),
        ("s06", "0003", 9, 0.30, "moderate"),
    ]
    for as_of_date, shift in (("2024-12-01", 0.0), ("2025-02-01", 0.01)):
        for kpi in ("chronic_absence", "course_failure"):
            for student_id, school_id, grade, risk, tier in students:
                row = {
                    "student_id": student_id,
                    "as_of_date": pd.Timestamp(as_of_date),
                    "school_year": 2025,
                    "school_id": school_id,
                    "grade": grade,
                    "kpi": kpi,
                    "risk": risk + shift,
                    "tier": tier,
                    "model_version": "3" if shift else "2",
                    "race_ethnicity": "asian",
                    "gender": "female",
                }
                for slot, (feature, domain, text) in enumerate(
                    [
                        ("attendance_rate", "attendance", "attended 84% of days"),
                        ("incidents", "behaviour", "3 behaviour incidents"),
                    ],
                    start=1,
                ):
                    row[f"driver_{slot}"] = text if tier != "low" else ""
                    row[f"driver_{slot}_feature"] = feature if tier != "low" else ""
                    row[f"driver_{slot}_domain"] = domain if tier != "low" else ""
                row["driver_3"] = row["driver_3_feature"] = row["driver_3_domain"] = ""
                rows.append(row)
    return pd.DataFrame(rows)


PROJECTIONS = pd.DataFrame(
    {
        "school_id": ["0001", "0001", "0002", "district"],
        "kpi": [
            "chronic_absence",
            "course_failure",
            "chronic_absence",
            "chronic_absence",
        ],
        "as_of_date": pd.to_datetime(["2025-02-01"] * 4),
        "n_students": [4, 4, 1, 6],
        "expected_rate": [0.42, 0.42, 0.67, 0.44],
        "rate_low": [0.0, 0.0, 0.0, 0.17],
        "rate_high": [0.75, 0.75, 1.0, 0.67],
        "target": [0.22, 0.15, 0.22, 0.22],
        "p_miss_target": [0.71, 0.8, 0.67, 0.88],
        "observed_rate_so_far": [float("nan"), 0.25, 1.0, 0.5],
    }
)
# Written the way json.dump writes a float NaN: the service must answer null.
INDICATORS_TEXT = (
    '{"kpi": "chronic_absence", "cells": [{"school_id": "district", '
    '"group": "all", "n_size": 6, "rate": 0.5}, {"school_id": "0003", '
    '"group": "all", "n_size": null, "rate": NaN}]}'
)
INDICATORS_CSV = "kpi,school_id,group,n_size,rate\nchronic_absence,district,all,6,0.5\n"
INDEX_HTML = "<!doctype html><title>Progress</title><p>Chronic absence: 50%</p>\n"


@pytest.fixture(scope="session")
def scored_state(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("district")
    state = root / "state"
    (state / "scores").mkdir(parents=True)
    (state / "public").mkdir()
    _scored_rows().to_parquet(state / "scores" / "scored_snapshot.parquet")
    PROJECTIONS.to_parquet(state / "scores" / "school_projections.parquet")
    (state / "public" / "indicators.json").write_text(INDICATORS_TEXT)
    return root


@contextlib.contextmanager
def serve_in_process(config: DistrictConfig, monkeypatch: pytest.MonkeyPatch):
    """A TestClient over the real service for ``config``, started and stopped."""
    snapshot = config.state_dir / "ontrack-config.json"
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.write_text(config.model_dump_json())
    monkeypatch.setenv("ONTRACK_SERVING_CONFIG", str(snapshot))
    with TestClient(_asgi_app()) as client:
        yield client
    with warnings.catch_warnings():
        # BentoML's proxy of the service to itself closes its async client on
        # shutdown but not the sync one, whose temporary folder is then removed by
        # the garbage collector with a ResourceWarning. Collect it here, where the
        # warning can be told apart from one of ours.
        warnings.filterwarnings(
            "ignore", "Implicitly cleaning up <TemporaryDirectory", ResourceWarning
        )
        gc.collect()


@functools.cache
def _asgi_app():
    """One ASGI app per process: BentoML registers its Prometheus metrics per app.

    Each ``with TestClient(app)`` runs the app's start-up again, so each client gets
    a new service instance reading the config then named in the environment.
    """
    return OnTrackService.to_asgi()


def audit_lines(config: DistrictConfig) -> list[dict]:
    path = config.state_dir / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="session")
def trained_district(tmp_path_factory) -> DistrictConfig:
    """A small demo district run through the real chain: champions and scores.

    Two KPIs keep the session short; 300 students in 3 schools over 2 school years
    (trained on the first, evaluated on the second, scored at its last checkpoint).
    """
    from features import build_snapshots, generate_demo_district, ingest_district
    from training import score_students, train_models

    root = tmp_path_factory.mktemp("trained")
    config = load_config(write_config_file(root, n_kpis=2))
    with warnings.catch_warnings():
        # The chain only builds this fixture; its own warnings (MLflow's and
        # SQLAlchemy's deprecations while logging models) are the business of the
        # packages' own tests, which run it under the strict filters.
        warnings.simplefilter("ignore")
        generate_demo_district(root / "export", n_students=300, n_schools=3, n_years=2)
        ingest_district(config, root / "export")
        build_snapshots(config)
        train_models(config)
        score_students(config)
    # `ontrack publish` refuses a district this small (too many cells to hide);
    # the hand-written table stands in so that every endpoint has its file.
    (config.state_dir / "public").mkdir(exist_ok=True)
    (config.state_dir / "public" / "indicators.json").write_text(INDICATORS_TEXT)
    (config.state_dir / "public" / "indicators.csv").write_text(INDICATORS_CSV)
    (config.state_dir / "public" / "index.html").write_text(INDEX_HTML)
    return config


def snapshot_records(config: DistrictConfig, n: int | None = None) -> list[dict]:
    """Student snapshot rows at the scored date, as a client would send them."""
    scored = pd.read_parquet(config.state_dir / "scores" / "scored_snapshot.parquet")
    snapshots = pd.read_parquet(
        config.state_dir / "snapshots" / "student_snapshots.parquet"
    )
    latest = pd.to_datetime(scored["as_of_date"]).max()
    rows = snapshots[pd.to_datetime(snapshots["as_of_date"]) == latest]
    rows = rows.sort_values("student_id").head(n)
    records = json.loads(rows.to_json(orient="records", date_format="iso"))
    for record in records:
        record["as_of_date"] = record["as_of_date"][:10]
    return records
