"""Tokens, roles and schools: who may see what, with the exact refusals."""

import json
from pathlib import Path

import pytest

from ontrack.config import load_config
from serving._audit import AuditLog
from serving._auth import (
    Principal,
    TokenTable,
    authorize,
    authorize_schools,
)
from serving._errors import AuthenticationError, AuthorizationError

DEMO_CONFIG = Path(__file__).parents[2] / "configs" / "demo.toml"
COUNSELOR = Principal("demo-counselor", "counselor", frozenset({"0001", "0002"}))


@pytest.fixture(scope="module")
def tokens():
    return TokenTable(load_config(DEMO_CONFIG).serving.tokens)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer demo-leader", Principal("demo-leader", "leader")),
        ("bearer demo-dashboard", Principal("demo-dashboard", "service")),
        ("BEARER  demo-counselor ", COUNSELOR),
    ],
)
def test_a_demo_token_is_recognised_by_its_digest(tokens, header, expected):
    assert tokens.authenticate(header, "score") == expected


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            None,
            "header.authorization: endpoint 'score' needs an 'Authorization: Bearer "
            "<token>' header; none was sent",
        ),
        (
            "Basic ZGVtbzpkZW1v",
            "header.authorization: endpoint 'score' needs a bearer token "
            "('Authorization: Bearer <token>'), got another scheme",
        ),
        (
            "Bearer demo-leader2",
            "header.authorization: the bearer token matches no token in "
            "[serving.tokens] of the config",
        ),
        (
            # The digest itself is not a token: only its preimage is.
            "Bearer 049729f6a9bef7030c909fab7c658dfb485500dead771ba3640622f4e1337de4",
            "header.authorization: the bearer token matches no token in "
            "[serving.tokens] of the config",
        ),
    ],
)
def test_a_missing_or_unknown_token_is_refused_with_401(tokens, header, message):
    with pytest.raises(AuthenticationError) as caught:
        tokens.authenticate(header, "score")
    assert caught.value.status_code == 401
    assert caught.value.body()["error"] == message


def test_roles_open_exactly_their_endpoints():
    leader = Principal("boss", "leader")
    service = Principal("dash", "service")
    for endpoint in ("score", "explain", "at_risk", "school_risk", "reload"):
        authorize(leader, endpoint)
    for endpoint in ("score", "explain", "school_risk"):
        authorize(service, endpoint)
        authorize(COUNSELOR, endpoint)
    authorize(COUNSELOR, "at_risk")
    with pytest.raises(AuthorizationError) as caught:
        authorize(service, "at_risk")
    assert str(caught.value) == (
        "token 'dash' has role 'service'; endpoint 'at_risk' is open to counselor, "
        "leader"
    )
    with pytest.raises(AuthorizationError, match="open to leader$"):
        authorize(COUNSELOR, "reload")


def test_a_counselor_sees_only_the_schools_on_the_token():
    authorize_schools(COUNSELOR, ["0001", "0002", "0001"], ("school_id",))
    with pytest.raises(AuthorizationError) as caught:
        authorize_schools(COUNSELOR, ["0001", "0003"], ("school_id",))
    assert caught.value.status_code == 403
    assert caught.value.body()["error"] == (
        "school_id: token 'demo-counselor' is limited to schools 0001, 0002; got "
        "school_id '0003'"
    )
    with pytest.raises(AuthorizationError, match="needs a school_id$"):
        authorize_schools(COUNSELOR, [None], ("records", 0, "school_id"))
    with pytest.raises(AuthorizationError, match="got school_id 'district'$"):
        authorize_schools(COUNSELOR, ["district"], ("school_id",))
    authorize_schools(Principal("boss", "leader"), [None, "0009"], ("school_id",))


def test_an_audit_line_holds_who_what_where_how_many_and_when(tmp_path):
    audit = AuditLog(tmp_path / "state" / "audit.log")
    audit.record(COUNSELOR, "at_risk", ["0002", None, "0001", "0002"], 25)
    audit.record(Principal("dash", "service"), "score", [None], 1)
    lines = [json.loads(line) for line in audit.path.read_text().splitlines()]
    assert [sorted(line) for line in lines] == [
        ["endpoint", "n_students", "role", "school_ids", "time", "token"]
    ] * 2
    assert {key: lines[0][key] for key in lines[0] if key != "time"} == {
        "token": "demo-counselor",
        "role": "counselor",
        "endpoint": "at_risk",
        "school_ids": ["0001", "0002"],
        "n_students": 25,
    }
    assert lines[1]["school_ids"] == []
    assert lines[0]["time"].endswith("Z") and len(lines[0]["time"]) == 24
    assert lines[0]["time"] <= lines[1]["time"]
