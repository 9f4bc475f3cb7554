"""Lists, projections, public indicators, roles and audit, over HTTP in process."""

from __future__ import annotations

import math

import pytest
from conftest import (
    COUNSELOR,
    DASHBOARD,
    LEADER,
    LIBRARY_WARNINGS,
    audit_lines,
    district_config,
    serve_in_process,
)

pytestmark = LIBRARY_WARNINGS


@pytest.fixture(scope="module")
def district(scored_state):
    return district_config(scored_state)


@pytest.fixture(scope="module")
def client(district):
    with (
        pytest.MonkeyPatch.context() as patch,
        serve_in_process(district, patch) as client,
    ):
        yield client


def test_at_risk_lists_the_latest_scoring_riskiest_first(client, district):
    before = len(audit_lines(district))
    response = client.post(
        "/at_risk", json={"school_id": "0001", "kpi": "chronic_absence"}, headers=LEADER
    )
    assert response.status_code == 200
    body = response.json()
    assert body["as_of_date"] == "2025-02-01"
    assert body["model_version"] == "3"
    assert body["n_students"] == 4
    # Equal risks (s02, s03) keep student_id order.
    assert [s["student_id"] for s in body["students"]] == ["s01", "s02", "s03", "s04"]
    assert [s["risk"] for s in body["students"]] == [
        0.81 + 0.01,
        0.40 + 0.01,
        0.40 + 0.01,
        0.05 + 0.01,
    ]
    assert body["students"][0]["grade"] == 3
    assert body["students"][0]["drivers"] == [
        {
            "feature": "attendance_rate",
            "domain": "attendance",
            "text": "attended 84% of days",
        },
        {
            "feature": "incidents",
            "domain": "behaviour",
            "text": "3 behaviour incidents",
        },
    ]
    assert body["students"][3]["drivers"] == []
    assert audit_lines(district)[before:] == [
        {
            "time": audit_lines(district)[before]["time"],
            "token": "demo-leader",
            "role": "leader",
            "endpoint": "at_risk",
            "school_ids": ["0001"],
            "n_students": 4,
        }
    ]


def test_at_risk_filters_by_tier_and_cuts_at_top_k(client):
    def ids(**query):
        body = {"school_id": "0001", "kpi": "course_failure", **query}
        response = client.post("/at_risk", json=body, headers=COUNSELOR)
        assert response.status_code == 200
        return [student["student_id"] for student in response.json()["students"]]

    assert ids(tier="moderate") == ["s02", "s03"]
    assert ids(top_k=2) == ["s01", "s02"]
    assert ids(tier="moderate", top_k=1) == ["s02"]
    assert ids(tier="high", top_k=10) == ["s01"]


def test_a_counselor_gets_403_for_another_school_and_nothing_is_audited(
    client, district
):
    before = len(audit_lines(district))
    response = client.post(
        "/at_risk",
        json={"school_id": "0003", "kpi": "chronic_absence"},
        headers=COUNSELOR,
    )
    assert response.status_code == 403
    assert response.json()["error"] == (
        "school_id: token 'demo-counselor' is limited to schools 0001, 0002; got "
        "school_id '0003'"
    )
    assert len(audit_lines(district)) == before


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        (
            {},
            401,
            "header.authorization: endpoint 'at_risk' needs an 'Authorization: "
            "Bearer <token>' header; none was sent",
        ),
        (
            {"authorization": "Bearer not-a-token"},
            401,
            "header.authorization: the bearer token matches no token in "
            "[serving.tokens] of the config",
        ),
        (
            DASHBOARD,
            403,
            "header.authorization: token 'demo-dashboard' has role 'service'; "
            "endpoint 'at_risk' is open to counselor, leader",
        ),
    ],
)
def test_student_lists_need_a_token_of_the_right_role(client, headers, status, error):
    response = client.post(
        "/at_risk",
        json={"school_id": "0001", "kpi": "chronic_absence"},
        headers=headers,
    )
    assert response.status_code == status
    assert response.json()["error"] == error


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        (
            {"school_id": "0009", "kpi": "chronic_absence"},
            404,
            "school_id: no scored students at school '0009' as of 2025-02-01",
        ),
        (
            {"school_id": "0001", "kpi": "attendance"},
            404,
            "kpi: KPI 'attendance' is not scored; scored KPIs: chronic_absence, "
            "course_failure",
        ),
        (
            {"school_id": "0001", "kpi": "chronic_absence", "tier": "severe"},
            400,
            "tier: Input should be 'high', 'moderate' or 'low'",
        ),
        (
            {"school_id": "0001", "kpi": "chronic_absence", "top_k": 0},
            400,
            "top_k: Input should be greater than or equal to 1",
        ),
        ({"kpi": "chronic_absence"}, 400, "school_id: Field required"),
    ],
)
def test_unknown_schools_kpis_and_bad_filters_are_4xx(client, query, status, error):
    response = client.post("/at_risk", json=query, headers=LEADER)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_school_risk_gives_one_school_or_every_school_and_the_district(client):
    one = client.post("/school_risk", json={"school_id": "0001"}, headers=DASHBOARD)
    assert one.status_code == 200
    rows = one.json()["projections"]
    assert [(row["school_id"], row["kpi"]) for row in rows] == [
        ("0001", "chronic_absence"),
        ("0001", "course_failure"),
    ]
    # A NaN in the file (no observed rate yet) is null in the response.
    assert rows[0]["observed_rate_so_far"] is None
    assert rows[0]["p_miss_target"] == 0.71
    everything = client.post("/school_risk", json={}, headers=LEADER).json()
    assert [row["school_id"] for row in everything["projections"]] == [
        "0001",
        "0001",
        "0002",
        "district",
    ]
    district = client.post(
        "/school_risk",
        json={"school_id": "district", "kpi": "chronic_absence"},
        headers=LEADER,
    ).json()["projections"]
    assert [row["n_students"] for row in district] == [6]


def test_a_counselor_sees_projections_of_their_schools_only(client):
    mine = client.post("/school_risk", json={"school_id": "0002"}, headers=COUNSELOR)
    assert mine.status_code == 200
    district = client.post(
        "/school_risk", json={"school_id": "district"}, headers=COUNSELOR
    )
    assert district.status_code == 403
    assert district.json()["error"].endswith("got school_id 'district'")
    # With no school_id the counselor is told what to send, not quoted a school
    # they never sent.
    unnamed = client.post("/school_risk", json={}, headers=COUNSELOR)
    assert unnamed.status_code == 403
    assert unnamed.json()["error"] == (
        "school_id: token 'demo-counselor' is a counselor's, who may see only their "
        "schools (0001, 0002): give school_id"
    )


def test_school_risk_needs_a_token(client):
    response = client.post("/school_risk", json={})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b'{"records": [{"attendance_rate": 1.7}]}',
        b'{"records": [',
        b'{"unknown": 1}',
    ],
)
def test_without_a_token_a_bad_body_is_refused_as_unauthenticated(client, body):
    # The schema's complaints would tell a caller without a token which fields the
    # records take: no token, no word about the body.
    response = client.post(
        "/score", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == (
        "header.authorization: endpoint 'score' needs an 'Authorization: Bearer "
        "<token>' header; none was sent"
    )


def test_a_body_larger_than_the_service_reads_is_refused_unread(client):
    body = b"{" + b" " * (32 * 1024 * 1024) + b"}"

    response = client.post(
        "/score", content=body, headers={**LEADER, "content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()["error"] == (
        "body: the body has 33,554,434 bytes; the service reads at most 33,554,432 "
        "(10,000 demo records take about 11 MB)"
    )


def test_a_chunked_body_is_read_only_up_to_the_limit(client):
    chunk = b" " * (1024 * 1024)

    def body():
        yield b"{"
        for _ in range(33):
            yield chunk
        yield b"}"

    response = client.post(
        "/score", content=body(), headers={**LEADER, "content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()["error"] == (
        "body: the body has more than 33,554,432 bytes, the most the service reads "
        "(10,000 demo records take about 11 MB)"
    )


def test_a_chunked_body_under_the_limit_reaches_the_endpoint(client):
    def body():
        yield b'{"school_id": "0001",'
        yield b' "kpi": "chronic_absence"}'

    response = client.post(
        "/at_risk",
        content=body(),
        headers={**LEADER, "content-type": "application/json"},
    )

    assert response.status_code == 200
    assert response.json()["school_id"] == "0001"


def test_without_a_token_a_large_body_is_refused_as_unauthenticated(client):
    body = b"{" + b" " * (32 * 1024 * 1024) + b"}"

    response = client.post(
        "/score", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 401


def test_published_files_are_plain_gets_without_a_token(client, district):
    before = len(audit_lines(district))

    indicators = client.get("/public/indicators.json")

    assert indicators.status_code == 200
    assert indicators.headers["content-type"] == "application/json"
    assert (
        indicators.content
        == (district.state_dir / "public" / "indicators.json").read_bytes()
    )
    assert len(audit_lines(district)) == before


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        (
            "/public/",
            503,
            "nothing published at <state>/public/index.html; run `ontrack publish` "
            "first",
        ),
        (
            "/public/audit.log",
            404,
            "path: no public file 'audit.log'; published files: index.html, "
            "indicators.json, indicators.csv",
        ),
        (
            "/public/..%2Faudit.log",
            404,
            "no endpoint at /public/../audit.log; see /docs.json for the endpoints",
        ),
    ],
)
def test_only_published_files_are_served(client, path, status, error):
    response = client.get(path)

    assert response.status_code == status
    assert response.json()["error"] == error


def test_public_indicators_need_no_token_and_hold_no_nan(client, district):
    before = len(audit_lines(district))
    response = client.post("/public_indicators")
    assert response.status_code == 200
    assert "NaN" not in response.text
    assert response.json()["cells"][1] == {
        "school_id": "0003",
        "group": "all",
        "n_size": None,
        "rate": None,
    }
    assert len(audit_lines(district)) == before


def test_reload_is_open_to_leaders_only(client):
    refused = client.post("/reload", headers=COUNSELOR)
    assert refused.status_code == 403
    assert refused.json()["error"].endswith("endpoint 'reload' is open to leader")
    reloaded = client.post("/reload", headers=LEADER)
    assert reloaded.status_code == 200
    assert reloaded.json()["as_of_date"] == "2025-02-01"


def test_health_and_openapi_answer_in_process(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/healthz").status_code == 200
    document = client.get("/docs.json").json()
    assert {
        "/score",
        "/explain",
        "/at_risk",
        "/school_risk",
        "/public_indicators",
        "/reload",
    } <= set(document["paths"])


def test_an_empty_state_folder_answers_503_naming_the_missing_file(
    tmp_path, monkeypatch
):
    config = district_config(tmp_path)
    with serve_in_process(config, monkeypatch) as client:
        response = client.post(
            "/at_risk", json={"school_id": "0001", "kpi": "x"}, headers=LEADER
        )
        assert response.status_code == 503
        assert response.json()["error"] == (
            "no scored snapshot at <state>/scores/scored_snapshot.parquet; run "
            "`ontrack score` first"
        )
        public = client.post("/public_indicators")
        assert public.status_code == 503
        assert "run `ontrack publish` first" in public.json()["error"]
        assert not math.isnan(0.0)
