"""Ask for the token before reading the body: no token, no word about the request.

BentoML validates a request body against the endpoint's schema before the endpoint
runs, so without this gate a caller with no token who sends a bad body would learn
from the 400 which fields the records take. This ASGI middleware answers a
student-level endpoint (those in ``ENDPOINT_ROLES``) with 401 when the bearer token
is missing or unknown, before BentoML reads the body. Whether the role and the
schools cover the request is still decided by the endpoint, which needs the body.

The gate checks against the token table of the running service:
``OnTrackService`` hands it over at start-up (:meth:`AuthenticationGate.use`),
once per worker process.
"""

from __future__ import annotations

import json
from typing import ClassVar

from ._auth import ENDPOINT_ROLES, TokenTable
from ._errors import AuthenticationError


class AuthenticationGate:
    """Refuses student-level requests without a known bearer token, with 401."""

    tokens: ClassVar[TokenTable | None] = None

    def __init__(self, app) -> None:
        self.app = app

    @classmethod
    def use(cls, tokens: TokenTable) -> None:
        """The token table requests are checked against from now on."""
        cls.tokens = tokens

    async def __call__(self, scope, receive, send) -> None:
        endpoint = _endpoint(scope)
        if endpoint is None or self.tokens is None:
            await self.app(scope, receive, send)
            return
        try:
            self.tokens.authenticate(_authorization(scope), endpoint)
        except AuthenticationError as failure:
            await _refuse(send, failure)
            return
        await self.app(scope, receive, send)


def _endpoint(scope) -> str | None:
    """The student-level endpoint an HTTP request is for, or None."""
    if scope["type"] != "http":
        return None
    path = scope["path"][len(scope.get("root_path", "")) :].strip("/")
    return path if path in ENDPOINT_ROLES else None


def _authorization(scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"authorization":
            return value.decode("latin-1")
    return None


async def _refuse(send, failure: AuthenticationError) -> None:
    body = json.dumps(failure.body()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": failure.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b"Bearer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
