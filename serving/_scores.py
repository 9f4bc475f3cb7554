"""The files ``ontrack score`` and ``ontrack publish`` write, read once per (re)load.

The scored snapshot holds one row per ``(student_id, as_of_date, kpi)``; the service
keeps only the latest ``as_of_date`` (the most recent scoring) and indexes it by
``(school_id, kpi)`` in descending risk, so an at-risk list is a slice rather than a
scan. The projections hold one row per ``(school_id, kpi)`` plus the ``district``
roll-up. The public indicators are served exactly as published.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from ._errors import NotFoundError, NotReadyError

logger = logging.getLogger(__name__)

SCORED_SNAPSHOT = Path("scores") / "scored_snapshot.parquet"
STUDENT_SNAPSHOTS = Path("snapshots") / "student_snapshots.parquet"
SCHOOL_PROJECTIONS = Path("scores") / "school_projections.parquet"
PUBLIC_INDICATORS = Path("public") / "indicators.json"
TIER_ORDER = {"high": 0, "moderate": 1, "low": 2}


@dataclass
class ScoredData:
    """The latest scored snapshot and projections, as read from ``<state>``.

    A file that does not exist yet leaves its part empty; the endpoints that need it
    answer 503 and say which command writes it.
    """

    state_dir: Path
    as_of_date: str | None = None
    # (school_id, kpi) -> that school's scored students for the KPI, riskiest first.
    students_by_school_kpi: dict[tuple[str, str], pd.DataFrame] = field(
        default_factory=dict
    )
    projections: pd.DataFrame | None = None
    public_indicators: Any = None
    # The indicator rows the latest scoring read, by student_id: what `explain`
    # reads when a caller names a student instead of sending the record.
    student_snapshots: pd.DataFrame | None = None

    @classmethod
    def load(cls, state_dir: Path) -> ScoredData:
        """Read whichever of the three files exist."""
        data = cls(state_dir)
        scored_path = state_dir / SCORED_SNAPSHOT
        if scored_path.exists():
            data.as_of_date, data.students_by_school_kpi = _index_latest(
                pd.read_parquet(scored_path)
            )
        snapshots_path = state_dir / STUDENT_SNAPSHOTS
        if data.as_of_date is not None and snapshots_path.exists():
            data.student_snapshots = _snapshot_rows_on(
                snapshots_path, dt.date.fromisoformat(data.as_of_date)
            )
        projections_path = state_dir / SCHOOL_PROJECTIONS
        if projections_path.exists():
            data.projections = pd.read_parquet(projections_path)
        indicators_path = state_dir / PUBLIC_INDICATORS
        if indicators_path.exists():
            data.public_indicators = finite_or_null(
                json.loads(indicators_path.read_text(encoding="utf-8"))
            )
        logger.info(
            "loaded scores as of %s: %s (school, kpi) lists, %s projection rows, "
            "public indicators %s",
            data.as_of_date,
            len(data.students_by_school_kpi),
            0 if data.projections is None else len(data.projections),
            "present" if data.public_indicators is not None else "absent",
        )
        return data

    def at_risk(
        self, school_id: str, kpi: str, tier: str | None, top_k: int | None
    ) -> pd.DataFrame:
        """A school's scored students for a KPI, riskiest first.

        ``tier`` keeps that tier only; ``top_k`` keeps the first ``top_k`` rows
        (ties in risk are broken by ``student_id``, so the cut is reproducible).
        """
        if not self.students_by_school_kpi:
            raise NotReadyError(
                f"no scored snapshot at <state>/{SCORED_SNAPSHOT.as_posix()}; "
                "run `ontrack score` first"
            )
        students = self.students_by_school_kpi.get((school_id, kpi))
        if students is None:
            known_schools = {school for school, _ in self.students_by_school_kpi}
            if school_id not in known_schools:
                raise NotFoundError(
                    f"no scored students at school {school_id!r} as of "
                    f"{self.as_of_date}",
                    ("school_id",),
                )
            raise NotFoundError(
                f"KPI {kpi!r} is not scored; scored KPIs: {', '.join(self.kpis())}",
                ("kpi",),
            )
        if tier is not None:
            students = students[students["tier"] == tier]
        if top_k is not None:
            students = students.iloc[:top_k]
        return students

    def student_snapshot(
        self, student_id: str, schools: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """The indicator row of one student as of the latest scoring.

        ``schools`` (a counselor's) words the not-found message the way the
        service words a student of another school, so the two read alike. The
        message never repeats the id: refusals are logged.
        """
        if self.student_snapshots is None:
            raise NotReadyError(
                f"no student snapshots of the latest scoring at "
                f"<state>/{STUDENT_SNAPSHOTS.as_posix()}; run `ontrack features` "
                "and `ontrack score` first"
            )
        if student_id not in self.student_snapshots.index:
            where = f" at schools {', '.join(sorted(schools))}" if schools else ""
            raise NotFoundError(
                f"no such student{where} in the snapshot of {self.as_of_date}",
                ("student_id",),
            )
        row = self.student_snapshots.loc[student_id].to_dict()
        return {"student_id": student_id, **row}

    def kpis(self) -> list[str]:
        """The KPIs present in the scored snapshot."""
        return sorted({kpi for _, kpi in self.students_by_school_kpi})

    def school_projections(
        self, school_id: str | None, kpi: str | None
    ) -> pd.DataFrame:
        """Projection rows of one school (or ``district``), all KPIs or one."""
        if self.projections is None:
            raise NotReadyError(
                f"no school projections at <state>/{SCHOOL_PROJECTIONS.as_posix()}; "
                "run `ontrack score` first"
            )
        rows = self.projections
        if school_id is not None:
            rows = rows[rows["school_id"] == school_id]
            if rows.empty:
                raise NotFoundError(
                    f"no projections for school {school_id!r}", ("school_id",)
                )
        if kpi is not None:
            rows = rows[rows["kpi"] == kpi]
            if rows.empty:
                known = ", ".join(sorted(self.projections["kpi"].unique()))
                raise NotFoundError(
                    f"no projections for KPI {kpi!r}; projected KPIs: {known}",
                    ("kpi",),
                )
        return rows.sort_values(["school_id", "kpi"], kind="stable")

    def indicators(self) -> Any:
        """The published aggregate table, as JSON-ready values."""
        if self.public_indicators is None:
            raise NotReadyError(
                f"no public indicators at <state>/{PUBLIC_INDICATORS.as_posix()}; "
                "run `ontrack publish` first"
            )
        return self.public_indicators


def _index_latest(
    scored: pd.DataFrame,
) -> tuple[str | None, dict[tuple[str, str], pd.DataFrame]]:
    """Keep the latest ``as_of_date`` and split it by ``(school_id, kpi)``."""
    if scored.empty:
        return None, {}
    dates = pd.to_datetime(scored["as_of_date"])
    latest = dates.max()
    scored = scored[dates == latest].sort_values(
        ["school_id", "kpi", "risk", "student_id"],
        ascending=[True, True, False, True],
        kind="stable",
    )
    groups = {
        (str(school_id), str(kpi)): rows.reset_index(drop=True)
        for (school_id, kpi), rows in scored.groupby(
            ["school_id", "kpi"], sort=False, observed=True
        )
    }
    return latest.date().isoformat(), groups


def _snapshot_rows_on(path: Path, as_of_date: dt.date) -> pd.DataFrame:
    """The student snapshot rows of one date, indexed by ``student_id``.

    Only that date's rows are read: a district's file holds every checkpoint.
    """
    rows = pq.read_table(path, filters=[("as_of_date", "==", as_of_date)]).to_pandas()
    return rows.drop_duplicates("student_id", keep="last").set_index("student_id")


def finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_or_null(item) for item in value]
    return value
