"""Make every 400 say which field is wrong in its first line.

BentoML answers a body that breaks the schema with ``{"error": "2 validation error
for Input", "detail": [...]}``: the fields are named only deep in ``detail``. This
ASGI middleware rewrites such a body so that ``error`` lists each ``field: problem``
(``records.0.attendance_rate: Input should be less than or equal to 1``), calls an
unknown column an unknown column, and drops pydantic's documentation links. Bodies
of other statuses pass through untouched.

It also answers in JSON where Starlette's router would answer in plain text: a
method an endpoint does not take (``GET /score``: 405, with the ``allow`` header
kept) and a path no endpoint has (404), in the same body shape as every other
refusal.
"""

from __future__ import annotations

import json
from typing import Any

_SHOWN = 5
# Statuses whose plain-text router answers are rewritten as JSON.
_ROUTING_STATUSES = {404: "not_found", 405: "method_not_allowed"}
_UNKNOWN_BODY_FIELD = "unknown field; /docs.json lists the fields each endpoint takes"
_MESSAGES = {
    "extra_forbidden": "unknown field; the record takes only snapshot columns",
    "json_invalid": "the body is not valid JSON",
}


def name_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The error body with ``error`` naming each field and its problem."""
    detail = body.get("detail")
    if not isinstance(detail, list) or not detail:
        return body
    items = []
    for item in detail:
        if not isinstance(item, dict):
            return body
        item = {key: value for key, value in item.items() if key != "url"}
        if item.get("type") in _MESSAGES:
            if item["type"] == "json_invalid":
                item["msg"] = f"{_MESSAGES['json_invalid']}: {item.get('msg', '')}"
            elif len(item.get("loc", [])) == 1:
                item["msg"] = _UNKNOWN_BODY_FIELD
            else:
                item["msg"] = _MESSAGES[item["type"]]
        items.append(item)
    problems = [
        f"{'.'.join(str(part) for part in item.get('loc', []))}: {item.get('msg')}"
        if item.get("loc")
        else str(item.get("msg"))
        for item in items
    ]
    if len(problems) > _SHOWN:
        problems = [*problems[:_SHOWN], f"and {len(problems) - _SHOWN} more"]
    return {"error": "; ".join(problems), "detail": items}


class FieldNamingMiddleware:
    """Rewrites 400 bodies with :func:`name_fields` and plain-text 404 and 405
    answers as JSON; other responses stream on."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def rewrite(message) -> None:
            if message["type"] == "http.response.start" and _rewrites(message):
                held["start"] = message
                return
            if "start" not in held or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            start = held["start"]
            if start["status"] == 400:
                body = _rewritten(b"".join(chunks))
            else:
                body = _routing_body(scope, start)
            headers = [
                (key, value)
                for key, value in start["headers"]
                if key.lower() not in (b"content-length", b"content-type")
            ]
            headers.append((b"content-length", str(len(body)).encode()))
            headers.append((b"content-type", _content_type(start)))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


def _header(start: dict[str, Any], name: bytes) -> bytes:
    for key, value in start.get("headers", []):
        if key.lower() == name:
            return value
    return b""


def _rewrites(start: dict[str, Any]) -> bool:
    """A 400, or a 404 or 405 the router answered in plain text (not one of ours)."""
    status = start["status"]
    if status == 400:
        return True
    plain = not _header(start, b"content-type").startswith(b"application/json")
    return status in _ROUTING_STATUSES and plain


def _content_type(start: dict[str, Any]) -> bytes:
    if start["status"] != 400:
        return b"application/json"
    return _header(start, b"content-type") or b"application/json"


def _routing_body(scope, start: dict[str, Any]) -> bytes:
    """The JSON body of the router's 404 or 405: the method, path and what is taken."""
    method, path = scope.get("method", "?"), scope.get("path", "?")
    if start["status"] == 405:
        # Starlette lists the methods in set order, which changes between runs.
        methods = _header(start, b"allow").decode("latin-1").split(",")
        allowed = ", ".join(sorted(m.strip() for m in methods if m.strip()))
        allowed = allowed or "another method"
        message = f"{method} {path} is not allowed; {path} takes {allowed}"
        if allowed == "POST":
            message += " with a JSON body"
    else:
        message = f"no endpoint at {path}; see /docs.json for the endpoints"
    error = {
        "error": message,
        "detail": [
            {
                "loc": ["path"],
                "msg": message,
                "type": _ROUTING_STATUSES[start["status"]],
            }
        ],
    }
    return json.dumps(error).encode()


def _rewritten(body: bytes) -> bytes:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    if not isinstance(parsed, dict):
        return body
    return json.dumps(name_fields(parsed)).encode()
