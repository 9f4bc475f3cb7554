"""Group sizes: the size of a suppressed group must stay as hidden as its rate.

A suppressed row publishes no size, and neither does a row shown as a range (see
:mod:`monitoring._indicators`). Sizes add up along the same margins as the counts
(:mod:`monitoring._cells`): a school's groups of one dimension to its all-students
size, the schools to the district. So a hidden size can fall out of the shown ones
by subtraction, as the district's 680 Asian students minus the 19 schools that show
theirs gave the 9 of the one school that was suppressed.

And KPIs that cover the same students publish the same sizes (chronic absence and
course failure both count every student scored): a size hidden in one table and
shown in the other is published. Tables whose cells all have the same sizes are
therefore audited as one; the relation is read from the true sizes, so it holds
exactly when the published numbers obey it.

What a reader knows of a cell's size, table by table:

- a shown row: the size, exactly;
- a row shown as a range: the band its cutoff belongs to (with ``min_n`` 10,
  ``"<20%"`` means 10 to 30 students, ``"<10%"`` 31 to 60, see
  :func:`size_band`);
- a suppressed row: at least 1 student (a group with none says "no students") and
  at most the district's size;
- a row with no students: 0.

The audit solves the size margins for the smallest and largest size of each cell
whose size no tied table publishes; a size suppressed in every tied table that only
one value fits is *recoverable*, and the publish fails. Protection (before the
audit) hides more sizes until none is: a shown cell on a margin of the pinned one is
suppressed in every tied table, the one that frees it first, smallest first.

Notes
-----
Two relations are left out, each because it can only narrow a size from one side
and so pins it only together with a margin the audit already solves: the counts of
students who missed (a group's size is at least its count) and nested populations
(the students tested in a school are some of the students enrolled there). Last
year's groups are other students in part: no relation to this year's is assumed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from monitoring._cells import CELL_KEY, cell_name, table_margins
from monitoring._disclosure import (
    LARGE_GROUP_CUTOFF,
    RATE_CUTOFFS,
    DisclosureError,
    _candidates,
    rate_cutoff,
)
from monitoring._disclosure_audit import (
    COMPLEMENTARY,
    EMPTY,
    MEASURE_COLUMNS,
    RANGE,
    SHOWN,
    SUPPRESSED,
    PublishedDisclosureError,
    _feasible_ranges,
    _margin_equations,
    _Problem,
)

logger = logging.getLogger(__name__)

MAX_SIZE_ROUNDS = 200
MAX_SIZE_TRIALS = 40
PUBLIC_STATES = {
    "shown": SHOWN,
    "range": RANGE,
    "suppressed": SUPPRESSED,
    "no students": EMPTY,
}


def size_band(cutoff: int, min_n: int) -> tuple[int, float]:
    """The group sizes a range's cutoff stands for: 20% is ``min_n`` to 30 students.

    The upper end of the largest band is unbounded (``inf``).
    """
    smallest = min_n
    for largest, band_cutoff in RATE_CUTOFFS:
        if band_cutoff == cutoff:
            return smallest, float(largest)
        smallest = max(largest + 1, min_n)
    if cutoff == LARGE_GROUP_CUTOFF:
        return smallest, np.inf
    raise ValueError(
        f"range cutoff {cutoff}% is not one of the published cutoffs "
        f"{[c for _, c in RATE_CUTOFFS] + [LARGE_GROUP_CUTOFF]}"
    )


def protect_sizes(
    tables: Sequence[pd.DataFrame], min_n: int, name: str
) -> list[pd.DataFrame]:
    """Suppress more cells until no hidden group size can be worked out.

    Parameters
    ----------
    tables
        The protected cells of every KPI for one measure (this year, or last year),
        as :func:`monitoring.protect_cells` returns them.
    min_n
        Smallest published group size (it sets the lowest band of a range).
    name
        Name used in log lines and errors (``"2026 so far"``).

    Returns
    -------
    list of pandas.DataFrame
        The tables, in order, with shown cells turned ``complementary`` where a
        size had to be hidden. Hiding a count only widens what a reader can
        infer, so the tables' own audits still hold.

    Raises
    ------
    DisclosureError
        When a size stays recoverable.
    """
    protected = [table.copy() for table in tables]
    for tie in tied_tables(protected):
        _protect_tie([protected[index] for index in tie], min_n, name)
    return protected


def tied_tables(tables: Sequence[pd.DataFrame]) -> list[list[int]]:
    """Indices of tables with the same size in every cell (a missing cell is 0)."""
    ties: dict[frozenset, list[int]] = {}
    for index, table in enumerate(tables):
        occupied = table[table["n_size"] > 0]
        signature = frozenset(
            zip(
                occupied["school_id"],
                occupied["dimension"],
                occupied["group"],
                occupied["n_size"].astype(int),
                strict=True,
            )
        )
        ties.setdefault(signature, []).append(index)
    return list(ties.values())


def audit_public_sizes(
    public: pd.DataFrame,
    cells_by_kpi: dict[str, pd.DataFrame],
    measure: str,
    min_n: int,
    name: str,
) -> None:
    """Fail when the published rows of every KPI give away a hidden group size.

    The reader's knowledge is rebuilt from the rows alone: a published size is
    known, a range row's text gives its band, a suppressed or missing row is at
    least 1. ``cells_by_kpi`` (the protected cells behind the rows) gives the true
    sizes, which serve only to tie tables and as one feasible point.

    Raises
    ------
    PublishedDisclosureError
        Naming the first recoverable size and how many there are.
    """
    spec = MEASURE_COLUMNS[measure]
    kpis = list(cells_by_kpi)
    knowledge = []
    for kpi in kpis:
        cells = cells_by_kpi[kpi].reset_index(drop=True)
        keys = pd.MultiIndex.from_frame(cells[CELL_KEY])
        rows = public[public["kpi"] == kpi].set_index(CELL_KEY).reindex(keys)
        states = rows[spec["status"]].map(PUBLIC_STATES).fillna(SUPPRESSED)
        published = rows[spec["size"]].notna().to_numpy()
        states = np.where((states == SHOWN) & ~published, SUPPRESSED, states)
        cutoffs = [
            _text_cutoff(text) if state == RANGE else 0
            for text, state in zip(rows[spec["text"]], states, strict=True)
        ]
        knowledge.append(_knowledge(cells, states, np.array(cutoffs), min_n))
    for tie in tied_tables([cells_by_kpi[kpi] for kpi in kpis]):
        merged = _merge([knowledge[index] for index in tie])
        pinned = _recoverable(merged)
        if pinned:
            raise PublishedDisclosureError(
                f"{name}: the size of {cell_name(merged, pinned[0])} "
                f"({', '.join(kpis[index] for index in tie)}) can be worked out from "
                f"the published sizes, {len(pinned)} such cell(s) in all; nothing "
                "was published"
            )


def _text_cutoff(text: str) -> int:
    """``"<20%"`` and ``">80%"`` both have the cutoff 20."""
    value = int(str(text)[1:].rstrip("%"))
    return value if str(text).startswith("<") else 100 - value


def _knowledge(
    cells: pd.DataFrame, states: np.ndarray, cutoffs: np.ndarray, min_n: int
) -> pd.DataFrame:
    """One table's cells with the bounds a reader has on each size."""
    n_size = cells["n_size"].to_numpy(dtype=float)
    low, high = np.ones(len(cells)), np.full(len(cells), np.inf)
    known = (states == SHOWN) | (states == EMPTY)
    low[known], high[known] = n_size[known], n_size[known]
    for position in np.flatnonzero(states == RANGE):
        low[position], high[position] = size_band(int(cutoffs[position]), min_n)
    return cells[CELL_KEY].assign(
        n_size=n_size,
        size_low=low,
        size_high=high,
        suppressed=np.isin(states, [SUPPRESSED, COMPLEMENTARY]),
    )


def _merge(knowledge: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """What tied tables tell together: the narrowest bounds, suppressed in all."""
    stacked = pd.concat(knowledge, ignore_index=True)
    merged = stacked.groupby(CELL_KEY, sort=False, as_index=False).agg(
        n_size=("n_size", "first"),
        size_low=("size_low", "max"),
        size_high=("size_high", "min"),
        suppressed=("suppressed", "all"),
    )
    # A cell found in one tied table only has no students in the others.
    cells_per_key = stacked.groupby(CELL_KEY, sort=False).size().to_numpy()
    absent = cells_per_key < len(knowledge)
    merged.loc[absent, ["size_low", "size_high"]] = 0.0
    merged.loc[absent, "suppressed"] = False
    return merged


def _problem(merged: pd.DataFrame) -> tuple[np.ndarray, _Problem | None]:
    """The unknown sizes' positions and the integer program they satisfy (if any)."""
    largest = merged["n_size"].max()
    low = merged["size_low"].to_numpy(dtype=float)
    high = np.minimum(merged["size_high"].to_numpy(dtype=float), largest)
    unknown = np.flatnonzero(low < high)
    if len(unknown) == 0:
        return unknown, None
    equations, constants = _margin_equations(merged, unknown, counted="n_size")
    return unknown, _Problem(equations, constants, low[unknown], high[unknown])


def _recoverable(merged: pd.DataFrame) -> list[int]:
    """Positions of sizes suppressed in every tied table that one value fits."""
    unknown, problem = _problem(merged)
    suppressed = merged["suppressed"].to_numpy()
    # Known sizes and zeros hold nothing to protect; a suppressed cell is never 0.
    exposed = [int(p) for p in np.setdiff1d(np.flatnonzero(suppressed), unknown)]
    if len(unknown) == 0:
        return exposed
    truth = merged["n_size"].to_numpy(dtype=float)[unknown]
    low, high = _feasible_ranges(problem, truth, exact_ranges=False)
    pinned = unknown[(low == high) & suppressed[unknown]]
    return sorted(exposed + [int(p) for p in pinned])


def _is_pinned(merged: pd.DataFrame, position: int) -> bool:
    unknown, problem = _problem(merged)
    columns = np.flatnonzero(unknown == position)
    if len(columns) == 0:
        return True
    objective = np.zeros(len(unknown))
    objective[columns[0]] = 1.0
    smallest = problem.extreme(objective)[columns[0]]
    return smallest == problem.extreme(-objective)[columns[0]]


def _protect_tie(tables: list[pd.DataFrame], min_n: int, name: str) -> None:
    """Hide sizes in every table of one tie until none is recoverable (in place)."""
    for _ in range(MAX_SIZE_ROUNDS):
        merged = _merged_from_cells(tables, min_n)
        pinned = _recoverable(merged)
        if not pinned:
            return
        position = pinned[0]
        candidates = _size_candidates(merged, position)
        if not candidates:
            break
        chosen = candidates[0]
        for candidate in candidates[:MAX_SIZE_TRIALS]:
            trial = merged.copy()
            trial.loc[candidate, ["size_low", "size_high"]] = (1.0, np.inf)
            if not _is_pinned(trial, position):
                chosen = candidate
                break
        _hide(tables, merged.loc[chosen, CELL_KEY].tolist())
        logger.debug(
            "%s: size of %s hidden to protect %s",
            name,
            cell_name(merged, chosen),
            cell_name(merged, position),
        )
    merged = _merged_from_cells(tables, min_n)
    pinned = _recoverable(merged)
    if pinned:
        names = "; ".join(cell_name(merged, p) for p in pinned[:5])
        raise DisclosureError(
            f"{name}: {len(pinned)} hidden group size(s) can be worked out from the "
            f"published sizes even after extra suppression ({names}); nothing was "
            "published"
        )


def _merged_from_cells(tables: list[pd.DataFrame], min_n: int) -> pd.DataFrame:
    knowledge = []
    for table in tables:
        states = table["disclosure"].to_numpy()
        cutoffs = np.array([rate_cutoff(int(n)) for n in table["n_size"]], dtype=int)
        knowledge.append(
            _knowledge(table.reset_index(drop=True), states, cutoffs, min_n)
        )
    return _merge(knowledge)


def _size_candidates(merged: pd.DataFrame, position: int) -> list[int]:
    """Cells with a known size around ``position``, nearest margins first."""
    known = (merged["size_low"] == merged["size_high"]).to_numpy()
    n_size = merged["n_size"].to_numpy()
    states = np.where(known, SHOWN, SUPPRESSED)
    states[known & (n_size == 0)] = EMPTY
    return _candidates(position, table_margins(merged), states, n_size)


def _hide(tables: list[pd.DataFrame], key: list) -> None:
    """Suppress one cell in every table where its size shows."""
    for table in tables:
        match = (
            (table["school_id"] == key[0])
            & (table["dimension"] == key[1])
            & (table["group"] == key[2])
            & (table["disclosure"] == SHOWN)
        )
        table.loc[match, "disclosure"] = COMPLEMENTARY
        if "rate_text" in table.columns:
            table.loc[match, "rate_text"] = "suppressed"
