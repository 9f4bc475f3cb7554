"""From a district's export to indicators as of any date.

Ingest validates the canonical tables (or an adapter's output), quarantines bad rows
and loads the warehouse; the indicator definitions turn the warehouse into student
and school snapshots keyed by ``(student_id, as_of_date)`` that use only events
strictly before ``as_of_date``, plus KPI labels and the ABC baseline flags. The demo
generator writes a made-up district in the canonical shape.

Adapters turn other shapes into the canonical tables: ``read_edfi_xml`` reads an
Ed-Fi interchange export (and says what it had to derive). ``read_student_table``
reads a flat one-row-per-student table through a column mapping, straight into
features, KPI labels and groups, for data that has no event tables;
``ingest_student_table`` writes such a table as the snapshot files the later stages
read, with its own feature catalog. ``feature_catalog_for(state_dir)`` is the
catalog of the snapshots in a state folder: a flat table's stored one, or
``FEATURE_CATALOG``.
"""

from features._abc_flags import abc_flags
from features._catalog import FEATURE_CATALOG, Feature, format_value
from features._demo_district import DemoSummary, generate_demo_district
from features._edfi import AdapterTables, read_edfi_xml
from features._indicators import kpi_labels, school_snapshots, student_snapshots
from features._ingest import (
    ExportRefused,
    IngestError,
    IngestReport,
    ingest_district,
)
from features._labels import absent_at_least_threshold
from features._schemas import GENDER_CODES, RACE_ETHNICITY_CODES
from features._snapshots import SnapshotSummary, build_snapshots, duckdb_stage
from features._stored_catalog import CatalogFileError, feature_catalog_for
from features._student_table import (
    PublishedResult,
    StudentTable,
    StudentTableError,
    StudentTableMapping,
    read_student_table,
)
from features._table_ingest import StudentTableReport, ingest_student_table
from features._warehouse import open_warehouse, write_warehouse

__all__: list[str] = [
    "GENDER_CODES",
    "RACE_ETHNICITY_CODES",
    "absent_at_least_threshold",
    "DemoSummary",
    "generate_demo_district",
    "FEATURE_CATALOG",
    "Feature",
    "SnapshotSummary",
    "abc_flags",
    "build_snapshots",
    "duckdb_stage",
    "kpi_labels",
    "school_snapshots",
    "student_snapshots",
    "ExportRefused",
    "IngestError",
    "IngestReport",
    "ingest_district",
    "open_warehouse",
    "write_warehouse",
    "AdapterTables",
    "read_edfi_xml",
    "StudentTable",
    "StudentTableError",
    "read_student_table",
    "CatalogFileError",
    "PublishedResult",
    "StudentTableMapping",
    "StudentTableReport",
    "feature_catalog_for",
    "format_value",
    "ingest_student_table",
]
