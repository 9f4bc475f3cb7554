"""The BentoML service: one thin API method per endpoint over :class:`OnTrackApp`.

``bentoml serve serving._service:OnTrackService`` imports this module; the service
finds its district config through the environment (see ``_runner.py``), loads each
KPI's champion once at start-up and keeps it until a restart or a leader's
``reload``. Every endpoint is a POST with a JSON body, as BentoML does; BentoML adds
``/healthz``, ``/livez``, ``/readyz`` (ready once every KPI has a champion),
``/metrics`` and the OpenAPI document at ``/docs.json``. The published page and its
files are also plain GETs under ``/public/`` (no token).

A student-level request without a known bearer token is refused with 401 before
its body is read (``_gate.py``). Input that breaks the record schema is refused by
BentoML before our code runs (HTTP 400; ``_middleware.py`` makes its ``error``
name the fields); everything else
we refuse is a ``ServingFailure`` turned into the same body shape here. BentoML
would log each refused input with a full traceback at ERROR, and the traceback
quotes the offending values; a log filter replaces it with one WARNING line naming
only the fields.
"""

from __future__ import annotations

import logging
import os
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import FileResponse, JSONResponse, Response

from features import FEATURE_CATALOG, feature_catalog_for

from ._app import OnTrackApp
from ._errors import ServingFailure
from ._gate import RequestGate
from ._middleware import FieldNamingMiddleware
from ._runner import (
    CONFIG_FILE_ENV,
    CONFIG_SNAPSHOT_ENV,
    WORKERS_ENV,
    config_from_environment,
)
from ._schemas import (
    MAX_RECORDS,
    AtRiskResponse,
    ExplainResponse,
    ReloadResponse,
    SchoolRiskResponse,
    ScoreResponse,
    Tier,
    record_model,
)

logger = logging.getLogger(__name__)

_BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"
_AUTHORIZATION = "authorization"
_LOGGED_FIELDS = 8


def _load_champions(config):
    """Each KPI's champion scorer, predicting on one thread per request.

    One thread: most requests are a few students, where starting threads costs more
    than it saves, and the worker serves requests one at a time anyway.
    """
    from training import load_champions

    return load_champions(config, n_jobs=1)


def _record_model():
    """The record the endpoints take: that of the served district's snapshots.

    BentoML reads the API signatures when it imports this module, so the record
    schema is fixed here, from the config in the environment (a flat student
    table's stored catalog, see ``features.feature_catalog_for``, and the district's
    school-year start). Imported with no config named (to read the OpenAPI document
    in a test, say), the records follow the event-level catalog and an August start.
    """
    if not (os.environ.get(CONFIG_SNAPSHOT_ENV) or os.environ.get(CONFIG_FILE_ENV)):
        return record_model(FEATURE_CATALOG)
    config = config_from_environment()
    return record_model(
        feature_catalog_for(config.state_dir), config.district.school_year_start
    )


StudentRecord = _record_model()
Records = Annotated[
    list[StudentRecord],  # type: ignore[valid-type]
    Field(min_length=1, max_length=MAX_RECORDS),
]
TopK = Annotated[int, Field(ge=1, le=MAX_RECORDS)]
Id = Annotated[str, Field(min_length=1, max_length=64)]


class _Request(BaseModel):
    """A request body: a field the endpoint does not take is refused, not ignored.

    BentoML would build each body from the method's signature and drop unknown
    fields, so a dashboard asking ``at_risk`` for ``teir: "high"`` would get every
    tier back without a word.
    """

    model_config = ConfigDict(extra="forbid")


class ScoreRequest(_Request):
    records: Records
    kpi: Id | None = None


class ExplainRequest(_Request):
    record: StudentRecord | None = None  # type: ignore[valid-type]
    student_id: Id | None = None
    kpi: Id | None = None


class AtRiskRequest(_Request):
    school_id: Id
    kpi: Id
    tier: Tier | None = None
    top_k: TopK | None = None


class SchoolRiskRequest(_Request):
    school_id: Id | None = None
    kpi: Id | None = None


class NoFields(_Request):
    """A body with no fields: ``{}`` (or none at all)."""


class _QuietValidationErrors(logging.Filter):
    """One INFO line naming the fields, instead of a traceback quoting values.

    Record positions are folded (``records.*.attendance_rate``) and at most
    ``_LOGGED_FIELDS`` fields are named, so a bad batch of 10,000 records still
    logs one short line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            fields = sorted(
                {
                    ".".join(
                        "*" if isinstance(part, int) else str(part) for part in loc
                    )
                    for loc in (item["loc"] for item in error.errors())
                }
            )
            if len(fields) > _LOGGED_FIELDS:
                more = len(fields) - _LOGGED_FIELDS
                fields = [*fields[:_LOGGED_FIELDS], f"and {more} more"]
            record.msg = "refused invalid input on %s: %s error(s) at %s"
            record.args = (
                record.args[0] if record.args else "?",
                error.error_count(),
                ", ".join(fields) or "the body",
            )
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.INFO
            record.levelname = "INFO"
        return True


def _quiet_bentoml_validation_logs() -> None:
    target = logging.getLogger(_BENTOML_HTTP_LOGGER)
    if not any(isinstance(item, _QuietValidationErrors) for item in target.filters):
        target.addFilter(_QuietValidationErrors())


def _json(body: bytes) -> Response:
    """A body the app already serialised; BentoML would dump a model twice."""
    return Response(body, media_type="application/json")


# The public page, its JSON and its CSV as plain GETs, for a browser or a district's
# web site; BentoML's own endpoints are POSTs. No OpenAPI document of its own: the
# three files are the publication, not an API.
public_files = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@bentoml.service(
    name="ontrack",
    # One worker by default; ONTRACK_SERVING_WORKERS=2 uses both cores of a small
    # machine (each worker holds its own copy of the models).
    workers=int(os.environ.get(WORKERS_ENV, "1")),
    traffic={"timeout": 120},
)
@bentoml.asgi_app(public_files, path="/public")
class OnTrackService:
    """OnTrack's prediction service for one district."""

    def __init__(self) -> None:
        # The worker is an entry point: BentoML configured its own loggers, ours
        # start at INFO (one line per load, reload and refusal).
        logging.getLogger(__package__).setLevel(logging.INFO)
        _quiet_bentoml_validation_logs()
        self.app = OnTrackApp(config_from_environment(), _load_champions)
        RequestGate.use(self.app.tokens)

    def __is_ready__(self) -> bool:
        return self.app.is_ready()

    def _answer(self, ctx: bentoml.Context, endpoint: str, work) -> Any:
        """Run ``work``; a :class:`ServingFailure` becomes its 4xx or 503 body.

        A reload by another worker is picked up first.
        """
        try:
            self.app.follow_reloads()
            return work(ctx.request.headers.get(_AUTHORIZATION))
        except ServingFailure as failure:
            logger.info(
                "refused %s with %s: %s", endpoint, failure.status_code, failure
            )
            ctx.response.status_code = failure.status_code
            return JSONResponse(failure.body(), status_code=failure.status_code)

    @bentoml.api(input_spec=ScoreRequest)
    def score(
        self, records: Records, ctx: bentoml.Context, kpi: Id | None = None
    ) -> ScoreResponse:
        """Risk, tier, drivers and model version per KPI (or one) for records."""
        return self._answer(
            ctx, "score", lambda auth: _json(self.app.score(auth, records, kpi))
        )

    @bentoml.api(input_spec=ExplainRequest)
    def explain(
        self,
        ctx: bentoml.Context,
        record: StudentRecord | None = None,  # type: ignore[valid-type]
        student_id: Id | None = None,
        kpi: Id | None = None,
    ) -> ExplainResponse:
        """One student's contributions by domain and feature, per KPI (or one KPI).

        Send the student's snapshot ``record``, or a ``student_id`` to explain as of
        the latest scoring.
        """
        return self._answer(
            ctx,
            "explain",
            lambda auth: self.app.explain(auth, record, kpi, student_id),
        )

    @bentoml.api(input_spec=AtRiskRequest)
    def at_risk(
        self,
        school_id: Id,
        kpi: Id,
        ctx: bentoml.Context,
        tier: Tier | None = None,
        top_k: TopK | None = None,
    ) -> AtRiskResponse:
        """A school's students for a KPI, latest scored snapshot, riskiest first."""
        return self._answer(
            ctx,
            "at_risk",
            lambda auth: self.app.at_risk(auth, school_id, kpi, tier, top_k),
        )

    @bentoml.api(input_spec=SchoolRiskRequest)
    def school_risk(
        self,
        ctx: bentoml.Context,
        school_id: Id | None = None,
        kpi: Id | None = None,
    ) -> SchoolRiskResponse:
        """Projected year-end KPI rates of one school, or of all and the district."""
        return self._answer(
            ctx,
            "school_risk",
            lambda auth: self.app.school_risk(auth, school_id, kpi),
        )

    @bentoml.api(input_spec=NoFields)
    def public_indicators(self, ctx: bentoml.Context) -> Any:
        """The published aggregate indicators (small cells suppressed); no token."""
        return self._answer(
            ctx, "public_indicators", lambda auth: self.app.public_indicators()
        )

    @public_files.get("/")
    @public_files.get("/{name}")
    def public_file(self, name: str = "index.html") -> Response:
        """GET /public/ (the page), /public/indicators.json or .csv; no token."""
        try:
            return FileResponse(self.app.public_file(name))
        except ServingFailure as failure:
            logger.info("refused public/%s with %s", name, failure.status_code)
            return JSONResponse(failure.body(), status_code=failure.status_code)

    @bentoml.api(input_spec=NoFields)
    def reload(self, ctx: bentoml.Context) -> ReloadResponse:
        """Load the champions and scored files again (leaders only)."""
        return self._answer(ctx, "reload", lambda auth: self.app.reload(auth))


OnTrackService.add_asgi_middleware(FieldNamingMiddleware)
OnTrackService.add_asgi_middleware(RequestGate)
