"""Scoring: risk, tier and drivers for snapshot rows, in process and fast.

A :class:`Scorer` holds one KPI's booster and its :class:`ModelSpec`. Risk for a million
students is one ``predict`` of the raw margin and a sigmoid; drivers add exact TreeSHAP
(``pred_contrib``), a vectorised top-k and one plain-words phrase per driver. Drivers
can be limited to the students whose tier is not ``low`` (``drivers="flagged"``) when
only the lists need them; :meth:`Scorer.explain` answers for any one student later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from training import _drivers
from training._model import ModelSpec, feature_matrix, record_matrix

logger = logging.getLogger(__name__)

TIERS = ("high", "moderate", "low")
SMALL_BATCH = 2_000
DriverMode = Literal["all", "flagged", "none"]
# Context columns carried from the snapshot into the scored frame when present.
CONTEXT_COLUMNS = ("student_id", "as_of_date", "school_year", "school_id", "grade")


@dataclass
class ScoredRows:
    """Risk, tier and drivers of a batch of students, in the batch's row order.

    ``driver_texts``, ``driver_features`` and ``driver_domains`` are ``(n, k)``
    arrays, one column per driver slot, with empty strings where a student has
    fewer drivers or was not given any.
    """

    risk: np.ndarray
    tier: np.ndarray
    driver_texts: np.ndarray
    driver_features: np.ndarray
    driver_domains: np.ndarray


class Scorer:
    """One KPI's champion model, ready to score snapshot rows.

    Parameters
    ----------
    booster
        The native LightGBM booster (raw margin in log-odds).
    spec
        Features, calibration, domains, templates and reference medians.
    model_version
        The registry version, written beside every score.
    tier_high, tier_moderate
        Cut-offs on the calibrated risk: at or above ``tier_high`` is ``high``, at or
        above ``tier_moderate`` is ``moderate``, the rest ``low``.
    top_drivers
        Drivers per student.
    n_jobs
        Threads for LightGBM's predict and TreeSHAP.
    """

    def __init__(
        self,
        booster,
        spec: ModelSpec,
        model_version: str,
        tier_high: float = 0.5,
        tier_moderate: float = 0.25,
        top_drivers: int = 3,
        n_jobs: int = 1,
    ) -> None:
        self.booster = booster
        self.spec = spec
        self.model_version = str(model_version)
        self.tier_high = tier_high
        self.tier_moderate = tier_moderate
        self.top_drivers = top_drivers
        self.n_jobs = n_jobs
        self._eligible = _drivers.driver_eligible(spec)
        self._references = _drivers.ReferenceTable(spec)
        self._phrasebook = _drivers.Phrasebook(spec)

    @property
    def kpi(self) -> str:
        """The KPI this model scores."""
        return self.spec.kpi

    def applies(self, student_snapshots: pd.DataFrame) -> np.ndarray:
        """Which rows the KPI applies to: grades that ever had a label for it.

        ELA proficiency, for one, is labelled in tested grades only; a kindergartner
        has no risk of missing it. Rows without a grade are kept.
        """
        if "grade" not in student_snapshots:
            return np.ones(len(student_snapshots), dtype=bool)
        grade = pd.to_numeric(student_snapshots["grade"], errors="coerce")
        return self.applies_to_grades(grade.to_numpy(dtype=float, na_value=np.nan))

    def applies_to_grades(self, grades: Sequence[float | None]) -> np.ndarray:
        """:meth:`applies` for a sequence of grades (None or NaN: unknown, kept)."""
        grade = np.asarray(grades, dtype=float)
        if not self.spec.grades:
            return np.ones(grade.size, dtype=bool)
        return np.isnan(grade) | np.isin(grade, self.spec.grades)

    def margin(self, student_snapshots: pd.DataFrame) -> np.ndarray:
        """The booster's raw margin (log-odds) per row."""
        features = feature_matrix(student_snapshots, self.spec)
        return self._margin(features)

    def _threads(self, n_rows: int) -> int:
        # Threads cost more than they give on small batches: one student took 60 ms
        # on two busy threads against 12 ms on one.
        return self.n_jobs if n_rows >= SMALL_BATCH else 1

    def _margin(self, features: np.ndarray) -> np.ndarray:
        if features.shape[0] == 0:
            # LightGBM divides by the number of rows; no rows, no margins.
            return np.empty(0)
        return self.booster.predict(
            features, raw_score=True, num_threads=self._threads(features.shape[0])
        )

    def risk(self, student_snapshots: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of missing the KPI's standard, per row."""
        return self.spec.calibration.risk(self.margin(student_snapshots))

    def tier(self, risk: np.ndarray) -> np.ndarray:
        """``high``, ``moderate`` or ``low`` per risk (cut-offs inclusive)."""
        return np.select(
            [risk >= self.tier_high, risk >= self.tier_moderate],
            ["high", "moderate"],
            default="low",
        ).astype(object)

    def score(
        self, student_snapshots: pd.DataFrame, drivers: DriverMode = "all"
    ) -> pd.DataFrame:
        """One row per snapshot row: context, ``kpi``, ``risk``, ``tier``, drivers.

        Driver columns are ``driver_i`` (plain words), ``driver_i_feature`` and
        ``driver_i_domain`` for i = 1..``top_drivers``; empty strings where a student
        has fewer risk-raising features, or where ``drivers`` left them out
        (``"flagged"``: only tiers high and moderate; ``"none"``: nobody).
        """
        started = time.perf_counter()
        scored_rows = self._score(
            feature_matrix(student_snapshots, self.spec),
            _checkpoints(student_snapshots),
            drivers,
        )
        columns = {
            column: student_snapshots[column].to_numpy()
            for column in CONTEXT_COLUMNS
            if column in student_snapshots
        }
        columns["kpi"] = np.full(scored_rows.risk.size, self.kpi, dtype=object)
        columns["risk"] = scored_rows.risk
        columns["tier"] = scored_rows.tier
        for slot in range(self.top_drivers):
            columns[f"driver_{slot + 1}"] = scored_rows.driver_texts[:, slot]
            columns[f"driver_{slot + 1}_feature"] = scored_rows.driver_features[:, slot]
            columns[f"driver_{slot + 1}_domain"] = scored_rows.driver_domains[:, slot]
        columns["model_version"] = np.full(
            scored_rows.risk.size, self.model_version, dtype=object
        )
        # One frame built at once: adding columns one by one cost more than the
        # model for a single student.
        scored = pd.DataFrame(columns)
        logger.debug(
            "scored %s rows for %s in %.2f s",
            len(scored),
            self.kpi,
            time.perf_counter() - started,
        )
        return scored

    def score_records(
        self, records: Sequence[Mapping[str, Any]], drivers: DriverMode = "all"
    ) -> ScoredRows:
        """Risk, tier and drivers of plain records (dicts of snapshot columns).

        The same figures :meth:`score` gives for a frame of the same rows, without
        building one: the prediction service scores a few students per request,
        where pandas cost several times the model.
        """
        return self._score(
            record_matrix(records, self.spec),
            [record.get("checkpoint") for record in records],
            drivers,
        )

    def _score(
        self, features: np.ndarray, checkpoints: Sequence, drivers: DriverMode
    ) -> ScoredRows:
        margin = self._margin(features)
        risk = self.spec.calibration.risk(margin)
        tier = self.tier(risk)
        rows = {
            "all": np.arange(len(risk)),
            "flagged": np.flatnonzero(tier != "low"),
            "none": np.arange(0),
        }[drivers]
        shape = (risk.size, self.top_drivers)
        texts, names, domains = (np.full(shape, "", dtype=object) for _ in range(3))
        if rows.size:
            subset = features[rows]
            contrib = _drivers.contributions(
                self.booster, subset, self._threads(subset.shape[0])
            )
            top = _drivers.top_drivers(contrib, self._eligible, self.top_drivers)
            references = self._references.rows([checkpoints[row] for row in rows])
            for slot, (text, name, domain) in enumerate(
                self._phrasebook.slots(top, subset, references)
            ):
                texts[rows, slot] = text
                names[rows, slot] = name
                domains[rows, slot] = domain
        return ScoredRows(risk, tier, texts, names, domains)

    def explain(self, student_snapshot: Mapping | pd.DataFrame) -> dict:
        """One student's risk with contributions by domain and by feature.

        Returns ``kpi``, ``model_version``, ``risk``, ``tier``, ``base_value`` and
        ``margin`` (log-odds; the contributions add up to the margin),
        ``by_domain`` (domain -> contribution) and ``by_feature`` (one dict per
        feature: ``feature``, ``domain``, ``contribution``, ``value``,
        ``reference``, ``protected``), largest first. Protected attributes appear
        here only if the model uses them, flagged, and are never drivers.
        """
        if isinstance(student_snapshot, Mapping):
            features = record_matrix([student_snapshot], self.spec)
            checkpoints = [student_snapshot.get("checkpoint")]
        elif len(student_snapshot) == 1:
            features = feature_matrix(student_snapshot, self.spec)
            checkpoints = _checkpoints(student_snapshot)
        else:
            raise ValueError(
                f"explain takes one student snapshot row, got {len(student_snapshot)}"
            )
        contrib = _drivers.contributions(self.booster, features, 1)
        references = self._references.rows(checkpoints)
        explanation = _drivers.explain_row(
            contrib[0], features[0], references[0], self.spec
        )
        risk = self.spec.calibration.risk(np.array([explanation["margin"]]))
        return {
            "kpi": self.kpi,
            "model_version": self.model_version,
            "risk": float(risk[0]),
            "tier": str(self.tier(risk)[0]),
            **explanation,
        }


def _checkpoints(student_snapshots: pd.DataFrame) -> list:
    if "checkpoint" in student_snapshots:
        return student_snapshots["checkpoint"].tolist()
    return [_drivers.ALL_CHECKPOINTS] * len(student_snapshots)
