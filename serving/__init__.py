"""The prediction service: champion models behind authenticated HTTP endpoints.

``ontrack serve`` runs a BentoML service on 127.0.0.1 for one district. It loads each
KPI's champion once (again on a leader's ``reload``) and answers:

- ``score``: risk, tier, drivers and model version per KPI for a batch of student
  snapshot records (up to 10,000; missing values allowed, bad values refused with
  the field named);
- ``explain``: one student's contributions by domain and feature, per KPI;
- ``at_risk``: a school's students for a KPI from the latest scored snapshot;
- ``school_risk``: projected year-end KPI rates of a school or the district;
- ``public_indicators``: the published, suppressed aggregate table (no token);
- BentoML's ``/healthz``, ``/livez``, ``/readyz``, ``/metrics`` and ``/docs.json``.

Callers present a bearer token from ``[serving.tokens]``: a counselor sees the
schools on the token, a leader the district, a service (dashboard) token may score,
explain and read school risk. Each response carrying student-level data appends a
line to ``<state>/audit.log``: who, which endpoint, which schools, how many
students, when; never a student's id or name.
"""

from ._auth import ENDPOINT_ROLES, Principal, TokenTable
from ._errors import (
    AuthenticationError,
    AuthorizationError,
    NotFoundError,
    NotReadyError,
    RequestError,
)
from ._runner import run_server, server_command

__all__ = [
    "ENDPOINT_ROLES",
    "AuthenticationError",
    "AuthorizationError",
    "NotFoundError",
    "NotReadyError",
    "Principal",
    "RequestError",
    "TokenTable",
    "run_server",
    "server_command",
]
