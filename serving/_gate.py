"""What a request must show before its body is read: its size and its token.

A body over ``MAX_BODY_BYTES`` (by its ``content-length``) is refused with 413
before it is read: 10,000 demo snapshot rows (49 columns) take about 11 MB as JSON, and
nothing the service takes needs more.

No token, no word about the request.

BentoML validates a request body against the endpoint's schema before the endpoint
runs, so without this gate a caller with no token who sends a bad body would learn
from the 400 which fields the records take. This ASGI middleware answers a
student-level endpoint (those in ``ENDPOINT_ROLES``) with 401 when the bearer token
is missing or unknown, before BentoML reads the body. Whether the role and the
schools cover the request is still decided by the endpoint, which needs the body.

The gate checks against the token table of the running service:
``OnTrackService`` hands it over at start-up (:meth:`RequestGate.use`),
once per worker process.
"""

from __future__ import annotations

import json
from typing import ClassVar

from ._auth import ENDPOINT_ROLES, TokenTable
from ._errors import AuthenticationError, ServingFailure

MAX_BODY_BYTES = 32 * 1024 * 1024


class BodyTooLarge(ServingFailure, ValueError):
    """A request body larger than the service reads."""

    status_code = 413
    error_type = "too_large"


class RequestGate:
    """Refuses an oversized body (413) and a student-level request without a known
    bearer token (401)."""

    tokens: ClassVar[TokenTable | None] = None

    def __init__(self, app) -> None:
        self.app = app

    @classmethod
    def use(cls, tokens: TokenTable) -> None:
        """The token table requests are checked against from now on."""
        cls.tokens = tokens

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            endpoint = _endpoint(scope)
            if endpoint is not None and self.tokens is not None:
                self.tokens.authenticate(_header(scope, b"authorization"), endpoint)
            length = _header(scope, b"content-length")
            _check_size(length)
            if length is None:
                # A chunked body says its size only by arriving: read it here, up
                # to the limit, and hand the app what was read.
                receive = await _bounded(receive)
        except ServingFailure as failure:
            await _refuse(send, failure)
            return
        await self.app(scope, receive, send)


async def _bounded(receive):
    """The body of a request without a length, read whole unless too large."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge(
                f"the body has more than {MAX_BODY_BYTES:,} bytes, the most the "
                "service reads (10,000 demo records take about 11 MB)",
                ("body",),
            )
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _check_size(content_length: str | None) -> None:
    if content_length is not None and content_length.isdigit():
        size = int(content_length)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge(
                f"the body has {size:,} bytes; the service reads at most "
                f"{MAX_BODY_BYTES:,} (10,000 demo records take about 11 MB)",
                ("body",),
            )


def _endpoint(scope) -> str | None:
    """The student-level endpoint an HTTP request is for, or None."""
    path = scope["path"][len(scope.get("root_path", "")) :].strip("/")
    return path if path in ENDPOINT_ROLES else None


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _refuse(send, failure: ServingFailure) -> None:
    body = json.dumps(failure.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if isinstance(failure, AuthenticationError):
        headers.append((b"www-authenticate", b"Bearer"))
    await send(
        {
            "type": "http.response.start",
            "status": failure.status_code,
            "headers": headers,
        }
    )
    await send({"type": "http.response.body", "body": body})
