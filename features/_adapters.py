"""Adapters: export shapes other than the canonical tables, turned into them.

``ontrack ingest --format NAME`` looks ``NAME`` up in :data:`ADAPTERS`. The built-in
``canonical`` format is not in the registry: it is a folder holding one
``<table>.csv`` or ``<table>.parquet`` file per canonical table, streamed in chunks
so that a 20-million-row attendance file never has to fit in memory at once.

An adapter is a function ``adapter(source, mapping) -> {table: frame}``:

- ``source`` is the path the user gave (a file or a folder); ``mapping`` is the
  optional ``--mapping`` file (for example the column mapping of a flat student
  table), ``None`` when not given.
- It returns one frame per canonical table it could build, keyed by the table name
  (``schools``, ``students``, ``enrollments``, ``calendar``, ``attendance``,
  ``discipline``, ``grades``, ``assessments``, ``programs``). A table it cannot build
  is simply left out; a required one left out fails the run, an optional one is
  reported as missing.
- Each frame has the canonical column names and holds **text**, exactly what the
  canonical reader would have read from a CSV: every value a string, an empty
  string for a missing value, identifiers with their leading zeros, dates as the
  source wrote them. It must not convert, clean or drop anything: the frames go
  through the same validation as a CSV, so a bad value is quarantined with its
  reason rather than silently fixed or lost.
- A frame may carry a ``_row`` column numbering its rows in the source (for example
  the position of the record in the XML file); without one, rows are numbered 1, 2,
  ... in frame order. The number is what the quarantine file shows.
- It may return a ``dict`` subclass with a ``notes`` attribute (a list of
  sentences on what it derived or approximated, as ``AdapterTables`` does): ingest
  copies them into ``IngestReport.notes`` so that they are printed with the counts.
- Problems with the source as a whole (unreadable file, wrong shape, bad mapping)
  raise ``features.IngestError`` (a ``ValueError``) with a message naming the file
  and what was expected, and never a student's name or birth date.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from features._edfi import edfi_xml_adapter

Adapter = Callable[[Path, Path | None], dict[str, pd.DataFrame]]

# Format name (as given to ``--format``) -> adapter. Adapters register themselves by
# adding an entry here.
ADAPTERS: dict[str, Adapter] = {
    "edfi-xml": edfi_xml_adapter,
}
