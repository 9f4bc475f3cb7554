"""Ingest: an export validated table by table, bad rows quarantined, warehouse rebuilt.

The tables go in dependency order (a table after every table it refers to), each
through the same steps, whether it came from a CSV, a Parquet file or an adapter:

1. The header is checked before any row is read: a missing required column refuses
   the whole table. A refused required table (or a missing one) fails the run; a
   refused optional table is reported and the warehouse keeps what it held.
2. Each chunk of text rows is validated against the table's pandera schema
   (:mod:`features._schemas`); a failing row goes to the quarantine with every rule
   it broke, a passing row is converted to its types and staged.
3. Rows with the same key are exact duplicates when they are equal in every
   column (values compared after conversion, so ``1`` and ``1.0`` are the same):
   the first (by row number) is loaded, the others counted.
4. Otherwise they conflict: which one is right is not known, so every one of them
   is quarantined, the reason naming them all (``rows 1, 6``).
5. Cross-table rules, against the warehouse being built: a student or school that
   is not in ``students`` or ``schools``, and an attendance or discipline row for a
   student not enrolled at that school on that date (``entry_date <= date <=
   exit_date``, both inclusive, an empty ``exit_date`` open); and a new
   ``student_id`` or ``school_id`` that equals a known one once leading zeros are
   dropped (``6`` for ``0000006``). A Parquet identifier column stored as numbers
   refuses its table at step 1.
6. The new warehouse holds the old warehouse's rows except those whose key the
   export has too (the export's version wins), plus the export's accepted rows.
   An export is an update (an upsert by key), not the whole district: a row that a
   later export leaves out stays, and so does the held row of a key whose rows in
   the export conflict. ``ontrack demo`` starts from an empty warehouse instead.

So for every table ``read = loaded + unchanged + quarantined + duplicates``, where
``loaded`` counts rows new to the warehouse (a new key or changed values) and
``unchanged`` rows it already held exactly: running the same export twice loads
nothing the second time.

Steps 3 to 6 are SQL over staging tables in a scratch DuckDB file next to the
warehouse, so a large district never has to fit in memory; steps 1 and 2 work on
one chunk at a time.

Notes
-----
Attendance on a day that is not in the school's calendar is *not* quarantined here:
the calendar may be incomplete, and the indicators count days absent only on
instructional days, so they report such rows and ignore them.

Rows refused by steps 4 and 5 are written to the quarantine with their converted
values (``school_year`` ``2024`` for ``2023-2024``, codes in lower case), not the
text of the file; rows refused by step 2 keep the text exactly as read.

The row checks are pandera checks written with Arrow compute functions (vectorised,
one chunk of 500,000 rows at a time); the rules between rows and tables are DuckDB
anti-joins that write out only the rows they set aside. Measured here once (2 cores
shared with other jobs, load average about 7) on a generated district of 1,000,000
students, 1,000,000 enrollments and 20,000,000 attendance rows (a 680 MB CSV): the
first ingest took 3 min 2 s (attendance 2 min 31 s) with at most 2.5 GB resident;
running it again (every row unchanged) took 3 min 45 s and 2.9 GB. About three
quarters of the time is reading and checking the text; CSV reading is
single-threaded so that Arrow can number malformed rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pyarrow
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pandera.errors import SchemaErrors

from features._adapters import ADAPTERS
from features._derived_tables import store_derived_tables
from features._reading import (
    MalformedRow,
    TableSource,
    find_sources,
    frame_source,
    undecodable_line,
)
from features._schemas import (
    MISSING_VALUE,
    MISSING_VALUE_CHECK,
    TABLES,
    ExportRefused,
    IngestError,
    TableRefused,
    TableSpec,
    as_arrow,
    normalise,
    parse,
)
from features._warehouse import (
    QUARANTINE_FOLDER,
    building,
    column_definitions,
    previous_tables,
    quote,
    remove_database,
    sql_text,
    warehouse_path,
)

if TYPE_CHECKING:
    from ontrack.config import DistrictConfig

__all__ = [
    "ExportRefused",
    "IngestError",
    "IngestReport",
    "TableCounts",
    "ingest_district",
]

logger = logging.getLogger(__name__)

CANONICAL = "canonical"
PERSONAL_VALUE = "the value (withheld: personal field)"
NOT_UTF8 = (
    "cannot be read: line {line} is not UTF-8 text; the file must be UTF-8 "
    "(re-save it as UTF-8, in Excel as 'CSV UTF-8')"
)


@dataclass(frozen=True)
class TableCounts:
    """What happened to one table's rows.

    ``read = loaded + unchanged + quarantined + duplicates``; ``refused`` says why a
    table was not read at all.
    """

    table: str
    origin: str
    read: int = 0
    loaded: int = 0
    unchanged: int = 0
    quarantined: int = 0
    duplicates: int = 0
    refused: str | None = None


@dataclass(frozen=True)
class IngestReport:
    """Counts per table, the quarantine files written and the warehouse path.

    ``notes`` are the adapter's sentences on what it derived or approximated (for
    example enrolments derived from other records, a calendar of weekdays), empty
    for a canonical export.
    """

    warehouse: Path
    tables: dict[str, TableCounts]
    quarantine_files: dict[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    empty_tables: tuple[str, ...] = ()

    @property
    def refused_tables(self) -> dict[str, str]:
        """Each optional table refused as a whole, with the reason; empty if none.

        The run still succeeded (the warehouse kept what it held of these tables),
        but a caller may want to exit non-zero when this is not empty.
        """
        return {
            name: counts.refused
            for name, counts in self.tables.items()
            if counts.refused
        }

    def describe(self) -> str:
        """A plain text table for the console."""
        header = ("table", "source", "read", "loaded", "unchanged", "quarantined",
                  "duplicates")  # fmt: skip
        rows = [header] + [
            (
                counts.table,
                counts.origin,
                *(
                    f"{value:,}"
                    for value in (
                        counts.read,
                        counts.loaded,
                        counts.unchanged,
                        counts.quarantined,
                        counts.duplicates,
                    )
                ),
            )
            for counts in self.tables.values()
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [
            "  ".join(
                cell.ljust(width) if i < 2 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
            for row in rows
        ]
        lines.append("loaded: rows new to the warehouse (a new key or changed values)")
        lines.append("unchanged: rows the warehouse already held as they are")
        lines.append(f"warehouse: {self.warehouse}")
        for table, path in self.quarantine_files.items():
            count = self.tables[table].quarantined
            lines.append(f"quarantined rows of {table}: {path} ({count:,})")
        lines.extend(
            f"refused: {counts.refused}"
            for counts in self.tables.values()
            if counts.refused
        )
        lines.extend(
            f"warning: the warehouse holds no {table} rows: {EMPTY_MEANS[table]}"
            for table in self.empty_tables
        )
        if self.notes:
            lines.append("derived by the adapter (check before trusting the figures):")
            lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines)


def ingest_district(
    config: DistrictConfig,
    source: Path,
    source_format: str = CANONICAL,
    *,
    mapping: Path | None = None,
    fresh: bool = False,
) -> IngestReport:
    """Validate an export, quarantine bad rows and rebuild the district's warehouse.

    ``source`` is the export folder for the ``canonical`` format, or whatever the
    adapter of ``source_format`` reads. The export updates what the warehouse
    held, by key; with ``fresh`` the new warehouse holds the export alone (the old
    one is still replaced only once the new one is complete).

    Raises :class:`IngestError` (a ``ValueError``) for an unknown format, a
    missing source, or a required table that is missing or refused (then
    :class:`ExportRefused`); the previous warehouse is then left untouched.
    """
    started = time.perf_counter()
    source = Path(source)
    sources, refusals, notes = _find_sources(source, source_format, mapping)
    state_dir = config.state_dir
    quarantine_dir = state_dir / QUARANTINE_FOLDER
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    staging_path = state_dir / "warehouse.duckdb.staging"
    remove_database(staging_path)
    tables: dict[str, TableCounts] = {}
    written: dict[str, Path] = {}
    try:
        with building(state_dir, threads=config.model.n_jobs) as connection:
            connection.execute(f"ATTACH {sql_text(str(staging_path))} AS staging")
            old_tables = set() if fresh else previous_tables(connection)
            for name, spec in TABLES.items():
                counts = _ingest_table(
                    connection,
                    spec,
                    sources.get(name),
                    refusals.get(name),
                    name in old_tables,
                )
                tables[name] = counts
                if counts.quarantined:
                    written[name] = quarantine_dir / f"{name}.csv"
                    _write_quarantine(connection, spec, _pending(written[name]))
            connection.execute("DETACH staging")
            read_by_kpis = {KPI_SOURCES[kpi.definition] for kpi in config.kpis}
            empty = tuple(
                name
                for name in EMPTY_MEANS
                if name in read_by_kpis and not _count(connection, quote(name))
            )
            stored = store_derived_tables(connection, config.district.school_year_start)
            logger.info("derived tables stored: %s", stored)
    except BaseException:
        for path in written.values():
            _pending(path).unlink(missing_ok=True)
        raise
    finally:
        remove_database(staging_path)

    # The warehouse is in place: the quarantine now describes this run.
    for name in TABLES:
        final = quarantine_dir / f"{name}.csv"
        if name in written:
            _pending(final).replace(final)
        else:
            final.unlink(missing_ok=True)
    logger.info(
        "ingest of %s into %s done in %.1f s",
        source,
        warehouse_path(state_dir),
        time.perf_counter() - started,
    )
    return IngestReport(warehouse_path(state_dir), tables, written, tuple(notes), empty)


def _find_sources(
    source: Path, source_format: str, mapping: Path | None
) -> tuple[dict[str, TableSource], dict[str, str], list[str]]:
    """Each table's source with its header checked, the refused tables' reasons and
    the adapter's notes.

    Raises :class:`IngestError` when a required table is missing or refused.
    """
    if source_format != CANONICAL and source_format not in ADAPTERS:
        allowed = ", ".join([CANONICAL, *sorted(ADAPTERS)])
        raise IngestError(
            f"unknown export format {source_format!r}; expected one of: {allowed}"
        )
    if not source.exists():
        raise IngestError(f"export {source} does not exist")
    sources: dict[str, TableSource] = {}
    refusals: dict[str, str] = {}
    notes: list[str] = []
    if source_format == CANONICAL:
        if not source.is_dir():
            raise IngestError(
                f"a canonical export is a folder of <table>.csv or <table>.parquet "
                f"files; {source} is a file"
            )
        for name in TABLES:
            try:
                sources.update(find_sources(source, [name]))
            except TableRefused as refused:
                refusals[name] = str(refused)
    else:
        frames = ADAPTERS[source_format](source, mapping)
        notes = list(getattr(frames, "notes", []))
        unknown = sorted(set(frames) - set(TABLES))
        if unknown:
            raise IngestError(
                f"adapter {source_format!r} returned unknown table "
                f"{', '.join(unknown)}; expected some of: {', '.join(TABLES)}"
            )
        for name, frame in frames.items():
            try:
                sources[name] = frame_source(name, source_format, frame)
            except TableRefused as refused:
                refusals[name] = str(refused)

    for name, table_source in list(sources.items()):
        try:
            check_header(TABLES[name], table_source)
        except TableRefused as refused:
            refusals[name] = str(refused)
            del sources[name]
    for name, spec in TABLES.items():
        if spec.required and name not in sources and name not in refusals:
            refusals[name] = (
                f"required table {name} is missing from {source} "
                f"(expected {name}.csv or {name}.parquet)"
            )
    failed = [
        refusals[name] for name in TABLES if TABLES[name].required and name in refusals
    ]
    if failed:
        raise ExportRefused("\n".join(failed))
    return sources, refusals, notes


def check_header(spec: TableSpec, source: TableSource) -> None:
    """Refuse a table whose header lacks a required column; note unknown ones."""
    missing = [name for name in spec.required_columns if name not in source.columns]
    if missing:
        raise TableRefused(
            spec.name,
            f"table {spec.name} ({source.origin}): missing required column "
            f"{', '.join(map(repr, missing))}; the header has: "
            f"{', '.join(source.columns)}",
        )
    if source.path is not None and source.path.suffix == ".parquet":
        _check_identifier_types(spec, source)
    unknown = [name for name in source.columns if name not in spec.columns]
    if unknown:
        logger.warning(
            "table %s (%s): ignoring unknown columns %s",
            spec.name,
            source.origin,
            ", ".join(unknown),
        )


def _check_identifier_types(spec: TableSpec, source: TableSource) -> None:
    """Refuse a Parquet table whose identifier column is stored as numbers."""
    schema = pq.read_schema(source.path)
    for name, column in zip(source.columns, schema, strict=True):
        if spec.kinds.get(name) != "id":
            continue
        if pyarrow.types.is_integer(column.type) or pyarrow.types.is_floating(
            column.type
        ):
            raise TableRefused(
                spec.name,
                f"table {spec.name} ({source.origin}): column {name} is stored as "
                f"{column.type}, which has lost any leading zeros ('0000006' would "
                "be 6); identifiers must be a string column: write it as text "
                "from the source system",
            )


def _ingest_table(
    connection: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    source: TableSource | None,
    refusal: str | None,
    in_previous: bool,
) -> TableCounts:
    origin = source.origin if source else "(refused)" if refusal else "(not in export)"
    _create_staging(connection, spec)
    read = 0
    if source is not None:
        try:
            read = _stage_rows(connection, spec, source)
        except TableRefused as refused:
            if spec.required:
                raise ExportRefused(str(refused)) from None
            refusal, read = str(refused), 0
            _create_staging(connection, spec)
        if spec.required and read == 0:
            # A header with no rows is no export of a district: loading it would
            # quarantine every row that refers to its students or schools.
            raise ExportRefused(
                f"required table {spec.name} ({origin}) has a header but no rows; "
                "an export lists every row of its required tables"
            )
    duplicates = _check_rows(connection, spec, in_previous)
    loaded, unchanged = _merge(connection, spec, in_previous)
    quarantined = _count(connection, _staging("rejected", spec))
    connection.execute(f"DROP TABLE {_staging('new', spec)}")
    counts = TableCounts(
        spec.name, origin, read, loaded, unchanged, quarantined, duplicates, refusal
    )
    logger.info(
        "table %s from %s: read %d, loaded %d, unchanged %d, quarantined %d, "
        "duplicates %d",
        spec.name,
        origin,
        read,
        loaded,
        unchanged,
        quarantined,
        duplicates,
    )
    if refusal:
        logger.warning("%s", refusal)
    return counts


def _stage_rows(
    connection: duckdb.DuckDBPyConnection, spec: TableSpec, source: TableSource
) -> int:
    """Validate the source chunk by chunk into the staging tables; rows read."""
    read = 0
    try:
        for chunk in source.chunks():
            accepted, rejected = validate_rows(spec, chunk.rows)
            rejected = pd.concat([rejected, malformed_rows(spec, chunk.malformed)])
            _append(
                connection, _staging("new", spec), pyarrow.Table.from_pandas(accepted)
            )
            _append(connection, _staging("rejected", spec), _rejected_table(rejected))
            read += len(chunk.rows) + len(chunk.malformed)
            logger.debug(
                "table %s: chunk of %d rows, %d rejected",
                spec.name,
                len(chunk.rows),
                len(rejected),
            )
    except pyarrow.ArrowInvalid as error:
        # Arrow's message can quote the offending line: never pass it on.
        where = f"after data row {read:,}" if read else "from its first data row"
        line = None
        if "UTF8" in str(error) and source.path is not None:
            line = undecodable_line(source.path)
        if line is not None:
            message = NOT_UTF8.format(line=line)
        elif source.path is not None and source.path.suffix == ".parquet":
            message = f"cannot be read {where}: it is not a readable Parquet file"
        else:
            message = f"cannot be read {where}: it is not CSV"
        raise TableRefused(
            spec.name, f"table {spec.name} ({source.origin}) {message}"
        ) from None
    return read


def validate_rows(
    spec: TableSpec, rows: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of text checked against the table's schema: typed good rows and rejects.

    ``rows`` is indexed by ``_row`` and holds the text as read. The good rows come
    back converted to their types with a ``_row`` column; the rejected ones keep
    their text and get ``_row`` and ``_reason`` (every rule the row broke, in
    column order, separated by ``; ``).
    """
    text = _normalised(spec, rows)
    try:
        spec.schema.validate(text, lazy=True)
        failures = pd.DataFrame(columns=["schema_context", "column", "check", "index"])
    except SchemaErrors as errors:
        failures = errors.failure_cases
    reasons = failure_reasons(spec, rows, failures)
    good = text.loc[~text.index.isin(reasons.index)] if len(reasons) else text
    accepted = pd.DataFrame(
        {
            name: parse(kind, as_arrow(good[name]), spec.codes(name)).to_pandas(
                types_mapper=pd.ArrowDtype
            )
            for name, kind in spec.kinds.items()
        }
    )
    accepted["_row"] = good.index.to_numpy()
    rejected = pd.DataFrame(
        {
            name: rows.loc[reasons.index, name] if name in rows else pd.NA
            for name in spec.columns
        },
        index=reasons.index,
    ).astype("string[pyarrow]")
    rejected["_row"] = reasons.index.to_numpy()
    rejected["_reason"] = reasons.to_numpy()
    return accepted, rejected.reset_index(drop=True)


def failure_reasons(
    spec: TableSpec, rows: pd.DataFrame, failures: pd.DataFrame
) -> pd.Series:
    """One reason per failing row (indexed by ``_row``) from pandera's failure cases.

    A value is quoted as it was read, for example ``date: '03/15/2024' is not a
    date in the expected format YYYY-MM-DD``, except a personal field's value, which
    is never shown.
    """
    crashed = failures[failures["index"].isna()]
    if len(crashed):
        first = crashed.iloc[0]
        raise RuntimeError(
            f"table {spec.name}: check {first['check']!r} could not run: "
            f"{first['failure_case']}"
        )
    position = {name: i for i, name in enumerate(spec.columns)}
    parts = []
    by_column = failures[failures["schema_context"] == "Column"]
    for (column, check), group in by_column.groupby(["column", "check"], sort=False):
        index = pd.Index(group["index"].astype("int64").unique())
        if check == MISSING_VALUE_CHECK:
            text = pd.Series(f"{column}: {MISSING_VALUE}", index=index)
        elif column in spec.personal_columns:
            text = pd.Series(f"{column}: {PERSONAL_VALUE} {check}", index=index)
        else:
            text = f"{column}: '" + _quoted(rows, index, column) + "' " + check
        parts.append(_reasons_frame(index, position[column], text))
    # A row rule fails once per column of the row; it is one reason.
    by_row = failures[failures["schema_context"] != "Column"]
    for check, group in by_row.groupby("check", sort=False):
        index = pd.Index(group["index"].astype("int64").unique())
        first, second = spec.rule_columns(check)
        text = (
            f"{check} ({first} '"
            + _quoted(rows, index, first)
            + f"', {second} '"
            + _quoted(rows, index, second)
            + "')"
        )
        parts.append(_reasons_frame(index, len(position), text))
    if not parts:
        return pd.Series([], index=pd.Index([], name="_row", dtype="int64"), dtype=str)
    reasons = pd.concat(parts).sort_values(["_row", "order"], kind="stable")
    return reasons.groupby("_row", sort=True)["reason"].agg("; ".join)


def _quoted(rows: pd.DataFrame, index: pd.Index, column: str) -> pd.Series:
    return rows.loc[index, column].astype(str)


def _reasons_frame(index: pd.Index, order: int, text: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"_row": index, "order": order, "reason": text.to_numpy()})


def malformed_rows(
    spec: TableSpec, malformed: tuple[MalformedRow, ...]
) -> pd.DataFrame:
    """Quarantine rows for lines that did not split into the header's columns."""
    rejected = pd.DataFrame(
        {
            name: pd.Series([pd.NA] * len(malformed), dtype="string[pyarrow]")
            for name in spec.columns
        }
    )
    rejected["_row"] = [row.row for row in malformed]
    rejected["_reason"] = [row.reason for row in malformed]
    return rejected


def _normalised(spec: TableSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """The text to validate: normalised, empty cells filled where a column says so."""
    empty = pyarrow.nulls(len(rows), pyarrow.string())
    columns = {}
    for name, kind in spec.kinds.items():
        text = normalise(kind, as_arrow(rows[name]) if name in rows else empty)
        if (when_empty := spec.when_empty(name)) is not None:
            text = pc.fill_null(text, when_empty)
        columns[name] = pd.Series(
            pd.arrays.ArrowStringArray(text.cast(pyarrow.large_string())),
            index=rows.index,
        )
    return pd.DataFrame(columns, index=rows.index)


def _rejected_table(rejected: pd.DataFrame) -> pyarrow.Table:
    return pyarrow.Table.from_pandas(
        rejected.astype({"_row": "int64", "_reason": "string[pyarrow]"}),
        preserve_index=False,
    )


# --- SQL steps over the staging tables --------------------------------------------


def _create_staging(connection: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
    texts = ", ".join(f"{quote(name)} VARCHAR" for name in spec.columns)
    connection.execute(
        f"CREATE OR REPLACE TABLE {_staging('new', spec)} "
        f"({column_definitions(spec)}, _row BIGINT)"
    )
    connection.execute(
        f"CREATE OR REPLACE TABLE {_staging('rejected', spec)} "
        f"({texts}, _row BIGINT, _reason VARCHAR)"
    )


def _append(
    connection: duckdb.DuckDBPyConnection, staging: str, rows: pyarrow.Table
) -> None:
    if rows.num_rows == 0:
        return
    connection.register("chunk_rows", rows)
    connection.execute(f"INSERT INTO {staging} BY NAME SELECT * FROM chunk_rows")
    connection.unregister("chunk_rows")


def _count(connection: duckdb.DuckDBPyConnection, table: str) -> int:
    return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _check_rows(
    connection: duckdb.DuckDBPyConnection, spec: TableSpec, in_previous: bool
) -> int:
    """Apply the rules between rows and between tables; the number of duplicates.

    Rows sharing a key are duplicates when they are equal in every column: the
    first (by ``_row``) is kept, the others counted. When they differ, every one of
    them is quarantined, naming them all. A kept row that breaks a rule between
    tables is quarantined with every reason. The rows
    set aside go to the temporary table ``set_aside``; only they are written out,
    so a clean 20-million-row table is never copied here.
    """
    new = _staging("new", spec)
    rejected = _staging("rejected", spec)
    key = ", ".join(map(quote, spec.key))
    same = " AND ".join(
        f"r.{quote(name)} IS NOT DISTINCT FROM f.{quote(name)}" for name in spec.columns
    )
    # The rows set aside for their key: every row after the first of a group whose
    # rows are all identical, and every row of a group whose rows differ (which
    # one is right is not known, so none is loaded).
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE repeats AS "
        f"WITH firsts AS (SELECT {key}, min(_row) AS _first_row FROM {new} "
        f"GROUP BY {key} HAVING count(*) > 1), "
        f"members AS (SELECT r.*, _first_row, ({same}) AS _same FROM {new} r "
        f"JOIN firsts USING ({key}) JOIN {new} f ON f._row = _first_row), "
        "verdicts AS (SELECT _first_row, bool_and(_same) AS _identical, "
        "string_agg(CAST(_row AS VARCHAR), ', ' ORDER BY _row) AS _rows "
        "FROM members GROUP BY _first_row) "
        "SELECT * EXCLUDE (_same) FROM members JOIN verdicts USING (_first_row) "
        "WHERE _row <> _first_row OR NOT _identical"
    )
    conflict = sql_text(
        f"duplicate key ({', '.join(spec.key)}): rows {{}} have the same key with "
        "different values; none of them is loaded"
    )
    connection.execute(
        f"INSERT INTO {rejected} BY NAME SELECT {_as_texts(spec)}, _row, "
        f"format({conflict}, _rows) AS _reason FROM repeats WHERE NOT _identical"
    )
    duplicates = _count(connection, "repeats WHERE _identical")

    broken = _broken_rules(
        spec, f"(SELECT * FROM {new} ANTI JOIN repeats USING (_row))", in_previous
    )
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE broken AS "
        "SELECT _row, string_agg(_reason, '; ' ORDER BY _order) AS _reason "
        f"FROM ({broken}) GROUP BY _row"
    )
    connection.execute(
        f"INSERT INTO {rejected} BY NAME SELECT {_as_texts(spec)}, _row, _reason "
        f"FROM {new} JOIN broken USING (_row)"
    )
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE set_aside AS "
        "SELECT _row FROM repeats UNION ALL SELECT _row FROM broken"
    )
    connection.execute("DROP TABLE repeats")
    connection.execute("DROP TABLE broken")
    return duplicates


def _broken_rules(spec: TableSpec, rows: str, in_previous: bool) -> str:
    """SQL listing ``(_row, _order, _reason)`` for each rule between tables broken.

    ``rows`` is the SQL of the rows to check. Identifiers are quoted in the reason;
    a row of a student or school that is not loaded is not also said to be not
    enrolled.
    """
    parts = ["SELECT NULL::BIGINT AS _row, 0 AS _order, NULL AS _reason WHERE false"]
    parts += _stripped_zeros(spec, rows, in_previous)
    for order, reference in enumerate(spec.references):
        match = " AND ".join(
            f"p.{quote(name)} = c.{quote(name)}" for name in reference.columns
        )
        shown = ", ".join(f"{name} ''{{}}''" for name in reference.columns)
        values = ", ".join(f"c.{quote(name)}" for name in reference.columns)
        parts.append(
            f"SELECT c._row, {order} AS _order, "
            f"format('{shown} is not in {reference.table}', {values}) AS _reason "
            f"FROM {rows} c ANTI JOIN main.{quote(reference.table)} p ON {match}"
        )
    if spec.enrolled_on is not None:
        on = quote(spec.enrolled_on)
        parts.append(
            f"SELECT c._row, {len(spec.references)} AS _order, "
            "format('student_id ''{}'' is not enrolled at school_id ''{}'' on {} "
            f"(no enrollment with entry_date <= {spec.enrolled_on} <= exit_date)', "
            f"c.student_id, c.school_id, c.{on}) AS _reason "
            f"FROM {rows} c "
            "SEMI JOIN main.students s ON s.student_id = c.student_id "
            "SEMI JOIN main.schools k ON k.school_id = c.school_id "
            "ANTI JOIN main.enrollments e ON e.student_id = c.student_id "
            f"AND e.school_id = c.school_id AND e.entry_date <= c.{on} "
            f"AND (e.exit_date IS NULL OR c.{on} <= e.exit_date)"
        )
    return " UNION ALL ".join(parts)


def _stripped_zeros(spec: TableSpec, rows: str, in_previous: bool) -> list[str]:
    """SQL of the rows whose new identifier is a known one without leading zeros.

    Excel, or a Parquet integer column, turns ``0000006`` into ``6``: loading it
    would make a second student. A ``student_id`` or ``school_id`` not yet known
    is refused when it equals a known one once leading zeros are dropped; known
    means in the warehouse being built (``students`` and ``schools`` are built
    first) or, in those two tables, in the previous warehouse or this export,
    where the longer of two such identifiers is taken as the right one.
    """
    parts = []
    for order, (column, owner) in enumerate(_IDENTIFIERS.items(), start=100):
        if column not in spec.columns:
            continue
        name = quote(column)
        if spec.name == owner:
            held = f"SELECT {name} AS id FROM previous.{quote(owner)}"
            known = f"SELECT {name} AS id FROM {_staging('new', spec)}"
            known = f"({held} UNION {known})" if in_previous else f"({known})"
            held = f"({held})" if in_previous else "(SELECT NULL AS id WHERE false)"
        else:
            held = known = f"(SELECT {name} AS id FROM main.{quote(owner)})"
        reason = sql_text(
            f"{column} '{{}}' matches existing '{{}}' once zero-padded: "
            "identifiers must keep their leading zeros"
        )
        parts.append(
            f"SELECT c._row, {order} AS _order, "
            f"format({reason}, c.{name}, min(k.id)) AS _reason "
            f"FROM (SELECT * FROM {rows} ANTI JOIN {held} h ON h.id = {name}) c "
            f"JOIN {known} k ON ltrim(k.id, '0') = ltrim(c.{name}, '0') "
            f"AND length(k.id) > length(c.{name}) GROUP BY c._row, c.{name}"
        )
    return parts


# Each identifier checked for lost leading zeros, and the table that defines it.
_IDENTIFIERS = {"student_id": "students", "school_id": "schools"}
# The table each KPI definition is labelled from, and what an empty one means.
KPI_SOURCES = {
    "chronic_absence": "attendance",
    "course_failure": "grades",
    "not_proficient": "assessments",
}
EMPTY_MEANS = {
    "attendance": "every enrolled day counts as attended and nobody is chronically "
    "absent",
    "grades": "no course marks: no course-failure labels and no course flags",
    "assessments": "no test results: no proficiency labels",
}


def _merge(
    connection: duckdb.DuckDBPyConnection, spec: TableSpec, in_previous: bool
) -> tuple[int, int]:
    """Build the table of the new warehouse; (loaded, unchanged) counts."""
    table = quote(spec.name)
    columns = ", ".join(map(quote, spec.columns))
    accepted = (
        f"(SELECT {columns} FROM {_staging('new', spec)} "
        "ANTI JOIN set_aside USING (_row))"
    )
    connection.execute(f"CREATE TABLE main.{table} ({column_definitions(spec)})")
    if in_previous:
        # The export's version of a row wins over the one the warehouse held.
        match = " AND ".join(f"n.{quote(name)} = p.{quote(name)}" for name in spec.key)
        connection.execute(
            f"INSERT INTO main.{table} SELECT {columns} FROM previous.{table} p "
            f"ANTI JOIN {accepted} n ON {match}"
        )
    connection.execute(f"INSERT INTO main.{table} SELECT * FROM {accepted}")
    count = _count(connection, accepted)
    loaded = count
    if in_previous:
        loaded = _count(
            connection, f"({accepted} EXCEPT SELECT {columns} FROM previous.{table})"
        )
    connection.execute("DROP TABLE set_aside")
    return loaded, count - loaded


def _staging(step: str, spec: TableSpec) -> str:
    return f"staging.{quote(step + '_' + spec.name)}"


def _as_texts(spec: TableSpec) -> str:
    return ", ".join(
        f"CAST({quote(name)} AS VARCHAR) AS {quote(name)}" for name in spec.columns
    )


def _write_quarantine(
    connection: duckdb.DuckDBPyConnection, spec: TableSpec, path: Path
) -> None:
    columns = ", ".join(map(quote, spec.columns))
    connection.execute(
        f"COPY (SELECT {columns}, _row, _reason "
        f"FROM {_staging('rejected', spec)} ORDER BY _row, _reason) "
        f"TO {sql_text(str(path))} (FORMAT csv, HEADER)"
    )


def _pending(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")
