"""The warehouse: one DuckDB file in the state folder, replaced whole or not at all.

``<state>/warehouse.duckdb`` holds one table per canonical table, with the same names
and columns (identifiers and codes as ``VARCHAR``, dates as ``DATE``, school years and
grades as ``INTEGER``, booleans as ``BOOLEAN``). A new warehouse is always built in
``warehouse.duckdb.tmp`` next to it and moved over the old file with ``os.replace``
only once it is complete, so a run that fails at any point leaves the previous
warehouse byte for byte as it was. Readers that opened the old file keep reading it.

Notes
-----
Two writers at the same time are not guarded against: both build the same temporary
file. Ingest is a batch job; run one at a time per state folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from features._derived_tables import store_derived_tables
from features._schemas import SQL_TYPES, TABLES, IngestError, TableSpec

if TYPE_CHECKING:
    from ontrack.config import DistrictConfig

logger = logging.getLogger(__name__)

WAREHOUSE_FILE = "warehouse.duckdb"
QUARANTINE_FOLDER = "quarantine"


def warehouse_path(state_dir: Path) -> Path:
    """Where the warehouse of a state folder lives."""
    return Path(state_dir) / WAREHOUSE_FILE


def open_warehouse(
    config: DistrictConfig, read_only: bool = True
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the district's warehouse; close it when done.

    Raises ``FileNotFoundError`` when nothing has been ingested yet.
    """
    path = warehouse_path(config.state_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"no warehouse at {path}: run `ontrack ingest` on an export first"
        )
    return duckdb.connect(str(path), read_only=read_only)


def quote(name: str) -> str:
    """A SQL identifier (``date`` is a keyword)."""
    return '"' + name.replace('"', '""') + '"'


def column_definitions(spec: TableSpec) -> str:
    """``"student_id" VARCHAR, "date" DATE, ...`` in the table's column order."""
    return ", ".join(
        f"{quote(name)} {SQL_TYPES[kind]}" for name, kind in spec.kinds.items()
    )


@contextmanager
def building(state_dir: Path, threads: int) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a new, empty warehouse that replaces the old one on success.

    The old warehouse, if any, is attached read-only as ``previous``. Any exception
    inside the block deletes the new file and leaves the old one untouched.
    """
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    final = warehouse_path(state_dir)
    building_path = final.with_name(final.name + ".tmp")
    remove_database(building_path)
    connection = duckdb.connect(str(building_path), config={"threads": threads})
    try:
        if final.is_file():
            connection.execute(f"ATTACH {sql_text(str(final))} AS previous (READ_ONLY)")
        yield connection
        connection.close()
        os.replace(building_path, final)
        logger.info("warehouse %s replaced", final)
    finally:
        connection.close()
        remove_database(building_path)


def previous_tables(connection: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables of the attached old warehouse (none when there was no old warehouse)."""
    rows = connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'previous'"
    ).fetchall()
    return {row[0] for row in rows}


def sql_text(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def write_warehouse(
    state_dir: Path,
    tables: Mapping[str, pd.DataFrame],
    *,
    school_year_start: str | None = None,
) -> Path:
    """Replace the warehouse of ``state_dir`` with these canonical frames, as they are.

    For tests and tools that build a tiny district without CSV files: each frame
    has canonical column names and values DuckDB can cast to the column types
    (``"2024-03-15"`` or a date for a ``DATE``). A table left out is empty; an
    optional column left out is missing (NULL). Rows are *not* validated. With
    ``school_year_start`` the derived tables are stored as ingest stores them
    (see ``features._derived_tables``); without, snapshots derive them.

    Raises :class:`IngestError` for an unknown table, an unknown column or a missing
    required column.
    """
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise IngestError(
            f"write_warehouse: unknown table {', '.join(unknown)}; "
            f"expected some of: {', '.join(TABLES)}"
        )
    with building(state_dir, threads=1) as connection:
        for name, spec in TABLES.items():
            connection.execute(
                f"CREATE TABLE {quote(name)} ({column_definitions(spec)})"
            )
            if name in tables:
                _insert_frame(connection, spec, tables[name])
        if school_year_start is not None:
            store_derived_tables(connection, school_year_start)
    return warehouse_path(state_dir)


def _insert_frame(
    connection: duckdb.DuckDBPyConnection, spec: TableSpec, frame: pd.DataFrame
) -> None:
    extra = sorted(set(frame.columns) - set(spec.columns))
    missing = [name for name in spec.required_columns if name not in frame.columns]
    if extra or missing:
        problems = [f"unknown column {name!r}" for name in extra]
        problems += [f"missing required column {name!r}" for name in missing]
        raise IngestError(f"write_warehouse: table {spec.name}: {'; '.join(problems)}")
    values = ", ".join(
        f"CAST({quote(name)} AS {SQL_TYPES[kind]})"
        if name in frame.columns
        else f"CAST(NULL AS {SQL_TYPES[kind]})"
        for name, kind in spec.kinds.items()
    )
    connection.register("frame_rows", frame)
    connection.execute(
        f"INSERT INTO {quote(spec.name)} SELECT {values} FROM frame_rows"
    )
    connection.unregister("frame_rows")


def remove_database(path: Path) -> None:
    """Delete a DuckDB file and its write-ahead log, if they exist."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)
