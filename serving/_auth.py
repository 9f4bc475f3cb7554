"""Bearer tokens, roles and the schools a token may see.

The config stores each token as the SHA-256 digest of its secret (``ontrack token``
makes one); the service hashes the presented secret and compares digests in constant
time. Three roles:

- ``counselor``: student-level data of the schools listed on the token, nothing else;
- ``leader``: everything in the district, and the model reload;
- ``service`` (a dashboard): may score and explain records, and read school risk,
  but not pull lists of students from the scored snapshot.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ontrack.config import Token

from ._errors import AuthenticationError, AuthorizationError

Role = Literal["counselor", "leader", "service"]

# Which roles may call which endpoint; an endpoint not listed needs no token.
ENDPOINT_ROLES: dict[str, frozenset[Role]] = {
    "score": frozenset({"counselor", "leader", "service"}),
    "explain": frozenset({"counselor", "leader", "service"}),
    "at_risk": frozenset({"counselor", "leader"}),
    "school_risk": frozenset({"counselor", "leader", "service"}),
    "reload": frozenset({"leader"}),
}
# The school id of the district-wide roll-up in the projections.
DISTRICT = "district"
_BEARER = "bearer "
_AUTH_LOC = ("header", "authorization")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name, role and (for a counselor) schools."""

    name: str
    role: Role
    schools: frozenset[str] = frozenset()

    def sees_school(self, school_id: str | None) -> bool:
        """Whether student-level data of ``school_id`` may be shown to this caller.

        A counselor sees only the schools on the token; data with no school (or the
        district roll-up) is not theirs either.
        """
        if self.role != "counselor":
            return True
        return school_id is not None and school_id in self.schools


class TokenTable:
    """The configured tokens, looked up by the digest of a presented secret."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self._entries = [(bytes.fromhex(token.sha256), token) for token in tokens]

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, authorization: str | None, endpoint: str) -> Principal:
        """The caller behind an ``Authorization: Bearer <token>`` header value.

        Raises
        ------
        AuthenticationError
            The header is missing, not a bearer token, or matches no token.
        """
        if not authorization:
            raise AuthenticationError(
                f"endpoint {endpoint!r} needs an 'Authorization: Bearer <token>' "
                "header; none was sent",
                _AUTH_LOC,
            )
        if not authorization[: len(_BEARER)].lower() == _BEARER:
            raise AuthenticationError(
                f"endpoint {endpoint!r} needs a bearer token "
                "('Authorization: Bearer <token>'), got another scheme",
                _AUTH_LOC,
            )
        secret = authorization[len(_BEARER) :].strip()
        digest = hashlib.sha256(secret.encode()).digest()
        # Compare against every entry, without stopping at the first match, so the
        # time taken does not tell which entry (if any) matched.
        found = None
        for known, token in self._entries:
            if hmac.compare_digest(digest, known) and found is None:
                found = token
        if found is None:
            raise AuthenticationError(
                "the bearer token matches no token in [serving.tokens] of the config",
                _AUTH_LOC,
            )
        return Principal(found.name, found.role, frozenset(found.schools))


def authorize(principal: Principal, endpoint: str) -> None:
    """Refuse a caller whose role may not use ``endpoint`` at all."""
    allowed = ENDPOINT_ROLES[endpoint]
    if principal.role not in allowed:
        raise AuthorizationError(
            f"token {principal.name!r} has role {principal.role!r}; endpoint "
            f"{endpoint!r} is open to {', '.join(sorted(allowed))}",
            _AUTH_LOC,
        )


def authorize_schools(
    principal: Principal, school_ids: Iterable[str | None], loc: Sequence[str | int]
) -> None:
    """Refuse a counselor asking about a school that is not on their token.

    ``loc`` is the request field holding the school id, for the error message; a
    ``None`` school (a record without ``school_id``) is refused for counselors, since
    nothing shows it is theirs.
    """
    for school_id in school_ids:
        if principal.sees_school(school_id):
            continue
        mine = ", ".join(sorted(principal.schools))
        if school_id is None:
            raise AuthorizationError(
                f"token {principal.name!r} is limited to schools {mine}; every "
                "request item needs a school_id",
                loc,
            )
        raise AuthorizationError(
            f"token {principal.name!r} is limited to schools {mine}; got "
            f"school_id {school_id!r}",
            loc,
        )
