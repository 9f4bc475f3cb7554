"""Every kind of bad input gets a 4xx whose first line names the field; never a 500."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import LEADER, LIBRARY_WARNINGS, district_config, serve_in_process
from pydantic import ValidationError

from features import FEATURE_CATALOG, GENDER_CODES, RACE_ETHNICITY_CODES
from serving._schemas import record_model

pytestmark = LIBRARY_WARNINGS

DATE = "2025-02-01"


@pytest.fixture(scope="module")
def district(scored_state):
    # A small per-call limit, to test the config's limit without 10,000 records.
    return district_config(scored_state, max_records=3)


@pytest.fixture(scope="module")
def client(district):
    with (
        pytest.MonkeyPatch.context() as patch,
        serve_in_process(district, patch) as client,
    ):
        yield client


def _score(client, body) -> tuple[int, dict]:
    if isinstance(body, str | bytes):
        response = client.post(
            "/score",
            content=body,
            headers={**LEADER, "content-type": "application/json"},
        )
    else:
        response = client.post("/score", json=body, headers=LEADER)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("record", "error"),
    [
        (
            {"as_of_date": DATE, "attendance_rate": "high"},
            "records.0.attendance_rate: Input should be a valid number",
        ),
        (
            {"as_of_date": DATE, "attendance_rate": "0.9"},
            "records.0.attendance_rate: Input should be a valid number",
        ),
        (
            {"as_of_date": DATE, "in_tutoring": True},
            "records.0.in_tutoring: Input should be a valid number",
        ),
        (
            {"as_of_date": DATE, "attendance_rate": 1.7},
            "records.0.attendance_rate: Input should be less than or equal to 1",
        ),
        (
            {"as_of_date": DATE, "incidents": -1},
            "records.0.incidents: Input should be greater than or equal to 0",
        ),
        (
            {"as_of_date": DATE, "grade": 13},
            "records.0.grade: Input should be less than or equal to 12",
        ),
        (
            {"as_of_date": DATE, "first_name": "Alice"},
            "records.0.first_name: unknown field; the record takes only snapshot "
            "columns",
        ),
        ({"attendance_rate": 0.9}, "records.0.as_of_date: Field required"),
        (
            {"as_of_date": None},
            "records.0.as_of_date: Input should be a valid date",
        ),
        (
            {"as_of_date": "2025-02-30"},
            "records.0.as_of_date: Input should be a valid date in the format "
            "YYYY-MM-DD, day value is outside expected range",
        ),
        (
            {"as_of_date": DATE, "gender": "unknown"},
            "records.0.gender: Input should be 'female', 'male', 'nonbinary' or "
            "'not_reported'",
        ),
        (
            {"as_of_date": DATE, "school_id": 1},
            "records.0.school_id: Input should be a valid string",
        ),
        (
            {"as_of_date": DATE, "checkpoint": "October"},
            "records.0.checkpoint: String should match pattern '^\\d{2}-\\d{2}$'",
        ),
        (
            {"as_of_date": DATE, "checkpoint": "99-99"},
            "records.0.checkpoint: checkpoint '99-99' is not a real month-day "
            "(expected MM-DD, e.g. 10-01)",
        ),
        (
            {"as_of_date": DATE, "days_absent": 300, "days_enrolled": 10},
            "records.0.days_absent: days_absent (300) is more than days_enrolled "
            "(10); expected at most days_enrolled",
        ),
        (
            {"as_of_date": DATE, "days_absent": 1e308},
            "records.0.days_absent: Input should be less than or equal to 366",
        ),
        (
            {"as_of_date": DATE, "days_enrolled": 400},
            "records.0.days_enrolled: Input should be less than or equal to 366",
        ),
        (
            {
                "as_of_date": DATE,
                "incidents": 1,
                "in_school_suspensions": 1,
                "out_of_school_suspensions": 1,
            },
            "records.0.in_school_suspensions: in_school_suspensions + "
            "out_of_school_suspensions (2) is more than incidents (1); expected at "
            "most incidents",
        ),
        (
            {"as_of_date": DATE, "grade": 3.5},
            "records.0.grade: grade 3.5 is not a whole number (expected -1 for "
            "pre-kindergarten, 0 for kindergarten, up to 12)",
        ),
        (
            {"as_of_date": DATE, "school_year": 2019, "grade": 3},
            "records.0.school_year: as_of_date 2025-02-01 is not in school year "
            "2019, which runs from 2018-08-01 to 2019-07-31 (both inclusive)",
        ),
        (
            {"as_of_date": "2025-08-01", "school_year": 2025, "grade": 3},
            "records.0.school_year: as_of_date 2025-08-01 is not in school year "
            "2025, which runs from 2024-08-01 to 2025-07-31 (both inclusive)",
        ),
        (
            {"as_of_date": DATE, "student_id": "s1", "gender": "female"},
            "records.0: the record holds no indicator; send at least one feature of "
            "the catalog (e.g. days_enrolled)",
        ),
    ],
)
def test_a_bad_field_is_a_400_naming_it(client, record, error):
    status, body = _score(client, {"records": [record]})
    assert status == 400
    assert body["error"] == error
    assert body["detail"][0]["loc"] == error.split(":")[0].split(".")[:1] + [
        int(part) if part.isdigit() else part
        for part in error.split(":")[0].split(".")[1:]
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '{"records": [{"as_of_date": "2025-02-01", "attendance_rate": NaN}]}',
            "records.0.attendance_rate: Input should be a finite number",
        ),
        (
            '{"records": [{"as_of_date": "2025-02-01", "tardies": Infinity}]}',
            "records.0.tardies: Input should be a finite number",
        ),
        ('{"records": null}', "records: Input should be a valid array"),
        ('{"records": [null]}', "records.0: Input should be an object"),
        ("{}", "records: Field required"),
        ("[]", "Input should be an object"),
        (
            '{"records": []}',
            "records: List should have at least 1 item after validation, not 0",
        ),
        (
            '{"records": [{"as_of_date": "2025-02-01",',
            "the body is not valid JSON: Invalid JSON: EOF while parsing a value at "
            "line 1 column 41",
        ),
        (
            b'{"records": [{"as_of_date": "2025-02-01", "\xff": 1}]}',
            "the body is not valid JSON: Invalid JSON: invalid unicode code point "
            "at line 1 column 44",
        ),
    ],
)
def test_malformed_json_nan_and_null_are_400_naming_the_field(client, text, error):
    status, body = _score(client, text)
    assert status == 400
    assert body["error"] == error


def test_more_records_than_the_config_allows_is_a_400(client):
    records = [{"as_of_date": DATE, "grade": 3}] * 4
    status, body = _score(client, {"records": records})
    assert status == 400
    assert body["error"] == (
        "records: 4 records sent; at most 3 per call ([serving] max_records)"
    )


def test_more_than_ten_thousand_records_is_refused_before_scoring(client):
    record = '{"as_of_date": "2025-02-01", "grade": 3}'
    text = '{"records": [' + ",".join([record] * 10_001) + "]}"
    status, body = _score(client, text)
    assert status == 400
    assert body["error"] == (
        "records: List should have at most 10000 items after validation, not 10001"
    )


def test_many_problems_are_listed_five_at_a_time(client):
    records = [{"as_of_date": DATE, "attendance_rate": 2.0 + i} for i in range(3)]
    records[0]["incidents"] = -1
    records[1]["foo"] = 1
    records[2]["bar"] = 1
    records[2]["tardies"] = "x"
    status, body = _score(client, {"records": records})
    assert status == 400
    assert len(body["detail"]) == 7
    assert body["error"].endswith("; and 2 more")
    assert body["error"].count(": ") == 5


def test_a_refused_input_is_logged_as_one_line_without_values(client, caplog):
    caplog.set_level(logging.INFO)
    status, _ = _score(
        client, {"records": [{"as_of_date": DATE, "first_name": "Alice"}]}
    )
    assert status == 400
    refusals = [
        record
        for record in caplog.records
        if record.name == "bentoml._internal.server.http_app"
    ]
    assert [(r.levelname, r.getMessage()) for r in refusals] == [
        ("INFO", "refused invalid input on /score: 1 error(s) at records.*.first_name")
    ]
    assert refusals[0].exc_info is None
    assert "Alice" not in caplog.text


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        (
            "/explain",
            {"record": None},
            "record: give one of record (one student's snapshot row) or student_id "
            "(a student of the latest scoring), not both and not neither",
        ),
        (
            "/explain",
            {"record": {"as_of_date": DATE, "credit_ratio": 1.5}},
            "record.credit_ratio: Input should be less than or equal to 1",
        ),
        (
            "/explain",
            {"record": {"as_of_date": DATE, "grade": 3}, "kpi": ""},
            ("kpi: String should have at least 1 character"),
        ),
        (
            "/at_risk",
            {"school_id": None, "kpi": "x"},
            ("school_id: Input should be a valid string"),
        ),
        (
            "/at_risk",
            {"school_id": "0001", "kpi": "x", "top_k": 1.5},
            (
                "top_k: Input should be a valid integer, got a number with a "
                "fractional part"
            ),
        ),
        ("/school_risk", {"school_id": 7}, "school_id: Input should be a valid string"),
        (
            "/at_risk",
            {"school_id": "0001", "kpi": "chronic_absence", "teir": "high"},
            "teir: unknown field; /docs.json lists the fields each endpoint takes",
        ),
        (
            "/score",
            {"records": [{"as_of_date": DATE, "grade": 3}], "extra": 1},
            "extra: unknown field; /docs.json lists the fields each endpoint takes",
        ),
        (
            "/reload",
            {"now": True},
            "now: unknown field; /docs.json lists the fields each endpoint takes",
        ),
    ],
)
def test_other_endpoints_name_the_field_too(client, path, body, error):
    response = client.post(path, json=body, headers=LEADER)
    assert response.status_code == 400
    assert response.json()["error"] == error
    json.loads(response.text)


@pytest.mark.parametrize(
    ("method", "path", "status", "allow", "error"),
    [
        (
            "GET",
            "/score",
            405,
            "POST",
            "GET /score is not allowed; /score takes POST with a JSON body",
        ),
        (
            "PUT",
            "/reload",
            405,
            "POST",
            "PUT /reload is not allowed; /reload takes POST with a JSON body",
        ),
        (
            "POST",
            "/healthz",
            405,
            "GET, HEAD",
            "POST /healthz is not allowed; /healthz takes GET, HEAD",
        ),
        (
            "GET",
            "/scores",
            404,
            None,
            "no endpoint at /scores; see /docs.json for the endpoints",
        ),
    ],
)
def test_a_wrong_method_or_path_is_answered_in_json(
    client, method, path, status, allow, error
):
    response = client.request(method, path, headers=LEADER)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    allowed = response.headers.get("allow")
    assert (allowed and sorted(allowed.split(", "))) == (allow and allow.split(", "))
    assert response.json()["error"] == error
    assert response.json()["detail"][0]["loc"] == ["path"]


def test_a_404_of_ours_keeps_its_own_json_body(client):
    response = client.post(
        "/at_risk", json={"school_id": "0001", "kpi": "no_such_kpi"}, headers=LEADER
    )
    assert response.status_code == 404
    assert response.json()["detail"][0]["loc"] != ["path"]


def test_records_take_the_codes_ingest_stores_and_accept_a_plausible_record():
    assert "not_reported" in GENDER_CODES
    assert "not_reported" in RACE_ETHNICITY_CODES
    record = record_model(FEATURE_CATALOG).model_validate_json(
        json.dumps(
            {
                "as_of_date": "2024-08-01",
                "school_year": 2025,
                "checkpoint": "02-29",
                "gender": "not_reported",
                "race_ethnicity": "not_reported",
                "grade": -1.0,
                "days_enrolled": 366.0,
                "days_absent": 366.0,
                "incidents": 2.0,
                "in_school_suspensions": 1.0,
                "out_of_school_suspensions": 1.0,
            }
        )
    )
    assert (record.gender, record.race_ethnicity, record.grade) == (
        "not_reported",
        "not_reported",
        -1.0,
    )


def test_a_district_starting_its_year_in_september_moves_the_school_year_span():
    september = record_model(FEATURE_CATALOG, school_year_start="09-01")
    september.model_validate_json(
        '{"as_of_date": "2025-08-15", "school_year": 2025, "grade": 3}'
    )
    with pytest.raises(ValidationError) as caught:
        september.model_validate_json(
            '{"as_of_date": "2025-09-01", "school_year": 2025, "grade": 3}'
        )
    assert [item["msg"] for item in caught.value.errors()] == [
        "as_of_date 2025-09-01 is not in school year 2025, which runs from "
        "2024-09-01 to 2025-08-31 (both inclusive)"
    ]


def test_a_flat_tables_count_column_refuses_a_negative_count():
    catalog = {
        "absences": {"domain": "attendance", "template": "{value}", "kind": "count"},
        "Mjob": {"domain": "other", "template": "{value}", "kind": "category"},
    }
    record = record_model(catalog)

    with pytest.raises(ValidationError) as error:
        record.model_validate_json('{"as_of_date": "2025-02-01", "absences": -5}')

    assert error.value.errors()[0]["loc"] == ("absences",)
    assert (
        error.value.errors()[0]["msg"] == "Input should be greater than or equal to 0"
    )
    assert (
        record.model_validate_json(
            '{"as_of_date": "2025-02-01", "absences": 4, "Mjob": "astronaut"}'
        ).Mjob
        == "astronaut"
    )
