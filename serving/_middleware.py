"""Make every 400 say which field is wrong in its first line.

BentoML answers a body that breaks the schema with ``{"error": "2 validation error
for Input", "detail": [...]}``: the fields are named only deep in ``detail``. This
ASGI middleware rewrites such a body so that ``error`` lists each ``field: problem``
(``records.0.attendance_rate: Input should be less than or equal to 1``), calls an
unknown column an unknown column, and drops pydantic's documentation links. Bodies
of other statuses pass through untouched.
"""

from __future__ import annotations

import json
from typing import Any

_SHOWN = 5
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
    """Rewrites JSON 400 bodies with :func:`name_fields`; other responses stream on."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def rewrite_400(message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 400:
                held["start"] = message
                return
            if "start" not in held or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = _rewritten(b"".join(chunks))
            headers = [
                (key, value)
                for key, value in held["start"]["headers"]
                if key.lower() != b"content-length"
            ]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**held["start"], "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite_400)


def _rewritten(body: bytes) -> bytes:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    if not isinstance(parsed, dict):
        return body
    return json.dumps(name_fields(parsed)).encode()
