"""What each endpoint does, free of BentoML: authenticate, authorize, answer, audit.

:class:`OnTrackApp` holds the district config, the token table, the audit log, one
scorer per KPI (the champions) and the latest scored files. The BentoML service in
``_service.py`` is a thin shell that hands each request to one method here and turns
the failures of ``_errors.py`` into 4xx responses; keeping the logic here lets one
endpoint's work be shared without one API calling another over HTTP.

A scorer is whatever ``training`` loads for a KPI's champion: it has ``kpi``,
``model_version``, ``score_records(records)`` (risk, tier and drivers as arrays,
see ``training.ScoredRows``) and ``explain(record) -> dict``; records are plain
dicts of snapshot columns.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel

from ontrack.config import DistrictConfig

from ._audit import AuditLog
from ._auth import DISTRICT, Principal, TokenTable, authorize, authorize_schools
from ._errors import AuthorizationError, NotFoundError, NotReadyError, RequestError
from ._schemas import (
    NOT_APPLICABLE,
    AtRiskResponse,
    AtRiskStudent,
    Driver,
    ExplainResponse,
    KpiExplanation,
    ReloadResponse,
    SchoolProjection,
    SchoolRiskResponse,
    finite,
)
from ._scores import ScoredData

if TYPE_CHECKING:
    # Only a type here: the scorers come from training when the champions load.
    from training import ScoredRows

logger = logging.getLogger(__name__)

AUDIT_LOG = "audit.log"
# What ``ontrack publish`` writes under <state>/public, served at GET /public/<name>.
PUBLIC_DIR = Path("public")
PUBLISHED_FILES = ("index.html", "indicators.json", "indicators.csv")
# Touched by a reload; every worker process compares its time with the time of its
# own last load before each request, so one leader's reload reaches all workers.
RELOAD_MARK = Path("bentoml") / "reloaded"


class Scorer(Protocol):
    kpi: str
    model_version: str

    def score_records(self, records: Sequence[Mapping[str, Any]]) -> ScoredRows: ...

    def applies_to_grades(self, grades: Sequence[float | None]) -> np.ndarray: ...

    def explain(self, record: Mapping[str, Any]) -> dict: ...


ScorerLoader = Callable[[DistrictConfig], Mapping[str, Scorer]]


class OnTrackApp:
    """The service's state and the work behind every endpoint.

    Parameters
    ----------
    config
        The district config (tokens, limits, paths, KPIs).
    load_scorers
        Loads the champion scorer of every KPI; called at start and on reload.
    """

    def __init__(self, config: DistrictConfig, load_scorers: ScorerLoader) -> None:
        self.config = config
        self.tokens = TokenTable(config.serving.tokens)
        self.audit = AuditLog(config.state_dir / AUDIT_LOG)
        self._load_scorers = load_scorers
        self._reload_lock = threading.RLock()
        self._mark = config.state_dir / RELOAD_MARK
        self._loaded_mark = self._mark_time()
        self.scorers: Mapping[str, Scorer] = {}
        self.scores = ScoredData(config.state_dir)
        self.reload_models()

    # -- loading -----------------------------------------------------------------

    def reload_models(self) -> ReloadResponse:
        """Load the champions and the scored files again (swapped in atomically)."""
        started = time.perf_counter()
        with self._reload_lock:
            scorers = dict(self._load_scorers(self.config))
            scores = ScoredData.load(self.config.state_dir)
            self.scorers, self.scores = scorers, scores
        versions = self.model_versions()
        logger.info(
            "loaded %s champions (%s) in %.1f s",
            len(scorers),
            ", ".join(f"{kpi} v{version}" for kpi, version in versions.items()),
            time.perf_counter() - started,
        )
        unserved = [kpi.name for kpi in self.config.kpis if kpi.name not in scorers]
        if unserved:
            logger.warning(
                "no champion for %s: not served until `ontrack train` registers one",
                ", ".join(unserved),
            )
        return ReloadResponse(
            model_versions=versions,
            as_of_date=scores.as_of_date,
        )

    def follow_reloads(self) -> None:
        """Load again if another worker reloaded since this one last loaded."""
        mark = self._mark_time()
        if mark <= self._loaded_mark:
            return
        with self._reload_lock:
            if mark > self._loaded_mark:
                self._loaded_mark = mark
                self.reload_models()

    def _mark_time(self) -> int:
        try:
            return self._mark.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def model_versions(self) -> dict[str, str]:
        return {kpi: scorer.model_version for kpi, scorer in self.scorers.items()}

    def is_ready(self) -> bool:
        """Ready once a KPI has a champion to score with.

        Not every KPI need have one: training skips a KPI with too few labels (a
        small district's course failures, say), and the others are still worth
        serving; the KPIs left out are logged at each load, and asking for one is
        a 404 naming the KPIs that can be scored.
        """
        return bool(self.scorers)

    # -- endpoints ---------------------------------------------------------------

    def score(
        self,
        authorization: str | None,
        records: Sequence[BaseModel],
        kpi: str | None = None,
    ) -> bytes:
        """The JSON body of a :class:`ScoreResponse`, serialised here.

        The score response is the one that grows to 10,000 students times every
        KPI: it is built from plain lists and dicts and written by ``json.dumps``,
        which is several times cheaper than building and dumping the models (the
        models still document its shape; a test holds the two together). ``kpi``
        scores that KPI only.
        """
        principal = self._caller(authorization, "score")
        school_ids = [record.school_id for record in records]
        authorize_schools(principal, school_ids, ("records", "school_id"))
        self._check_count(records)
        scorers = self._scorers() if kpi is None else {kpi: self._scorer(kpi)}
        snapshot_rows = [dict(record) for record in records]
        grades = [row.get("grade") for row in snapshot_rows]
        kpis = [
            {
                "kpi": kpi,
                "model_version": scorer.model_version,
                "students": _student_scores(
                    scorer.score_records(snapshot_rows),
                    snapshot_rows,
                    scorer.applies_to_grades(grades),
                ),
            }
            for kpi, scorer in scorers.items()
        ]
        self.audit.record(principal, "score", school_ids, len(records))
        body = {"n_students": len(records), "kpis": kpis}
        return json.dumps(body, allow_nan=False, separators=(",", ":")).encode()

    def explain(
        self,
        authorization: str | None,
        record: BaseModel | None,
        kpi: str | None,
        student_id: str | None = None,
    ) -> ExplainResponse:
        """One student's contributions, from a sent record or a named student.

        A ``student_id`` is explained as of the latest scoring, from the indicator
        row that scoring read; a counselor may name only students of their schools.
        """
        principal = self._caller(authorization, "explain")
        if (record is None) == (student_id is None):
            raise RequestError(
                "give one of record (one student's snapshot row) or student_id (a "
                "student of the latest scoring), not both and not neither",
                ("record",),
                "missing",
            )
        if record is not None:
            authorize_schools(principal, [record.school_id], ("record", "school_id"))
            snapshot_row = dict(record)
        else:
            snapshot_row = self.scores.student_snapshot(student_id, principal.schools)
            if not principal.sees_school(snapshot_row.get("school_id")):
                # The same answer as for an id nobody has: a counselor learns
                # neither the student's school nor that the id exists elsewhere.
                raise NotFoundError(
                    f"no such student at schools {', '.join(sorted(principal.schools))}"
                    f" in the snapshot of {self.scores.as_of_date}",
                    ("student_id",),
                )
        scorers = self._scorers()
        if kpi is not None:
            scorers = {kpi: self._scorer(kpi)}
        grade = [snapshot_row.get("grade")]
        kpis = [
            KpiExplanation(**_finite_explanation(scorer.explain(snapshot_row)))
            if scorer.applies_to_grades(grade)[0]
            else KpiExplanation(
                kpi=kpi_name,
                model_version=scorer.model_version,
                risk=None,
                tier=NOT_APPLICABLE,
                base_value=None,
                margin=None,
                by_domain={},
                by_feature=[],
            )
            for kpi_name, scorer in scorers.items()
        ]
        school_id = snapshot_row.get("school_id")
        self.audit.record(principal, "explain", [school_id], 1)
        return ExplainResponse(
            student_id=snapshot_row.get("student_id"), school_id=school_id, kpis=kpis
        )

    def at_risk(
        self,
        authorization: str | None,
        school_id: str,
        kpi: str,
        tier: str | None,
        top_k: int | None,
    ) -> AtRiskResponse:
        principal = self._caller(authorization, "at_risk")
        authorize_schools(principal, [school_id], ("school_id",))
        students = self.scores.at_risk(school_id, kpi, tier, top_k)
        top_drivers = self.config.model.top_drivers
        response = AtRiskResponse(
            school_id=school_id,
            kpi=kpi,
            as_of_date=self.scores.as_of_date,
            model_version=_versions(students),
            n_students=len(students),
            students=[
                AtRiskStudent(
                    student_id=row["student_id"],
                    grade=None if pd.isna(row.get("grade")) else int(row["grade"]),
                    risk=row["risk"],
                    tier=row["tier"],
                    drivers=_drivers(row, top_drivers),
                )
                for row in students.to_dict("records")
            ],
        )
        self.audit.record(principal, "at_risk", [school_id], len(students))
        return response

    def school_risk(
        self, authorization: str | None, school_id: str | None, kpi: str | None
    ) -> SchoolRiskResponse:
        principal = self._caller(authorization, "school_risk")
        if school_id is None and principal.role == "counselor":
            # No school_id means every school and the district, which a counselor
            # may not see; say what to send rather than quote a school never sent.
            raise AuthorizationError(
                f"token {principal.name!r} is a counselor's, who may see only their "
                f"schools ({', '.join(sorted(principal.schools))}): give school_id",
                ("school_id",),
            )
        authorize_schools(principal, [school_id or DISTRICT], ("school_id",))
        rows = self.scores.school_projections(school_id, kpi)
        return SchoolRiskResponse(
            projections=[
                SchoolProjection(
                    **{
                        key: (finite(value) if isinstance(value, float) else value)
                        for key, value in row.items()
                        if key in SchoolProjection.model_fields
                    }
                )
                for row in rows.to_dict("records")
            ]
        )

    def public_indicators(self) -> Any:
        return self.scores.indicators()

    def public_file(self, name: str) -> Path:
        """A file ``ontrack publish`` wrote, to be served as it is (no token).

        Only the published files are served, read at each request so a new
        publication shows without a reload.
        """
        if name not in PUBLISHED_FILES:
            raise NotFoundError(
                f"no public file {name!r}; published files: "
                f"{', '.join(PUBLISHED_FILES)}",
                ("path",),
            )
        path = self.config.state_dir / PUBLIC_DIR / name
        if not path.is_file():
            raise NotReadyError(
                f"nothing published at <state>/{PUBLIC_DIR.as_posix()}/{name}; "
                "run `ontrack publish` first"
            )
        return path

    def reload(self, authorization: str | None) -> ReloadResponse:
        self._caller(authorization, "reload")
        with self._reload_lock:
            response = self.reload_models()
            self._mark.parent.mkdir(parents=True, exist_ok=True)
            self._mark.touch()
            self._loaded_mark = self._mark_time()
        return response

    # -- helpers -----------------------------------------------------------------

    def _caller(self, authorization: str | None, endpoint: str) -> Principal:
        principal = self.tokens.authenticate(authorization, endpoint)
        authorize(principal, endpoint)
        return principal

    def _check_count(self, records: Sequence[BaseModel]) -> None:
        limit = self.config.serving.max_records
        if len(records) > limit:
            raise RequestError(
                f"{len(records)} records sent; at most {limit} per call "
                "([serving] max_records)",
                ("records",),
                "too_long",
            )

    def _scorers(self) -> Mapping[str, Scorer]:
        if not self.scorers:
            raise NotReadyError(
                "no champion model is registered for any KPI; run `ontrack train`"
            )
        return self.scorers

    def _scorer(self, kpi: str) -> Scorer:
        scorers = self._scorers()
        if kpi not in scorers:
            raise NotFoundError(
                f"no champion model for KPI {kpi!r}; KPIs with one: "
                f"{', '.join(sorted(scorers))}",
                ("kpi",),
            )
        return scorers[kpi]


def _drivers(row: Mapping[str, Any], top_drivers: int) -> list[Driver]:
    """The non-empty driver slots of one scored row, in order."""
    drivers = []
    for slot in range(1, top_drivers + 1):
        feature = row.get(f"driver_{slot}_feature")
        if not feature or pd.isna(feature):
            continue
        drivers.append(
            Driver(
                feature=feature,
                domain=row[f"driver_{slot}_domain"],
                text=row[f"driver_{slot}"],
            )
        )
    return drivers


def _student_scores(
    scored_rows: ScoredRows,
    snapshot_rows: Sequence[Mapping[str, Any]],
    applies: np.ndarray,
) -> list[dict]:
    """One :class:`StudentScore`-shaped dict per record, in the records' order.

    A record the KPI does not apply to (its grade never had the KPI's label) gets
    no risk, tier ``not_applicable`` and no drivers.
    """
    return [
        {
            "student_id": row.get("student_id"),
            "school_id": row.get("school_id"),
            "risk": finite(risk) if applies_here else None,
            "tier": tier if applies_here else NOT_APPLICABLE,
            "drivers": [
                {"feature": feature, "domain": domain, "text": text}
                for feature, domain, text in zip(features, domains, texts, strict=True)
                if feature and applies_here
            ],
        }
        for row, applies_here, risk, tier, features, domains, texts in zip(
            snapshot_rows,
            applies.tolist(),
            scored_rows.risk.tolist(),
            scored_rows.tier.tolist(),
            scored_rows.driver_features.tolist(),
            scored_rows.driver_domains.tolist(),
            scored_rows.driver_texts.tolist(),
            strict=True,
        )
    ]


def _versions(students: pd.DataFrame) -> str:
    """The model version of a list (one scoring run has one); versions joined if not."""
    if students.empty or "model_version" not in students:
        return ""
    return ",".join(sorted(students["model_version"].astype(str).unique()))


def _finite_explanation(explanation: dict) -> dict:
    """NaN values (a missing feature) become None so the JSON holds null."""
    clean = dict(explanation)
    clean["by_feature"] = [
        {
            key: (finite(value) if isinstance(value, float | np.floating) else value)
            for key, value in item.items()
        }
        for item in explanation.get("by_feature", [])
    ]
    clean["by_domain"] = {
        domain: finite(value) or 0.0
        for domain, value in explanation.get("by_domain", {}).items()
    }
    return clean
