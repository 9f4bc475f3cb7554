"""From student-level frames to the audited public indicator rows (pure steps).

For each KPI: this year's cells from the scored snapshot and the snapshot
features, last year's cells from its KPI labels, disclosure control on each, the
projections, the public rows, and an audit of exactly those rows. Nothing here
reads or writes a file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from monitoring._disclosure import protect_cells
from monitoring._disclosure_audit import (
    COMPLEMENTARY,
    RANGE,
    SUPPRESSED,
    audit_public_rows,
)
from monitoring._indicators import public_rows
from monitoring._progress import (
    missed_so_far,
    progress_cells,
    project_cells,
    use_school_projections,
)
from ontrack.config import KPI

logger = logging.getLogger(__name__)


@dataclass
class SuppressionCounts:
    """Cells hidden across every published table, by reason."""

    primary: int = 0
    complementary: int = 0
    ranged: int = 0

    def add(self, cells: pd.DataFrame) -> None:
        counts = cells["disclosure"].value_counts()
        self.primary += int(counts.get(SUPPRESSED, 0))
        self.complementary += int(counts.get(COMPLEMENTARY, 0))
        self.ranged += int(counts.get(RANGE, 0))


def kpi_indicators(
    kpi: KPI,
    scored_students: pd.DataFrame,
    current_snapshots: pd.DataFrame,
    last_year_students: pd.DataFrame | None,
    school_projections: pd.DataFrame | None,
    dimensions: Sequence[str],
    min_n: int,
    school_names: Mapping[str, str],
    counts: SuppressionCounts,
    school_year: int,
) -> pd.DataFrame:
    """The audited public rows of one KPI.

    Parameters
    ----------
    kpi
        The KPI.
    scored_students
        This KPI's rows of the scored snapshot: ``student_id``, ``school_id``,
        ``risk`` and the protected attributes.
    current_snapshots
        The student snapshots at the same as-of date (for the counts so far).
    last_year_students
        One row per student with last year's label: ``school_id``, ``missed`` and
        the protected attributes; None when no outcomes are known.
    school_projections
        This KPI's rows of the score stage's projections, or None.
    dimensions, min_n, school_names
        Protected attributes to break down by, smallest published group, names.
    counts
        Collects the suppression counts of every table.
    school_year
        The current school year, for table names.
    """
    status = missed_so_far(current_snapshots.set_index("student_id"), kpi)
    students = scored_students.assign(
        missed_so_far=scored_students["student_id"].map(status).astype(float)
    )
    if kpi.definition == "chronic_absence":
        # A scored student without a snapshot row has no known status; so far they
        # have not missed (the snapshot is where a miss would show).
        students["missed_so_far"] = students["missed_so_far"].fillna(0.0)
    current_table = f"{kpi.name} {school_year} so far"
    current = protect_cells(
        progress_cells(students, dimensions, "missed_so_far"), min_n, current_table
    )
    current = project_cells(
        current, lambda s: kpi.target_for(None if s == "district" else s)
    )
    if school_projections is not None and not school_projections.empty:
        current = use_school_projections(current, school_projections)
    counts.add(current)

    last_year = None
    if last_year_students is not None and not last_year_students.empty:
        last_table = f"{kpi.name} {school_year - 1} outcomes"
        last_year = protect_cells(
            progress_cells(
                last_year_students.assign(
                    missed=last_year_students["missed"].astype(float)
                ),
                dimensions,
                "missed",
            ),
            min_n,
            last_table,
        )
        counts.add(last_year)

    rows = public_rows(current, last_year, kpi, school_names)
    audit_public_rows(rows, current, "this_year", current_table)
    if last_year is not None:
        audit_public_rows(rows, last_year, "last_year", last_table)
    logger.info(
        "indicators for %s: %d rows, audit found no recoverable count",
        kpi.name,
        len(rows),
    )
    return rows
