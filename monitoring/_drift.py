"""Drift of the current snapshot against the training reference, column by column.

Evidently's ``DataDriftPreset`` judges each column; we read each column's *test
status* rather than its raw value, because Evidently switches from p-values (drift
below 0.05) to distances (drift at 0.1 or more) above 1,000 rows. Around that call:

- a column empty (all missing) in either frame is not judged (verdict ``empty``)
  and does not count in the share of drifted columns;
- a constant column is judged like any other (two different constants drift);
- categories seen now but never in the reference are listed with the column;
- missing values are left out of the tests, and each column reports its share of
  missing values in both frames;
- a school with fewer students than ``min_school_n`` now or in the reference is
  reported as too small and not flagged.

The share of drifted columns is drifted / judged; the alert is raised when it
reaches the configured share.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

DRIFTED, STABLE, EMPTY, TOO_SMALL, NO_REFERENCE = (
    "drifted",
    "stable",
    "empty",
    "too_small",
    "no_reference",
)
VERDICT_COLUMNS = [
    "column",
    "kind",
    "verdict",
    "method",
    "score",
    "threshold",
    "missing_share_reference",
    "missing_share_current",
    "new_categories",
]


@dataclass(frozen=True)
class DriftResult:
    """Verdicts per column, the share drifted and the Evidently snapshot (for HTML)."""

    columns: pd.DataFrame
    n_reference: int
    n_current: int
    snapshot: object | None

    @property
    def n_judged(self) -> int:
        return int((self.columns["verdict"] != EMPTY).sum())

    @property
    def n_drifted(self) -> int:
        return int((self.columns["verdict"] == DRIFTED).sum())

    @property
    def drift_share(self) -> float:
        return self.n_drifted / self.n_judged if self.n_judged else 0.0


def column_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    for_html: bool = True,
) -> DriftResult:
    """Judge every column of ``current`` against ``reference``.

    Parameters
    ----------
    reference, current
        One row per student snapshot (or scored student); the same columns.
    numeric, categorical
        Columns to judge, by kind. Flags stored as 0/1 floats are numeric.
    for_html
        Run Evidently's ``DataDriftPreset`` report, whose snapshot renders as
        HTML. Without it, each column goes straight to the statistical test the
        preset would pick from Evidently's registry, with the same default
        threshold: the same verdicts without drawing a chart per column, which is
        most of a report's time (for the per-school checks).
    """

    rows = []
    judged_numeric, judged_categorical = [], []
    for column in [*numeric, *categorical]:
        kind = "numeric" if column in numeric else "categorical"
        row = {
            "column": column,
            "kind": kind,
            "verdict": None,
            "method": None,
            "score": None,
            "threshold": None,
            "missing_share_reference": _missing_share(reference, column),
            "missing_share_current": _missing_share(current, column),
            "new_categories": _new_categories(reference, current, column)
            if kind == "categorical"
            else [],
        }
        if row["missing_share_reference"] == 1.0 or row["missing_share_current"] == 1.0:
            row["verdict"] = EMPTY
        else:
            (judged_numeric if kind == "numeric" else judged_categorical).append(column)
        rows.append(row)

    snapshot = None
    judged = [*judged_numeric, *judged_categorical]
    if judged and for_html:
        snapshot, verdicts = _report_verdicts(
            reference, current, judged_numeric, judged_categorical
        )
    elif judged:
        verdicts = _stattest_verdicts(
            reference, current, judged_numeric, judged_categorical
        )
    for row in rows:
        if judged and row["column"] in verdicts:
            row.update(verdicts[row["column"]])
    return DriftResult(
        columns=pd.DataFrame(rows, columns=VERDICT_COLUMNS),
        n_reference=len(reference),
        n_current=len(current),
        snapshot=snapshot,
    )


def school_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    min_school_n: int,
    alert_share: float,
) -> pd.DataFrame:
    """One row per school: its drift share, or why it was not judged.

    A school is judged only when it has at least ``min_school_n`` students both now
    and in the reference; it is flagged when its share of drifted columns reaches
    ``alert_share``.
    """
    rows = []
    reference_by_school = dict(tuple(reference.groupby("school_id")))
    for school_id, students in current.groupby("school_id"):
        school_reference = reference_by_school.get(school_id)
        n_reference = 0 if school_reference is None else len(school_reference)
        row = {
            "school_id": str(school_id),
            "n_current": len(students),
            "n_reference": n_reference,
            "verdict": None,
            "n_judged": 0,
            "n_drifted": 0,
            "drift_share": None,
            "flagged": False,
        }
        if n_reference == 0:
            row["verdict"] = NO_REFERENCE
        elif min(len(students), n_reference) < min_school_n:
            row["verdict"] = TOO_SMALL
        else:
            result = column_drift(
                school_reference, students, numeric, categorical, for_html=False
            )
            row.update(
                n_judged=result.n_judged,
                n_drifted=result.n_drifted,
                drift_share=result.drift_share,
            )
            row["flagged"] = result.drift_share >= alert_share
            row["verdict"] = DRIFTED if row["flagged"] else STABLE
        rows.append(row)
    schools = pd.DataFrame(rows)
    logger.info(
        "school drift: %d schools, %d flagged, %d too small",
        len(schools),
        int(schools["flagged"].sum()) if len(schools) else 0,
        int((schools["verdict"] == TOO_SMALL).sum()) if len(schools) else 0,
    )
    return schools


def _report_verdicts(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
) -> tuple[object, dict[str, dict]]:
    """Run the preset report; its snapshot and each column's verdict."""
    DataDefinition, Dataset, Report, DataDriftPreset = _evidently()
    judged = [*numeric, *categorical]
    definition = DataDefinition(
        numerical_columns=numeric, categorical_columns=categorical
    )
    report = Report([DataDriftPreset(columns=judged)], include_tests=True)
    with _quiet_stattests():
        snapshot = report.run(
            current_data=Dataset.from_pandas(
                _typed(current, categorical, judged), data_definition=definition
            ),
            reference_data=Dataset.from_pandas(
                _typed(reference, categorical, judged), data_definition=definition
            ),
        )
    return snapshot, _test_verdicts(snapshot.dict())


def _stattest_verdicts(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
) -> dict[str, dict]:
    """Each column's verdict from the test Evidently's preset would choose."""
    _evidently()
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    verdicts = {}
    for column in [*numeric, *categorical]:
        kind = ColumnType.Numerical if column in numeric else ColumnType.Categorical
        # As the preset does: infinities count as missing, missing values are left out.
        values = [
            frame[column].replace([np.inf, -np.inf], np.nan).dropna()
            for frame in (reference, current)
        ]
        if kind == ColumnType.Categorical:
            values = [series.astype(str) for series in values]
        stattest = get_stattest(values[0], values[1], kind, None)
        with _quiet_stattests():
            result = stattest(values[0], values[1], kind, None)
        verdicts[column] = {
            "verdict": DRIFTED if result.drifted else STABLE,
            "method": f"{stattest.display_name}",
            "threshold": result.actual_threshold,
            "score": float(result.drift_score),
        }
    return verdicts


@contextmanager
def _quiet_stattests() -> Iterator[None]:
    """Silence scipy's division warnings for a new category or a constant column.

    The expected frequency of a category never seen in the reference is zero; the
    tests still return the right verdict (drifted, or stable for equal constants).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="(divide by zero|invalid value) encountered",
            category=RuntimeWarning,
        )
        yield


def _evidently() -> tuple:
    """Evidently's report classes, imported on first use (it takes seconds).

    Importing evidently 0.7.23 touches ``numpy.core`` (deprecated in NumPy 2) and a
    deprecated litestar function; those warnings are about its code, not ours, so
    they are silenced for the import only.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset
    return DataDefinition, Dataset, Report, DataDriftPreset


def _test_verdicts(snapshot: dict) -> dict[str, dict]:
    """Each column's verdict from its drift test's status (FAIL means drifted)."""
    metrics = {metric["id"]: metric for metric in snapshot["metrics"]}
    verdicts = {}
    for test in snapshot["tests"]:
        params = test["metric_config"]["params"]
        column = params.get("column")
        if column is None:
            continue
        metric = metrics.get(test["metric_config"]["metric_id"], {})
        status = str(getattr(test["status"], "value", test["status"]))
        verdicts[column] = {
            "verdict": DRIFTED if status == "FAIL" else STABLE,
            "method": params.get("method"),
            "threshold": params.get("threshold"),
            "score": float(metric["value"]) if "value" in metric else None,
        }
    return verdicts


def _typed(
    frame: pd.DataFrame, categorical: list[str], columns: list[str]
) -> pd.DataFrame:
    typed = frame[columns].copy()
    for column in categorical:
        typed[column] = (
            typed[column].astype("object").where(typed[column].notna(), None)
        )
    return typed


def _missing_share(frame: pd.DataFrame, column: str) -> float:
    if len(frame) == 0:
        return 1.0
    return float(frame[column].isna().mean())


def _new_categories(
    reference: pd.DataFrame, current: pd.DataFrame, column: str
) -> list:
    seen = set(reference[column].dropna().astype(str))
    return sorted(set(current[column].dropna().astype(str)) - seen)
