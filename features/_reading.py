"""Reading an export's tables as text, in chunks, with each row's number in its file.

Every value is read as a string, exactly as written: no type is guessed, so ``00123``
keeps its zeros and ``"0.5"`` (a quoted number) is the text ``0.5``. CSV files are
UTF-8, with or without a byte-order mark, with LF or CRLF line ends; blank lines are
skipped.
Parquet columns of other types are turned into the same text a CSV would hold (dates
as ``YYYY-MM-DD``, booleans as ``true``/``false``, missing values as empty strings).

A chunk is a frame indexed by ``_row``: the 1-based number of the row among the data
rows of its file, not counting the header or blank lines (a quoted value that spans two
lines is still one row). A CSV line with the wrong number of fields cannot be split
into columns; it becomes a :class:`MalformedRow` with its number, so that it is
quarantined rather than lost.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from features._schemas import TableRefused

# Rows per chunk: about 100 MB of text for the widest tables.
CHUNK_ROWS = 500_000
_BLOCK_BYTES = 32 << 20


@dataclass(frozen=True)
class MalformedRow:
    """A CSV line that does not split into as many fields as the header."""

    row: int
    fields: int
    expected: int

    @property
    def reason(self) -> str:
        return f"the row has {self.fields} fields, the header has {self.expected}"


@dataclass(frozen=True)
class TextChunk:
    """Rows of one table as text, indexed by ``_row``, and the malformed ones."""

    rows: pd.DataFrame
    malformed: tuple[MalformedRow, ...] = ()


@dataclass(frozen=True)
class TableSource:
    """Where a table comes from and how to read it, chunk by chunk."""

    table: str
    origin: str
    columns: tuple[str, ...]
    path: Path | None = None
    frame: pd.DataFrame | None = None

    def chunks(self) -> Iterator[TextChunk]:
        if self.frame is not None:
            return _frame_chunks(self.frame, self.columns)
        assert self.path is not None
        if self.path.suffix == ".parquet":
            return _parquet_chunks(self.path, self.columns)
        return _csv_chunks(self.path, self.columns)


def column_names(table: str, origin: str, names: list[str]) -> tuple[str, ...]:
    """Header names stripped and lower-cased; a repeated name refuses the table."""
    cleaned = tuple(str(name).strip().lower() for name in names)
    repeated = sorted({name for name in cleaned if cleaned.count(name) > 1})
    if repeated:
        raise TableRefused(
            table,
            f"table {table} ({origin}): column {', '.join(map(repr, repeated))} "
            "appears more than once in the header",
        )
    return cleaned


def find_sources(folder: Path, tables: list[str]) -> dict[str, TableSource]:
    """The ``<table>.csv`` or ``<table>.parquet`` file of each table in ``folder``."""
    sources = {}
    for table in tables:
        found = [
            path
            for path in (folder / f"{table}.csv", folder / f"{table}.parquet")
            if path.is_file()
        ]
        if len(found) > 1:
            raise TableRefused(
                table,
                f"table {table}: both {found[0].name} and {found[1].name} exist in "
                f"{folder}; keep one",
            )
        if found:
            sources[table] = file_source(table, found[0])
    return sources


def file_source(table: str, path: Path) -> TableSource:
    """A table read from a CSV or Parquet file, its header checked now."""
    if path.suffix == ".parquet":
        try:
            names = pq.read_schema(path).names
        except pyarrow.ArrowException:
            # Often a CSV saved under a .parquet name; Arrow's text says only
            # "magic bytes not found", which names neither table nor file.
            raise TableRefused(
                table,
                f"table {table} ({path.name}) cannot be read: it is not a Parquet "
                f"file; expected {table}.parquet to be Parquet or {table}.csv to "
                "be CSV",
            ) from None
    else:
        names = _csv_header(table, path)
    return TableSource(table, path.name, column_names(table, path.name, names), path)


def frame_source(table: str, origin: str, frame: pd.DataFrame) -> TableSource:
    """A table an adapter built in memory; a ``_row`` column, if any, numbers rows."""
    names = [name for name in frame.columns if name != "_row"]
    return TableSource(table, origin, column_names(table, origin, names), frame=frame)


def _csv_header(table: str, path: Path) -> list[str]:
    # Only the first line is decoded here: a bad byte further down is the row
    # reader's to report.
    with path.open("rb") as stream:
        first_line = stream.readline(1 << 20)
    try:
        header = next(csv.reader([first_line.decode("utf-8-sig")]), None)
    except UnicodeDecodeError:
        raise TableRefused(
            table, f"table {table} ({path.name}): the header is not UTF-8 text"
        ) from None
    if not header or not any(name.strip() for name in header):
        raise TableRefused(
            table, f"table {table} ({path.name}): the file has no header"
        )
    return header


def undecodable_line(path: Path) -> int | None:
    """The 1-based line (as a text editor counts, header included) where the file
    stops being UTF-8, or None when it decodes whole."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as stream:
        while block := stream.read(_BLOCK_BYTES):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                return line + block.count(b"\n", 0, error.start)
            line += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return line
    return None


def _csv_chunks(path: Path, columns: tuple[str, ...]) -> Iterator[TextChunk]:
    malformed: list[MalformedRow] = []

    def skip(row: pcsv.InvalidRow) -> str:
        # Arrow numbers rows from 1 with the header as row 1 and blank lines not
        # counted (known because the reader is single-threaded), so the data row
        # is one less.
        malformed.append(
            MalformedRow(row.number - 1, row.actual_columns, row.expected_columns)
        )
        return "skip"

    raw_names = _csv_header(path.stem, path)
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(use_threads=False, block_size=_BLOCK_BYTES),
        parse_options=pcsv.ParseOptions(
            newlines_in_values=True, invalid_row_handler=skip
        ),
        convert_options=pcsv.ConvertOptions(
            column_types=dict.fromkeys(raw_names, pyarrow.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    last_row = 0
    for batch in reader:
        rows = _numbered(batch, columns, last_row, malformed)
        if len(rows):
            last_row = int(rows.index[-1])
        yield TextChunk(rows, tuple(malformed))
        malformed.clear()
    if malformed:
        yield TextChunk(_numbered(None, columns, last_row, []), tuple(malformed))


def _numbered(
    batch: pyarrow.RecordBatch | None,
    columns: tuple[str, ...],
    last_row: int,
    malformed: list[MalformedRow],
) -> pd.DataFrame:
    """A batch as a text frame whose index skips the numbers of malformed rows."""
    size = 0 if batch is None else batch.num_rows
    skipped = {row.row for row in malformed}
    candidates = np.arange(last_row + 1, last_row + 1 + size + len(skipped))
    numbers = candidates[~np.isin(candidates, list(skipped))][:size]
    index = pd.Index(numbers, name="_row", dtype="int64")
    if batch is None:
        empty = pyarrow.array([], pyarrow.string())
        return pd.DataFrame({name: _strings(empty, index) for name in columns}, index)
    return pd.DataFrame(
        {name: _strings(batch.column(i), index) for i, name in enumerate(columns)},
        index=index,
    )


def _parquet_chunks(path: Path, columns: tuple[str, ...]) -> Iterator[TextChunk]:
    last_row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS):
        index = pd.RangeIndex(last_row + 1, last_row + 1 + batch.num_rows, name="_row")
        last_row += batch.num_rows
        yield TextChunk(
            pd.DataFrame(
                {
                    name: _strings(as_text(batch.column(i)), index)
                    for i, name in enumerate(columns)
                },
                index=index,
            )
        )


def _frame_chunks(frame: pd.DataFrame, columns: tuple[str, ...]) -> Iterator[TextChunk]:
    if "_row" in frame.columns:
        numbers = pd.Index(frame["_row"].astype("int64"), name="_row")
    else:
        numbers = pd.RangeIndex(1, len(frame) + 1, name="_row")
    values = frame.drop(columns="_row", errors="ignore")
    for start in range(0, max(len(frame), 1), CHUNK_ROWS):
        part = values.iloc[start : start + CHUNK_ROWS]
        index = numbers[start : start + CHUNK_ROWS]
        yield TextChunk(
            pd.DataFrame(
                {
                    name: _strings(
                        as_text(pyarrow.array(part.iloc[:, i], from_pandas=True)), index
                    )
                    for i, name in enumerate(columns)
                },
                index=index,
            )
        )


def _strings(values: pyarrow.Array, index: pd.Index) -> pd.Series:
    if isinstance(values, pyarrow.ChunkedArray):
        values = values.combine_chunks()
    array = pd.arrays.ArrowStringArray(values.cast(pyarrow.large_string()))
    return pd.Series(array, index=index)


def as_text(values: pyarrow.Array) -> pyarrow.Array:
    """The text a CSV export would hold for typed values; missing becomes ``""``."""
    kind = values.type
    if pyarrow.types.is_dictionary(kind):
        return as_text(values.dictionary_decode())
    if pyarrow.types.is_timestamp(kind):
        # A timestamp at midnight is a date; any other time is left for the date
        # check to refuse with the value shown.
        midnight = pc.all(pc.equal(values, pc.floor_temporal(values, unit="day")))
        if midnight.as_py() is not False:
            values = values.cast(pyarrow.date32())
    if pyarrow.types.is_null(kind):
        values = values.cast(pyarrow.string())
    return pc.fill_null(values.cast(pyarrow.string()), "")
