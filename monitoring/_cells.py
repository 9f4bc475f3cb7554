"""The shape of a published table and the margins that tie its cells together.

A published table belongs to one KPI and one measure (this year so far, or last
year). One row of ``cells`` is a cell: a school (or ``"district"``) crossed with a
student group. A group is a ``(dimension, group)`` pair such as
``("english_learner", "yes")``; the pair ``("all", "all")`` is all students. Each
cell carries ``n_size`` (students in the cell) and ``n_missed`` (of them, how many
missed the KPI's standard; missing when not yet known).

The cells add up in two directions, and each direction is a *margin*, a set of part
cells whose counts sum to a total cell:

- along a group dimension: in each school, the groups of one dimension add up to
  the school's all-students cell (every dimension has a ``"not_reported"`` group
  for students whose attribute is missing, so the sum is exact);
- across schools: for each group, the schools add up to the district's cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

DISTRICT = "district"
ALL = "all"
NOT_REPORTED = "not_reported"
CELL_KEY = ["school_id", "dimension", "group"]
CELL_COLUMNS = [*CELL_KEY, "n_size", "n_missed"]


class CellTableError(ValueError):
    """A table of cells is not shaped or does not add up as a published table must."""


@dataclass(frozen=True)
class Margin:
    """Positions (in ``cells``) of part cells that add up to one total cell."""

    name: str
    total: int
    parts: tuple[int, ...]

    @property
    def members(self) -> tuple[int, ...]:
        return (self.total, *self.parts)


def check_cells(cells: pd.DataFrame, table: str) -> None:
    """Fail with a message naming the table, cell and value unless ``cells`` is valid.

    Valid means: the cell columns are present, keys are unique, every school has an
    all-students cell, every group has a district cell, counts are whole numbers
    with ``0 <= n_missed <= n_size``, and every margin adds up exactly.
    """
    missing = [column for column in CELL_COLUMNS if column not in cells.columns]
    if missing:
        raise CellTableError(f"{table}: missing columns {missing}; need {CELL_COLUMNS}")
    duplicated = cells.duplicated(CELL_KEY, keep=False)
    if duplicated.any():
        first = cells.loc[duplicated, CELL_KEY].iloc[0].tolist()
        raise CellTableError(f"{table}: cell {first} appears more than once")
    if (cells["n_size"] < 0).any() or (cells["n_size"] % 1 != 0).any():
        bad = cells.loc[(cells["n_size"] < 0) | (cells["n_size"] % 1 != 0)].iloc[0]
        raise CellTableError(
            f"{table}: cell {_cell_name(bad)} has n_size={bad['n_size']}; "
            "expected a whole number >= 0"
        )
    known = cells["n_missed"].notna()
    if known.any() and not known.all():
        raise CellTableError(
            f"{table}: n_missed is known for some cells and missing for others; "
            "expected all or none"
        )
    bad_missed = known & (
        (cells["n_missed"] < 0)
        | (cells["n_missed"] > cells["n_size"])
        | (cells["n_missed"] % 1 != 0)
    )
    if bad_missed.any():
        bad = cells.loc[bad_missed].iloc[0]
        raise CellTableError(
            f"{table}: cell {_cell_name(bad)} has n_missed={bad['n_missed']}; "
            f"expected a whole number from 0 to n_size={bad['n_size']}"
        )
    for margin in table_margins(cells):
        for column in ("n_size", "n_missed") if known.all() else ("n_size",):
            values = cells[column].to_numpy()
            total = values[margin.total]
            parts = values[list(margin.parts)].sum()
            if total != parts:
                raise CellTableError(
                    f"{table}: margin {margin.name} does not add up in {column}: "
                    f"total {total:g}, parts sum to {parts:g}"
                )


def table_margins(cells: pd.DataFrame) -> list[Margin]:
    """Every margin of the table, rows along group dimensions then school columns."""
    positions = {
        key: position
        for position, key in enumerate(
            zip(cells["school_id"], cells["dimension"], cells["group"], strict=True)
        )
    }
    schools = list(dict.fromkeys(cells["school_id"]))
    groups = list(dict.fromkeys(zip(cells["dimension"], cells["group"], strict=True)))
    dimensions = list(dict.fromkeys(d for d, _ in groups if d != ALL))
    margins = []
    for school_id in schools:
        total = _position(positions, (school_id, ALL, ALL))
        for dimension in dimensions:
            parts = tuple(
                positions[(school_id, d, g)]
                for d, g in groups
                if d == dimension and (school_id, d, g) in positions
            )
            margins.append(Margin(f"{school_id} by {dimension}", total, parts))
    for dimension, group in groups:
        total = _position(positions, (DISTRICT, dimension, group))
        parts = tuple(
            positions[(school_id, dimension, group)]
            for school_id in schools
            if school_id != DISTRICT and (school_id, dimension, group) in positions
        )
        margins.append(Margin(f"{dimension}={group} across schools", total, parts))
    return margins


def cell_name(cells: pd.DataFrame, position: int) -> str:
    """``school 0003, race_ethnicity=asian``: how errors and logs name a cell."""
    return _cell_name(cells.iloc[position])


def _cell_name(cell: pd.Series) -> str:
    where = (
        "district" if cell["school_id"] == DISTRICT else f"school {cell['school_id']}"
    )
    if cell["dimension"] == ALL:
        return f"{where}, all students"
    return f"{where}, {cell['dimension']}={cell['group']}"


def _position(positions: dict, key: tuple[str, str, str]) -> int:
    if key not in positions:
        raise CellTableError(f"cells: no cell for {key}; every margin needs its total")
    return positions[key]
