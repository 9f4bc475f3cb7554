"""From student-level frames to the audited public indicator rows (pure steps).

For each KPI: this year's cells from the scored snapshot and the snapshot
features, last year's cells from its KPI labels, disclosure control on each; then
the group sizes protected across the KPIs that share them; then per KPI the
projections, the public rows and an audit of exactly those rows; last, an audit of
the sizes all the rows publish together. Nothing here
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
from monitoring._group_sizes import audit_public_sizes, protect_sizes
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


def kpi_cells(
    kpi: KPI,
    scored_students: pd.DataFrame,
    current_snapshots: pd.DataFrame,
    last_year_students: pd.DataFrame | None,
    dimensions: Sequence[str],
    min_n: int,
    school_year: int,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """This year's and last year's cells of one KPI, with its counts protected.

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
    dimensions, min_n
        Protected attributes to break down by, smallest published group.
    school_year
        The current school year, for table names.

    The group sizes are protected afterwards, across the KPIs that share them
    (:func:`monitoring._group_sizes.protect_sizes`).
    """
    status = missed_so_far(current_snapshots.set_index("student_id"), kpi)
    students = scored_students.assign(
        missed_so_far=scored_students["student_id"].map(status).astype(float)
    )
    if kpi.definition == "chronic_absence":
        # A scored student without a snapshot row has no known status; so far they
        # have not missed (the snapshot is where a miss would show).
        students["missed_so_far"] = students["missed_so_far"].fillna(0.0)
    current = protect_cells(
        progress_cells(students, dimensions, "missed_so_far"),
        min_n,
        current_table_name(kpi, school_year),
    )
    last_year = None
    if last_year_students is not None and not last_year_students.empty:
        last_year = protect_cells(
            progress_cells(
                last_year_students.assign(
                    missed=last_year_students["missed"].astype(float)
                ),
                dimensions,
                "missed",
            ),
            min_n,
            last_table_name(kpi, school_year),
        )
    return current, last_year


def current_table_name(kpi: KPI, school_year: int) -> str:
    return f"{kpi.name} {school_year} so far"


def last_table_name(kpi: KPI, school_year: int) -> str:
    return f"{kpi.name} {school_year - 1} outcomes"


def kpi_rows(
    kpi: KPI,
    current: pd.DataFrame,
    last_year: pd.DataFrame | None,
    school_projections: pd.DataFrame | None,
    school_names: Mapping[str, str],
    counts: SuppressionCounts,
    school_year: int,
) -> pd.DataFrame:
    """The audited public rows of one KPI from its fully protected cells.

    ``school_projections`` holds this KPI's rows of the score stage's projections,
    or None; ``counts`` collects the suppression counts of every table.
    """
    current = project_cells(
        current, lambda s: kpi.target_for(None if s == "district" else s)
    )
    if school_projections is not None and not school_projections.empty:
        current = use_school_projections(current, school_projections)
    counts.add(current)
    if last_year is not None:
        counts.add(last_year)

    rows = public_rows(current, last_year, kpi, school_names)
    audit_public_rows(rows, current, "this_year", current_table_name(kpi, school_year))
    if last_year is not None:
        audit_public_rows(
            rows, last_year, "last_year", last_table_name(kpi, school_year)
        )
    logger.info(
        "indicators for %s: %d rows, audit found no recoverable count",
        kpi.name,
        len(rows),
    )
    return rows


def protect_shared_sizes(
    cells_by_kpi: Mapping[str, tuple[pd.DataFrame, pd.DataFrame | None]],
    min_n: int,
    school_year: int,
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame | None]]:
    """Every KPI's cells after the group sizes are protected, measure by measure."""
    kpis = list(cells_by_kpi)
    current = protect_sizes(
        [cells_by_kpi[kpi][0] for kpi in kpis], min_n, f"{school_year} so far"
    )
    with_last = [kpi for kpi in kpis if cells_by_kpi[kpi][1] is not None]
    last = protect_sizes(
        [cells_by_kpi[kpi][1] for kpi in with_last],
        min_n,
        f"{school_year - 1} outcomes",
    )
    last_by_kpi = dict(zip(with_last, last, strict=True))
    return {
        kpi: (table, last_by_kpi.get(kpi))
        for kpi, table in zip(kpis, current, strict=True)
    }


def audit_shared_sizes(
    indicators: pd.DataFrame,
    cells_by_kpi: Mapping[str, tuple[pd.DataFrame, pd.DataFrame | None]],
    min_n: int,
    school_year: int,
) -> None:
    """Audit the group sizes the rows of every KPI publish together."""
    audit_public_sizes(
        indicators,
        {kpi: cells[0] for kpi, cells in cells_by_kpi.items()},
        "this_year",
        min_n,
        f"{school_year} so far",
    )
    audit_public_sizes(
        indicators,
        {kpi: cells[1] for kpi, cells in cells_by_kpi.items() if cells[1] is not None},
        "last_year",
        min_n,
        f"{school_year - 1} outcomes",
    )
    logger.info(
        "group sizes of %d KPIs: audit found no recoverable size", len(cells_by_kpi)
    )
