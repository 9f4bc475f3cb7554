"""An attacker's try at recovering every hidden count from what is published.

What the attacker is assumed to know, cell by cell:

- a shown cell: its count of students who missed the standard, exactly (the page
  shows the rate and the group size, and the two give the count);
- a cell shown as a range (``<5%``): that the count lies in the range times the
  group size;
- a suppressed cell: that its count lies anywhere from 0 to the group size.

The group sizes of ranged and suppressed cells are not published, and
:mod:`monitoring._group_sizes` proves a reader cannot work them out from the
published ones. This audit still hands every size to the attacker: districts
publish enrolment by group elsewhere, and an attacker who has it is the stronger
one for the counts.

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
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

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
    # A cell with no students holds nothing to protect: its count is 0 to anyone.
    hidden = np.flatnonzero(
        (cells["disclosure"].isin(HIDDEN) & (cells["n_size"] > 0)).to_numpy()
    )
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


def is_pinned(cells: pd.DataFrame, position: int) -> bool:
    """Whether the hidden count at ``position`` has only one feasible value.

    The one-cell version of :func:`audit_cells`, for trying out a suppression.
    """
    hidden = np.flatnonzero(
        (cells["disclosure"].isin(HIDDEN) & (cells["n_size"] > 0)).to_numpy()
    )
    column = int(np.searchsorted(hidden, position))
    if column >= len(hidden) or hidden[column] != position:
        return False
    low, high = _count_bounds(cells, hidden)
    equations, constants = _margin_equations(cells, hidden)
    problem = _Problem(equations, constants, low, high)
    objective = np.zeros(len(hidden))
    objective[column] = 1.0
    smallest = problem.extreme(objective)[column]
    largest = problem.extreme(-objective)[column]
    return smallest == largest


def _count_bounds(cells: pd.DataFrame, hidden: np.ndarray) -> tuple:
    """What the attacker knows of each hidden count before using the margins."""
    rows = cells.iloc[hidden]
    ranged = (rows["disclosure"] == RANGE).to_numpy()
    if not ranged.any():
        return np.zeros(len(rows)), rows["n_size"].to_numpy(dtype=float)
    low = np.where(ranged, rows["missed_low"].astype(float), 0.0)
    high = np.where(ranged, rows["missed_high"].astype(float), rows["n_size"])
    return low.astype(float), high.astype(float)


def _margin_equations(
    cells: pd.DataFrame, hidden: np.ndarray, counted: str = "n_missed"
) -> tuple:
    """Each margin as ``equations @ hidden_counts == constants``.

    ``counted`` is the column that adds up along the margins: the counts of students
    who missed the standard, or the group sizes themselves.
    """
    column_of = {position: column for column, position in enumerate(hidden)}
    counts = cells[counted].to_numpy(dtype=float)
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
        self.equations = equations if len(constants) else None
        self.constants = constants if len(constants) else None
        self.low, self.high = low, high

    def extreme(self, objective: np.ndarray) -> np.ndarray:
        """An integer feasible point that minimises ``objective @ counts``.

        The linear relaxation is solved first: it is several times faster, and when
        its optimal vertex is integral (as it is for most margin tables) that vertex
        is also the integer optimum. Otherwise the integer program decides.
        """
        relaxed = linprog(
            objective,
            A_eq=self.equations,
            b_eq=self.constants,
            bounds=np.column_stack([self.low, self.high]),
            method="highs",
        )
        self._check(relaxed)
        if np.allclose(relaxed.x, np.rint(relaxed.x), atol=1e-7):
            return np.rint(relaxed.x)
        constraints = (
            [LinearConstraint(self.equations, self.constants, self.constants)]
            if self.equations is not None
            else []
        )
        exact = milp(
            objective,
            integrality=np.ones(self.n_unknowns),
            bounds=Bounds(self.low, self.high),
            constraints=constraints,
        )
        self._check(exact)
        return np.rint(exact.x)

    @staticmethod
    def _check(result) -> None:
        if result.status != 0:
            raise RuntimeError(
                f"disclosure audit: solver failed ({result.message}); the published "
                "margins contradict each other"
            )


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


# Per measure: the status and range-text columns of a public row, the fields that
# must be empty when the row is suppressed, and those that must be empty when it is
# shown only as a range.
MEASURE_COLUMNS = {
    "this_year": {
        "status": "status",
        "size": "n_size",
        "text": "rate_so_far_text",
        "suppressed_empty": (
            "n_size",
            "n_missed",
            "rate_so_far",
            "projected_rate",
            "projected_low",
            "projected_high",
            "on_track",
            "p_on_track",
        ),
        "range_empty": ("n_size", "n_missed", "rate_so_far"),
    },
    "last_year": {
        "status": "last_year_status",
        "size": "last_year_n_size",
        "text": "last_year_text",
        "suppressed_empty": ("last_year_n_size", "last_year_rate"),
        "range_empty": ("last_year_n_size", "last_year_rate"),
    },
}


class PublishedDisclosureError(ValueError):
    """The rows about to be published give away a count they should hide."""


def bounds_from_text(text: str, n_size: int) -> tuple[int, int]:
    """The counts a published range text stands for: ``"<10%"`` of 50 is 0 to 4."""
    if text.startswith("<"):
        cutoff = int(text[1:].rstrip("%"))
        return 0, (cutoff * n_size - 1) // 100
    if text.startswith(">"):
        cutoff = int(text[1:].rstrip("%"))
        return cutoff * n_size // 100 + 1, n_size
    raise PublishedDisclosureError(f"range text {text!r} is neither '<x%' nor '>x%'")


def audit_public_rows(
    public: pd.DataFrame, cells: pd.DataFrame, measure: str, table: str
) -> pd.DataFrame:
    """Audit exactly what one table's public rows say, as an attacker would read it.

    The attacker's cells are rebuilt from the published rows: a shown row's count
    is taken as known (the page gives its rate and size), a ranged row's bounds
    come from its published text, a suppressed row is an unknown. Group sizes of
    suppressed rows come from ``cells`` (the attacker is assumed to know them, see
    the module notes), and so do the true counts, which serve only as one feasible
    point.

    Parameters
    ----------
    public
        The public rows of one KPI, keyed by ``school_id``, ``dimension``, ``group``.
    cells
        The protected cells the rows were made from.
    measure
        ``"this_year"`` or ``"last_year"``: which columns of the rows to read.
    table
        Name for errors.

    Raises
    ------
    PublishedDisclosureError
        When a suppressed or ranged row carries a value it must not, or when a
        hidden count can be worked out.
    """
    spec = MEASURE_COLUMNS[measure]
    keys = pd.MultiIndex.from_frame(cells[["school_id", "dimension", "group"]])
    rows = public.set_index(["school_id", "dimension", "group"]).reindex(keys)
    # A cell with no public row at all is as unknown to a reader as a suppressed one.
    status = rows[spec["status"]].fillna("suppressed").to_numpy()
    for field_set, state in (
        ("suppressed_empty", "suppressed"),
        ("range_empty", "range"),
    ):
        for column in spec[field_set]:
            leaked = (status == state) & rows[column].notna().to_numpy()
            if leaked.any():
                key = rows.index[np.flatnonzero(leaked)[0]]
                raise PublishedDisclosureError(
                    f"{table}: the {state} row {key[0]}, {key[1]}={key[2]} publishes "
                    f"{column}; it must be empty"
                )

    attacker = cells[["school_id", "dimension", "group", "n_size", "n_missed"]]
    attacker = attacker.reset_index(drop=True).assign(
        disclosure=np.select(
            [status == "suppressed", status == "range", status == "no students"],
            [SUPPRESSED, RANGE, EMPTY],
            SHOWN,
        )
    )
    lows, highs = [], []
    for text, n_size, disclosure in zip(
        rows[spec["text"]], attacker["n_size"], attacker["disclosure"], strict=True
    ):
        low, high = (pd.NA, pd.NA)
        if disclosure == RANGE:
            low, high = bounds_from_text(str(text), int(n_size))
        lows.append(low)
        highs.append(high)
    attacker["missed_low"] = pd.array(lows, dtype="Int64")
    attacker["missed_high"] = pd.array(highs, dtype="Int64")
    ranges = audit_cells(attacker)
    if not ranges.empty and ranges["recoverable"].any():
        first = ranges[ranges["recoverable"]].iloc[0]
        raise PublishedDisclosureError(
            f"{table}: the count of {first['school_id']}, "
            f"{first['dimension']}={first['group']} ({first['disclosure']}) can be "
            f"worked out from the published rows, "
            f"{int(ranges['recoverable'].sum())} such cell(s) in all; nothing was "
            "published"
        )
    return ranges
