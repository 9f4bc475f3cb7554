"""Scoring and explaining with the real champions, in process over HTTP."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import (
    COUNSELOR,
    DASHBOARD,
    LEADER,
    LIBRARY_WARNINGS,
    audit_lines,
    serve_in_process,
    snapshot_records,
)

from serving._schemas import ScoreResponse

pytestmark = [*LIBRARY_WARNINGS, pytest.mark.slow]


@pytest.fixture(scope="module")
def client(trained_district):
    with (
        pytest.MonkeyPatch.context() as patch,
        serve_in_process(trained_district, patch) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def scored(trained_district) -> pd.DataFrame:
    """What `ontrack score` wrote for the same students and date."""
    path = trained_district.state_dir / "scores" / "scored_snapshot.parquet"
    return pd.read_parquet(path).set_index(["kpi", "student_id"]).sort_index()


def test_serving_a_snapshot_scores_it_exactly_as_the_batch_job_did(
    client, trained_district, scored
):
    records = snapshot_records(trained_district)
    response = client.post("/score", json={"records": records}, headers=DASHBOARD)
    assert response.status_code == 200
    # The body is written by hand for speed; it must still be what the OpenAPI
    # document promises.
    ScoreResponse.model_validate_json(response.text)
    body = response.json()
    assert body["n_students"] == len(records) > 100
    assert [kpi["kpi"] for kpi in body["kpis"]] == ["chronic_absence", "course_failure"]
    for kpi in body["kpis"]:
        assert kpi["model_version"] == "1"
        students = kpi["students"]
        assert [s["student_id"] for s in students] == [r["student_id"] for r in records]
        batch = scored.loc[kpi["kpi"]].loc[[s["student_id"] for s in students]]
        np.testing.assert_allclose(
            [s["risk"] for s in students], batch["risk"], rtol=0, atol=1e-12
        )
        assert [s["tier"] for s in students] == list(batch["tier"])
        assert [[driver["feature"] for driver in s["drivers"]] for s in students] == [
            [
                row[f"driver_{i}_feature"]
                for i in (1, 2, 3)
                if row[f"driver_{i}_feature"]
            ]
            for row in batch.to_dict("records")
        ]
        assert [s["drivers"][0]["text"] for s in students if s["drivers"]] == [
            text for text in batch["driver_1"] if text
        ]


def test_score_can_be_limited_to_one_kpi(client, trained_district):
    records = snapshot_records(trained_district, 2)
    body = {"records": records, "kpi": "course_failure"}
    response = client.post("/score", json=body, headers=DASHBOARD)
    assert [kpi["kpi"] for kpi in response.json()["kpis"]] == ["course_failure"]
    body["kpi"] = "dropout"
    unknown = client.post("/score", json=body, headers=DASHBOARD)
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith("kpi: no champion model for KPI")


def test_missing_values_are_scored_and_the_response_holds_no_nan(
    client, trained_district
):
    record = {
        "as_of_date": snapshot_records(trained_district, 1)[0]["as_of_date"],
        "attendance_rate": None,
        # One indicator: a record with none is refused (test_validation.py).
        "grade": 3,
    }
    response = client.post("/score", json={"records": [record]}, headers=LEADER)
    assert response.status_code == 200
    assert "NaN" not in response.text
    for kpi in response.json()["kpis"]:
        (student,) = kpi["students"]
        assert student["student_id"] is None
        assert 0.0 <= student["risk"] <= 1.0


def test_each_score_response_appends_one_audit_line(client, trained_district):
    records = snapshot_records(trained_district, 3)
    before = len(audit_lines(trained_district))
    response = client.post("/score", json={"records": records}, headers=COUNSELOR)
    assert response.status_code == 200
    (line,) = audit_lines(trained_district)[before:]
    assert {key: line[key] for key in line if key != "time"} == {
        "token": "demo-counselor",
        "role": "counselor",
        "endpoint": "score",
        "school_ids": sorted({record["school_id"] for record in records}),
        "n_students": 3,
    }
    # Nothing of a student's own is in the log: not even the ids just scored.
    text = (trained_district.state_dir / "audit.log").read_text()
    assert not any(record["student_id"] in text for record in records)


def test_a_counselor_may_not_score_another_schools_records(client, trained_district):
    record = snapshot_records(trained_district, 1)[0]
    other = {**record, "school_id": "0003"}
    response = client.post(
        "/score", json={"records": [record, other]}, headers=COUNSELOR
    )
    assert response.status_code == 403
    assert response.json()["error"] == (
        "records.school_id: token 'demo-counselor' is limited to schools 0001, 0002; "
        "got school_id '0003'"
    )
    anonymous = {key: value for key, value in record.items() if key != "school_id"}
    response = client.post("/score", json={"records": [anonymous]}, headers=COUNSELOR)
    assert response.status_code == 403
    assert response.json()["error"].endswith("every request item needs a school_id")


def test_explain_splits_the_margin_exactly_by_feature_and_domain(
    client, trained_district, scored
):
    record = snapshot_records(trained_district, 1)[0]
    response = client.post("/explain", json={"record": record}, headers=DASHBOARD)
    assert response.status_code == 200
    body = response.json()
    assert body["student_id"] == record["student_id"]
    assert [kpi["kpi"] for kpi in body["kpis"]] == ["chronic_absence", "course_failure"]
    for kpi in body["kpis"]:
        contributions = [item["contribution"] for item in kpi["by_feature"]]
        assert math.isclose(
            kpi["base_value"] + sum(contributions), kpi["margin"], abs_tol=1e-9
        )
        for domain, total in kpi["by_domain"].items():
            assert math.isclose(
                total,
                sum(
                    i["contribution"]
                    for i in kpi["by_feature"]
                    if i["domain"] == domain
                ),
                abs_tol=1e-9,
            )
        assert math.isclose(
            kpi["risk"],
            scored.loc[(kpi["kpi"], record["student_id"]), "risk"],
            abs_tol=1e-12,
        )
        assert not any(item["protected"] for item in kpi["by_feature"])
    one = client.post(
        "/explain", json={"record": record, "kpi": "course_failure"}, headers=LEADER
    )
    assert [kpi["kpi"] for kpi in one.json()["kpis"]] == ["course_failure"]
    unknown = client.post(
        "/explain", json={"record": record, "kpi": "dropout"}, headers=LEADER
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"] == (
        "kpi: no champion model for KPI 'dropout'; KPIs with one: chronic_absence, "
        "course_failure"
    )


def test_a_grade_a_kpi_is_not_measured_in_gets_no_risk(client, trained_district):
    record = snapshot_records(trained_district, 1)[0]
    prekindergarten = {**record, "grade": -1}

    response = client.post(
        "/score", json={"records": [record, prekindergarten]}, headers=DASHBOARD
    )

    assert response.status_code == 200
    for kpi in response.json()["kpis"]:
        scored, unscored = kpi["students"]
        assert scored["tier"] in ("high", "moderate", "low")
        assert 0 < scored["risk"] < 1
        assert unscored == {
            "student_id": record["student_id"],
            "school_id": record["school_id"],
            "risk": None,
            "tier": "not_applicable",
            "drivers": [],
        }


def test_a_named_student_is_explained_as_the_latest_scoring_saw_them(
    client, trained_district, scored
):
    record = snapshot_records(trained_district, 3)[2]
    by_record = client.post("/explain", json={"record": record}, headers=LEADER)

    by_id = client.post(
        "/explain", json={"student_id": record["student_id"]}, headers=LEADER
    )

    assert by_id.status_code == 200
    assert by_id.json() == by_record.json()
    assert by_id.json()["school_id"] == record["school_id"]
    for kpi in by_id.json()["kpis"]:
        assert kpi["risk"] == pytest.approx(
            scored.loc[(kpi["kpi"], record["student_id"]), "risk"], abs=1e-12
        )


def test_a_counselor_gets_the_same_answer_for_another_schools_student_and_nobody(
    client, trained_district
):
    records = snapshot_records(trained_district)
    elsewhere = next(r for r in records if r["school_id"] not in ("0001", "0002"))

    answers = [
        client.post("/explain", json={"student_id": student_id}, headers=COUNSELOR)
        for student_id in (elsewhere["student_id"], "nobody")
    ]

    for response in answers:
        assert response.status_code == 404
        assert response.json()["error"] == (
            "student_id: no such student at schools 0001, 0002 in the snapshot of "
            "2025-04-01"
        )


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"student_id": "nobody"},
            404,
            "student_id: no such student in the snapshot of 2025-04-01",
        ),
        (
            {},
            400,
            "record: give one of record (one student's snapshot row) or student_id "
            "(a student of the latest scoring), not both and not neither",
        ),
    ],
)
def test_explain_needs_one_known_student(client, body, status, error):
    response = client.post("/explain", json=body, headers=LEADER)

    assert response.status_code == status
    assert response.json()["error"] == error


def test_a_grade_a_kpi_is_not_measured_in_is_not_explained(client, trained_district):
    record = {**snapshot_records(trained_district, 1)[0], "grade": -1}

    response = client.post("/explain", json={"record": record}, headers=LEADER)

    assert response.status_code == 200
    for kpi in response.json()["kpis"]:
        assert kpi == {
            "kpi": kpi["kpi"],
            "model_version": "1",
            "risk": None,
            "tier": "not_applicable",
            "base_value": None,
            "margin": None,
            "by_domain": {},
            "by_feature": [],
        }


def test_the_service_is_ready_with_the_kpis_that_have_a_champion(
    trained_district, caplog
):
    from serving._app import OnTrackApp
    from training import load_champions

    def without_course_failure(config):
        scorers = load_champions(config, n_jobs=1)
        scorers.pop("course_failure")
        return scorers

    with caplog.at_level("WARNING", logger="serving._app"):
        app = OnTrackApp(trained_district, without_course_failure)

    assert app.is_ready()
    assert caplog.messages[-1] == (
        "no champion for course_failure: not served until `ontrack train` registers one"
    )
    with pytest.raises(LookupError) as error:
        app.score("Bearer demo-leader", [], "course_failure")
    assert str(error.value) == (
        "no champion model for KPI 'course_failure'; KPIs with one: chronic_absence"
    )
    assert not OnTrackApp(trained_district, lambda config: {}).is_ready()
