"""Disclosure control: which cells of a public table are shown, ranged or suppressed.

The rules, applied to each published table (one KPI, one measure) before anything
is written:

1. **Primary suppression.** A cell with fewer than ``min_n`` students (but at
   least one) is suppressed: neither its count, its group size nor its rate is
   published. A cell with no students is marked empty.
2. **Ranges near 0% and 100%.** A rate within ``cutoff`` of 0% or 100% is shown as
   a range (``<5%``, ``>95%``) rather than a number, and its count and exact rate
   are withheld. The cutoff shrinks as the group grows, after the top and bottom
   coding the U.S. Department of Education applies to small-group percentages
   (EDFacts/NCES): up to 30 students 20%, up to 60 students 10%, up to 300
   students 5%, beyond that 1%. A rate exactly at a cutoff is shown.
3. **Complementary suppression.** A margin (see :mod:`monitoring._cells`) whose
   cells include exactly one hidden cell (suppressed or ranged) would let anyone
   subtract it out of the total: the smallest shown cell of that margin (a part,
   not the total, unless no part is left) is suppressed too. This repeats over
   every margin, both along the group dimensions and across schools to the
   district, until nothing changes.
4. **Audit and repair.** Two hidden cells in a margin are not always enough: if
   both counts are 0 (or both full), the margin still gives them away, and so
   can a chain of margins. The audit (:mod:`monitoring._disclosure_audit`)
   solves for every hidden count; for the first one it can pin down, the
   smallest shown cell among that cell's margins (or, when they have none left,
   among the margins one step further along the hidden cells) is suppressed, and
   rules 3 and 4 run again. A table that stays recoverable fails with
   :class:`DisclosureError`.

The audit proves this for counts of students; the group sizes are protected and
audited afterwards across the KPIs that share them
(:mod:`monitoring._group_sizes`). Projected rates are not outcomes, but they are
sums of model risks and add up along the margins as counts do (one student's cell
would show that student's risk): they follow the suppression of the cell they
belong to, so a hidden cell's projection cannot be had by one subtraction either.
The audit does not check them.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from monitoring._cells import cell_name, check_cells, table_margins
from monitoring._disclosure_audit import (
    COMPLEMENTARY,
    EMPTY,
    HIDDEN,
    RANGE,
    SHOWN,
    SUPPRESSED,
    audit_cells,
    is_pinned,
)

logger = logging.getLogger(__name__)

# (largest group size, cutoff in whole percent): a rate below the cutoff is shown
# as "<cutoff%", one above 100 - cutoff as ">(100 - cutoff)%".
RATE_CUTOFFS = ((30, 20), (60, 10), (300, 5))
LARGE_GROUP_CUTOFF = 1
MAX_REPAIR_ROUNDS = 50
# Candidate cells tried (one audit of the pinned count each) before settling for the
# nearest smallest one.
MAX_REPAIR_TRIALS = 40


class DisclosureError(ValueError):
    """A public table would let a reader work out a suppressed count."""


def rate_cutoff(n_size: int) -> int:
    """The top/bottom coding cutoff, in whole percent, for a group of ``n_size``."""
    for largest, cutoff in RATE_CUTOFFS:
        if n_size <= largest:
            return cutoff
    return LARGE_GROUP_CUTOFF


def missed_range(n_size: int, n_missed: int) -> tuple[int, int] | None:
    """The count range a ranged rate stands for, or None when the rate is shown.

    Example: 2 of 50 students is 4%, below the 10% cutoff for 31-60 students, so
    it is shown as "<10%", which stands for 0 to 4 students (5 of 50 would be
    exactly 10% and shown as a number). Integer arithmetic keeps the edges exact.
    """
    cutoff = rate_cutoff(n_size)
    if 100 * n_missed < cutoff * n_size:
        return 0, (cutoff * n_size - 1) // 100
    if 100 * n_missed > (100 - cutoff) * n_size:
        return (100 - cutoff) * n_size // 100 + 1, n_size
    return None


def protect_cells(cells: pd.DataFrame, min_n: int, table: str) -> pd.DataFrame:
    """Apply the disclosure rules to one table and prove the result with the audit.

    Parameters
    ----------
    cells
        One row per cell: ``school_id`` (``"district"`` for the roll-up),
        ``dimension`` and ``group`` (``"all"``/``"all"`` for all students),
        ``n_size``, ``n_missed`` (may be all missing when not yet known).
    min_n
        Smallest group size that is published.
    table
        Name used in log lines and errors (``"chronic_absence 2026 so far"``).

    Returns
    -------
    pandas.DataFrame
        ``cells`` plus ``disclosure`` (``shown``, ``range``, ``suppressed``,
        ``complementary`` or ``empty``), ``missed_low`` and ``missed_high`` (the
        counts a ranged cell stands for) and ``rate_text`` (what the page shows).
    """
    check_cells(cells, table)
    protected = cells.reset_index(drop=True).copy()
    protected["disclosure"] = _primary(protected, min_n)
    _add_ranges(protected)
    margins = table_margins(protected)
    _complement(protected, margins)
    for _ in range(MAX_REPAIR_ROUNDS):
        recoverable = _recoverable_positions(protected)
        if not recoverable:
            break
        if not _repair(protected, margins, recoverable):
            break
        _complement(protected, margins)
    recoverable = _recoverable_positions(protected)
    if recoverable:
        names = "; ".join(cell_name(protected, p) for p in recoverable[:5])
        raise DisclosureError(
            f"{table}: {len(recoverable)} hidden count(s) can be worked out from the "
            f"published cells even after extra suppression ({names}); "
            "nothing was published"
        )
    protected["rate_text"] = _rate_texts(protected)
    counts = protected["disclosure"].value_counts()
    logger.info(
        "protected %s: %d cells, %d suppressed, %d complementary, %d ranged",
        table,
        len(protected),
        counts.get(SUPPRESSED, 0),
        counts.get(COMPLEMENTARY, 0),
        counts.get(RANGE, 0),
    )
    return protected


def _primary(cells: pd.DataFrame, min_n: int) -> np.ndarray:
    n_size = cells["n_size"].to_numpy()
    disclosure = np.full(len(cells), SHOWN, dtype=object)
    disclosure[n_size < min_n] = SUPPRESSED
    disclosure[n_size == 0] = EMPTY
    return disclosure


def _add_ranges(cells: pd.DataFrame) -> None:
    """Mark shown cells whose rate is near 0% or 100%, with the counts they span."""
    cells["missed_low"] = pd.array([pd.NA] * len(cells), dtype="Int64")
    cells["missed_high"] = pd.array([pd.NA] * len(cells), dtype="Int64")
    if cells["n_missed"].isna().all():
        return
    for position in np.flatnonzero(cells["disclosure"].to_numpy() == SHOWN):
        n_size = int(cells.at[position, "n_size"])
        span = missed_range(n_size, int(cells.at[position, "n_missed"]))
        if span is None:
            continue
        if span[0] == span[1]:
            # A range that stands for one count would publish it: suppress instead.
            cells.at[position, "disclosure"] = SUPPRESSED
            continue
        cells.at[position, "disclosure"] = RANGE
        cells.at[position, "missed_low"], cells.at[position, "missed_high"] = span


def _complement(cells: pd.DataFrame, margins: list) -> None:
    """Rule 3: give every margin with exactly one hidden cell a second one."""
    changed = True
    while changed:
        changed = False
        disclosure = cells["disclosure"].to_numpy()
        for margin in margins:
            hidden = [p for p in margin.members if disclosure[p] in HIDDEN]
            if len(hidden) != 1:
                continue
            chosen = _smallest_shown(cells, margin)
            if chosen is None:
                continue
            disclosure[chosen] = COMPLEMENTARY
            changed = True
        cells["disclosure"] = disclosure


def _smallest_shown(cells: pd.DataFrame, margin) -> int | None:
    """The shown part with the fewest students (first in table order on ties)."""
    disclosure = cells["disclosure"].to_numpy()
    n_size = cells["n_size"].to_numpy()
    for candidates in (margin.parts, (margin.total,)):
        shown = [p for p in candidates if disclosure[p] == SHOWN]
        if shown:
            return min(shown, key=lambda p: (n_size[p], p))
    return None


def _recoverable_positions(cells: pd.DataFrame) -> list[int]:
    ranges = audit_cells(cells)
    if ranges.empty:
        return []
    hidden = np.flatnonzero(
        (cells["disclosure"].isin(HIDDEN) & (cells["n_size"] > 0)).to_numpy()
    )
    return [int(p) for p in hidden[ranges["recoverable"].to_numpy(dtype=bool)]]


def _repair(cells: pd.DataFrame, margins: list, recoverable: list[int]) -> bool:
    """Rule 4: suppress one more cell so that the first recoverable count is freed.

    Candidates are the shown cells on the margins through the cell, then on the
    margins one step further along its hidden neighbours, and so on (a count can
    be pinned by a chain of margins: one school's hidden cells equal to the
    district's through a second group). They are tried nearest ring first and
    smallest first; the first whose suppression frees the count is kept. When
    none does, the nearest smallest is suppressed and the audit runs again. One
    cell per round: recoverable cells usually share a cause.
    """
    disclosure = cells["disclosure"].to_numpy()
    for position in recoverable:
        candidates = _candidates(
            position, margins, disclosure, cells["n_size"].to_numpy()
        )
        if not candidates:
            continue
        chosen = candidates[0]
        for candidate in candidates[:MAX_REPAIR_TRIALS]:
            cells.loc[candidate, "disclosure"] = COMPLEMENTARY
            freed = not is_pinned(cells, position)
            cells.loc[candidate, "disclosure"] = SHOWN
            if freed:
                chosen = candidate
                break
        cells.loc[chosen, "disclosure"] = COMPLEMENTARY
        logger.debug(
            "extra suppression of %s to protect %s",
            cell_name(cells, chosen),
            cell_name(cells, position),
        )
        return True
    return False


def _candidates(
    position: int, margins: list, disclosure: np.ndarray, n_size: np.ndarray
) -> list[int]:
    """Shown cells around ``position``, nearest ring of margins first, then smallest."""
    reached, frontier, used = {position}, {position}, set()
    ordered: list[int] = []
    while frontier:
        ring = [
            index
            for index, margin in enumerate(margins)
            if index not in used and frontier & set(margin.members)
        ]
        used.update(ring)
        parts = {p for i in ring for p in margins[i].parts if disclosure[p] == SHOWN}
        totals = {
            margins[i].total for i in ring if disclosure[margins[i].total] == SHOWN
        }
        ordered += sorted(parts - set(ordered), key=lambda p: (n_size[p], p))
        ordered += sorted(totals - parts - set(ordered), key=lambda p: (n_size[p], p))
        hidden = {
            p for i in ring for p in margins[i].members if disclosure[p] in HIDDEN
        }
        frontier = hidden - reached
        reached |= hidden
    return ordered


def _rate_texts(cells: pd.DataFrame) -> list[str]:
    texts = []
    for row in cells.itertuples(index=False):
        if row.disclosure in (SUPPRESSED, COMPLEMENTARY):
            texts.append("suppressed")
        elif row.disclosure == EMPTY:
            texts.append("no students")
        elif pd.isna(row.n_missed):
            texts.append("not yet known")
        elif row.disclosure == RANGE:
            cutoff = rate_cutoff(int(row.n_size))
            low_side = 100 * row.n_missed < cutoff * row.n_size
            texts.append(f"<{cutoff}%" if low_side else f">{100 - cutoff}%")
        else:
            texts.append(f"{100 * row.n_missed / row.n_size:.1f}%")
    return texts
