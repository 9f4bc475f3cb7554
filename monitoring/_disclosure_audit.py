"""An attacker's try at recovering every hidden count from what is published.

What the attacker is assumed to know, cell by cell:

- a shown cell: its count of students who missed the standard, exactly (the page
  shows the rate and the group size, and the two give the count);
- a cell shown as a range (``<5%``): its group size, and that the count lies in
  the range times the group size;
- a suppressed cell: its group size too. We do not publish it, but districts
  publish enrolment by group elsewhere, so the audit is written for an attacker
  who has it. Its count lies anywhere from 0 to the group size.

Every margin (see :mod:`monitoring._cells`) is a linear equation: the parts' counts
sum to the total's count. The hidden counts (suppressed and ranged cells) are
integer unknowns bounded as above; the shown counts are constants. For each hidden
count the audit asks an integer program for its smallest and largest feasible
value. If the two are equal, the count can be worked out from the page, and so
could the rate of every student in the cell: that cell is *recoverable*.

Example: a school of 40 students, 6 missed; girls 22 shown with 4 missed, boys 15
suppressed, non-binary 3 suppressed. The unknowns satisfy b + x = 6 - 4 = 2 with
0 <= b <= 15 and 0 <= x <= 3: b is anywhere in 0..2, so nothing is recoverable. Had
the girls' count been 6, b + x = 0 forces both to 0, and both are recoverable.

Cells with no students carry nothing to protect and are left out.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

from monitoring._cells import cell_name, table_margins

logger = logging.getLogger(__name__)

# Disclosure states of a cell, as written in the ``disclosure`` column.
SHOWN = "shown"
RANGE = "range"
SUPPRESSED = "suppressed"
COMPLEMENTARY = "complementary"
EMPTY = "empty"
HIDDEN = (RANGE, SUPPRESSED, COMPLEMENTARY)


def audit_cells(cells: pd.DataFrame, exact_ranges: bool = False) -> pd.DataFrame:
    """The feasible counts of each hidden cell, given what a table publishes.

    Parameters
    ----------
    cells
        A protected table: the cell columns plus ``disclosure`` and, for ranged
        cells, ``missed_low`` and ``missed_high`` (the count bounds the range
        implies).
    exact_ranges
        Solve for the smallest and largest feasible count of every hidden cell.
        Without it the audit stops, for each cell, as soon as it has seen two
        different feasible counts: the verdict is the same and far fewer integer
        programs are solved.

    Returns
    -------
    pandas.DataFrame
        One row per hidden cell: its key, ``disclosure``, ``feasible_low`` and
        ``feasible_high`` (with ``exact_ranges``, the true bounds; otherwise the
        extremes seen, which lie inside them) and ``recoverable`` (only one count
        is feasible). Empty when the table publishes no counts at all.
    """
    hidden = np.flatnonzero(cells["disclosure"].isin(HIDDEN).to_numpy())
    columns = [
        "school_id",
        "dimension",
        "group",
        "disclosure",
        "feasible_low",
        "feasible_high",
        "recoverable",
    ]
    if len(hidden) == 0 or cells["n_missed"].isna().all():
        return pd.DataFrame(columns=columns)

    low, high = _count_bounds(cells, hidden)
    equations, constants = _margin_equations(cells, hidden)
    truth = cells["n_missed"].to_numpy(dtype=float)[hidden]
    feasible_low, feasible_high = _feasible_ranges(
        _Problem(equations, constants, low, high), truth, exact_ranges
    )
    ranges = cells.iloc[hidden][["school_id", "dimension", "group", "disclosure"]]
    ranges = ranges.assign(
        feasible_low=np.rint(feasible_low).astype(int),
        feasible_high=np.rint(feasible_high).astype(int),
    ).reset_index(drop=True)
    ranges["recoverable"] = ranges["feasible_low"] == ranges["feasible_high"]
    for position in hidden[ranges["recoverable"].to_numpy()]:
        logger.debug("recoverable cell: %s", cell_name(cells, position))
    return ranges[columns]


def _count_bounds(cells: pd.DataFrame, hidden: np.ndarray) -> tuple:
    """What the attacker knows of each hidden count before using the margins."""
    rows = cells.iloc[hidden]
    ranged = (rows["disclosure"] == RANGE).to_numpy()
    if not ranged.any():
        return np.zeros(len(rows)), rows["n_size"].to_numpy(dtype=float)
    low = np.where(ranged, rows["missed_low"].astype(float), 0.0)
    high = np.where(ranged, rows["missed_high"].astype(float), rows["n_size"])
    return low.astype(float), high.astype(float)


def _margin_equations(cells: pd.DataFrame, hidden: np.ndarray) -> tuple:
    """Each margin as ``equations @ hidden_counts == constants``."""
    column_of = {position: column for column, position in enumerate(hidden)}
    counts = cells["n_missed"].to_numpy(dtype=float)
    rows, constants = [], []
    for margin in table_margins(cells):
        signs = [(margin.total, -1.0)] + [(part, 1.0) for part in margin.parts]
        if not any(position in column_of for position, _ in signs):
            continue
        row = np.zeros(len(hidden))
        constant = 0.0
        for position, sign in signs:
            if position in column_of:
                row[column_of[position]] += sign
            else:
                constant -= sign * counts[position]
        rows.append(row)
        constants.append(constant)
    return np.array(rows).reshape(-1, len(hidden)), np.array(constants)


class _Problem:
    """Integer counts within bounds that satisfy the margin equations."""

    def __init__(self, equations, constants, low, high) -> None:
        self.n_unknowns = len(low)
        self.constraints = (
            [LinearConstraint(equations, constants, constants)]
            if len(constants)
            else []
        )
        self.bounds = Bounds(low, high)
        self.integrality = np.ones(self.n_unknowns)

    def extreme(self, objective: np.ndarray) -> np.ndarray:
        """A feasible point that minimises ``objective @ counts``."""
        result = milp(
            objective,
            integrality=self.integrality,
            bounds=self.bounds,
            constraints=self.constraints,
        )
        if result.status != 0:
            raise RuntimeError(
                f"disclosure audit: integer program failed ({result.message}); the "
                "published margins contradict each other"
            )
        return np.rint(result.x)


def _feasible_ranges(
    problem: _Problem, truth: np.ndarray, exact_ranges: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest feasible count of each unknown (or the extremes seen).

    The true counts are one feasible point. Pushing the sum of all counts down and
    up gives two more that usually move most unknowns at once, so only the few
    still pinned at one value need their own minimisation and maximisation.
    """
    seen_low, seen_high = truth.copy(), truth.copy()

    def see(point: np.ndarray) -> None:
        np.minimum(seen_low, point, out=seen_low)
        np.maximum(seen_high, point, out=seen_high)

    if not exact_ranges:
        for sign in (1.0, -1.0):
            see(problem.extreme(np.full(problem.n_unknowns, sign)))
    for unknown in range(problem.n_unknowns):
        if not exact_ranges and seen_low[unknown] < seen_high[unknown]:
            continue
        for sign in (1.0, -1.0):
            objective = np.zeros(problem.n_unknowns)
            objective[unknown] = sign
            see(problem.extreme(objective))
            if not exact_ranges and seen_low[unknown] < seen_high[unknown]:
                break
    return seen_low, seen_high
