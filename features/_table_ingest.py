"""A flat student table straight to snapshot files, without the warehouse.

``ontrack ingest --format student-table FILE --mapping MAP`` lands here. A flat table
is already one row per student with the outcome in it, so there is no event to
count and nothing for ``ontrack features`` to do: the table's rows become the files
the later stages read (docs/CONTRACTS.md, state folder):

- ``snapshots/student_snapshots.parquet``: one row per student at one nominal
  as-of date, the keys, the mapped protected attributes and the model inputs;
- ``snapshots/kpi_labels.parquet``: one row per student and KPI of the mapping;
- ``snapshots/school_snapshots.parquet``: per school, ``enrollment`` and the mean
  of each numeric input as ``school_<column>``, the school-only baseline's inputs;
- ``snapshots/feature_catalog.json``: the table's own inputs, their domains, kinds
  and plain words (see ``_stored_catalog``);
- ``quarantine/student_table.csv``: the rejected rows with ``_row`` and ``_reason``.

A flat table has no dates. Its as-of date is nominal: the config's first
checkpoint in the table's school year (``[table] school_year`` of the mapping), so
with checkpoint ``10-01`` and school year 2006 every row is as of 2005-10-01. The
mapping's exclusions say which columns would not be known by then.

Notes
-----
The warehouse of the state folder, if any, is left as it is: give a flat table a
state folder of its own, or an old warehouse's school names and student names
would be read by ``score`` and ``publish``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from features._catalog import FEATURE_CATALOG, Feature
from features._stored_catalog import write_feature_catalog
from features._student_table import StudentTable, StudentTableError, read_student_table
from features._warehouse import QUARANTINE_FOLDER

if TYPE_CHECKING:
    from ontrack.config import DistrictConfig

logger = logging.getLogger(__name__)

SNAPSHOT_DIR = Path("snapshots")
QUARANTINE_FILE = Path(QUARANTINE_FOLDER) / "student_table.csv"
KEY_COLUMNS = ("student_id", "as_of_date", "school_year", "checkpoint", "school_id")
# Words of an input the mapping gives none for; ``{name}`` is the column's name.
DEFAULT_WORDS = {
    "number": "{name} {{value}} (median {{reference}})",
    "count": "{name} {{value}} (median {{reference}})",
    "flag": "{name}: {{value}}",
    "category": "{name}: {{value}}",
}

NO_SCHOOL_YEAR = (
    "{mapping}: [table] school_year is missing; ingesting a flat table needs the "
    "school year its rows belong to (named by its spring year, e.g. 2006 for 2005-06)"
)
UNKNOWN_KPI = (
    "{mapping}: [labels] {kpi}: the config defines no KPI of that name; its KPIs: "
    "{known}"
)
UNMAPPED_GROUPS = (
    "{mapping}: the config's [privacy] protected_attributes lists {missing}, which "
    "[groups] does not map (it maps: {mapped}); map them or take them off the "
    "config's list"
)


@dataclass(frozen=True)
class StudentTableReport:
    """What ``ingest --format student-table`` read, set aside and wrote."""

    source: Path
    rows_read: int
    quarantined: int
    students: int
    feature_columns: list[str]
    labels: dict[str, tuple[int, int]]
    as_of_date: dt.date
    files: dict[str, Path]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        """Plain text for the console."""
        lines = [
            f"student table {self.source}: {self.rows_read} rows read, "
            f"{self.students} students kept, {self.quarantined} quarantined",
            f"as of {self.as_of_date} (nominal: the config's first checkpoint), "
            f"{len(self.feature_columns)} model inputs: "
            f"{', '.join(self.feature_columns)}",
        ]
        for kpi, (missed, total) in self.labels.items():
            lines.append(f"{kpi}: {missed} of {total} students missed the standard")
        lines += [f"note: {note}" for note in self.notes]
        lines += [f"{name}: {path}" for name, path in self.files.items()]
        lines.append(f"took {self.seconds:.1f} s (no warehouse; `features` not needed)")
        return "\n".join(lines)


def table_snapshots(
    table: StudentTable, as_of_date: dt.date, checkpoint: str
) -> dict[str, pd.DataFrame]:
    """Student snapshots, school snapshots and KPI labels of a flat table.

    Every student is one snapshot row as of ``as_of_date`` (a checkpoint ``MM-DD``).
    The school snapshot holds ``enrollment`` and the mean of each numeric input per
    school, named ``school_<column>``.
    """
    features = table.features
    school_year = features["school_year"].astype("int64")
    student_snapshots = pd.DataFrame(
        {
            "student_id": features["student_id"],
            "as_of_date": pd.Series([as_of_date] * len(features), dtype="object"),
            "school_year": school_year,
            "checkpoint": checkpoint,
            "school_id": features["school_id"],
        }
    )
    groups = table.groups.set_index("student_id")
    for group in groups.columns:
        student_snapshots[group] = features["student_id"].map(groups[group])
    for column in table.feature_columns:
        student_snapshots[column] = features[column]

    numeric = [
        column
        for column in table.feature_columns
        if pd.api.types.is_numeric_dtype(features[column])
    ]
    by_school = features.groupby("school_id", sort=True)
    school_snapshots = by_school[numeric].mean().add_prefix("school_")
    school_snapshots.insert(0, "enrollment", by_school.size())
    school_snapshots = school_snapshots.reset_index()
    school_snapshots.insert(1, "as_of_date", as_of_date)

    kpi_labels = table.labels.assign(
        school_year=table.labels["school_year"].astype("int64")
    )
    return {
        "student_snapshots": student_snapshots,
        "school_snapshots": school_snapshots,
        "kpi_labels": kpi_labels,
    }


def table_catalog(table: StudentTable) -> dict[str, Feature]:
    """The catalog of a flat table's inputs and mapped protected attributes.

    An input's kind follows its values: text is a ``category``, a number column
    holding only 0 and 1 (yes/no columns become that) a ``flag``, any other a
    ``number``; a column the mapping lists in ``[features] counts`` is a ``count``
    (the service then refuses a negative one). Its domain and words come from the
    mapping, or are ``other`` and the column's name with its value.
    """
    mapping = table.mapping
    domains = mapping.features.domains if mapping else {}
    words = mapping.features.words if mapping else {}
    counts = set(mapping.features.counts) if mapping else set()
    catalog = {}
    for column in table.feature_columns:
        kind = "count" if column in counts else _kind(table.features[column])
        catalog[column] = Feature(
            name=column,
            domain=domains.get(column, "other"),
            template=words.get(column, DEFAULT_WORDS[kind].format(name=column)),
            kind=kind,
        )
    for group in table.groups.columns.drop("student_id"):
        catalog[group] = FEATURE_CATALOG[group]
    return catalog


def _kind(values: pd.Series) -> str:
    if not pd.api.types.is_numeric_dtype(values):
        return "category"
    if values.dropna().isin([0.0, 1.0]).all():
        return "flag"
    return "number"


def ingest_student_table(
    config: DistrictConfig, source: Path, mapping: Path
) -> StudentTableReport:
    """Read a flat student table and write the snapshot files the later stages read.

    Raises
    ------
    StudentTableError
        If the table or mapping cannot be read, the mapping has no school year, a
        label names a KPI the config does not define, or the config lists a
        protected attribute the mapping does not map.
    """
    from ontrack.config import checkpoint_date

    started = time.perf_counter()
    source, mapping = Path(source), Path(mapping)
    table = read_student_table(source, mapping)
    _check_against_config(table, config, mapping)
    checkpoint = config.calendar.checkpoints[0]
    as_of_date = checkpoint_date(checkpoint, table.mapping.table.school_year)
    frames = table_snapshots(table, as_of_date, checkpoint)

    state = config.state_dir
    if (state / "warehouse.duckdb").exists():
        logger.warning(
            "state folder %s also holds a warehouse: score and publish read school "
            "and student names from it",
            state,
        )
    files = {
        name: _write_parquet(frame, state / SNAPSHOT_DIR / f"{name}.parquet")
        for name, frame in frames.items()
    }
    files["feature_catalog"] = write_feature_catalog(table_catalog(table), state)
    files["quarantine"] = _write_csv(table.quarantine, state / QUARANTINE_FILE)

    labels = {
        kpi: (int(rows["missed"].sum()), len(rows))
        for kpi, rows in frames["kpi_labels"].groupby("kpi", sort=False)
    }
    report = StudentTableReport(
        source=source,
        rows_read=len(table.features) + len(table.quarantine),
        quarantined=len(table.quarantine),
        students=len(table.features),
        feature_columns=table.feature_columns,
        labels=labels,
        as_of_date=as_of_date,
        files=files,
        notes=list(table.notes),
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "ingested student table %s as of %s: %s students, %s quarantined, "
        "%s inputs, %.1f s",
        source.name,
        as_of_date,
        report.students,
        report.quarantined,
        len(report.feature_columns),
        report.seconds,
    )
    return report


def _check_against_config(
    table: StudentTable, config: DistrictConfig, mapping: Path
) -> None:
    spec = table.mapping
    if spec.table.school_year is None:
        raise StudentTableError(NO_SCHOOL_YEAR.format(mapping=mapping))
    known = [kpi.name for kpi in config.kpis]
    for kpi in spec.labels:
        if kpi not in known:
            raise StudentTableError(
                UNKNOWN_KPI.format(mapping=mapping, kpi=kpi, known=", ".join(known))
            )
    missing = [
        name for name in config.privacy.protected_attributes if name not in spec.groups
    ]
    if missing:
        raise StudentTableError(
            UNMAPPED_GROUPS.format(
                mapping=mapping,
                missing=", ".join(missing),
                mapped=", ".join(spec.groups) or "none",
            )
        )


def _write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    return _write_atomically(
        path, lambda partial: frame.to_parquet(partial, index=False)
    )


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return _write_atomically(path, lambda partial: frame.to_csv(partial, index=False))


def _write_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """Write through a temporary name: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
