"""What can go wrong with a request, and the 4xx answer each failure gets.

Every failure the service expects is one of these exceptions; the service turns it
into a JSON body of the same shape as BentoML's own validation errors, so a client
reads every 4xx the same way::

    {"error": "records.0.attendance_rate: must be at most 1",
     "detail": [{"loc": ["records", 0, "attendance_rate"],
                 "msg": "must be at most 1", "type": "less_than_equal"}]}

The tree, with the builtin each one subclasses so callers can catch it plainly::

    RequestError (ValueError)             400: the body is well formed but refused
    AuthenticationError (PermissionError) 401: no token, or not a token we issued
    AuthorizationError (PermissionError)  403: role or schools do not cover it
    NotFoundError (LookupError)           404: no such school, KPI or student
    NotReadyError (RuntimeError)          503: the models or scores are not built yet
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Location = Sequence[str | int]


class ServingFailure(Exception):
    """A refused request: its HTTP status, the field at fault and an error type."""

    status_code = 400
    error_type = "invalid"

    def __init__(self, message: str, loc: Location = (), error_type: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.loc = tuple(loc)
        if error_type:
            self.error_type = error_type

    def body(self) -> dict[str, Any]:
        """The JSON body of the response: the message prefixed by the field path."""
        where = ".".join(str(part) for part in self.loc)
        return {
            "error": f"{where}: {self.message}" if where else self.message,
            "detail": [
                {"loc": list(self.loc), "msg": self.message, "type": self.error_type}
            ],
        }


class RequestError(ServingFailure, ValueError):
    """The request is well-formed JSON but asks for something the service refuses."""


class AuthenticationError(ServingFailure, PermissionError):
    """No bearer token, or a token that matches no configured token."""

    status_code = 401
    error_type = "unauthenticated"


class AuthorizationError(ServingFailure, PermissionError):
    """A valid token whose role or schools do not cover the request."""

    status_code = 403
    error_type = "forbidden"


class NotFoundError(ServingFailure, LookupError):
    """A school, KPI or student the request names is not in the scored data."""

    status_code = 404
    error_type = "not_found"


class NotReadyError(ServingFailure, RuntimeError):
    """The champion models or the scored files the endpoint needs do not exist yet."""

    status_code = 503
    error_type = "not_ready"
