"""From a district's export to indicators as of any date.

Ingest validates the canonical tables (or an adapter's output), quarantines bad rows
and loads the warehouse; the indicator definitions turn the warehouse into student
and school snapshots keyed by ``(student_id, as_of_date)`` that use only events
strictly before ``as_of_date``, plus KPI labels and the ABC baseline flags. The demo
generator writes a made-up district in the canonical shape.
"""

from features._demo_district import DemoSummary, generate_demo_district
from features._ingest import IngestError, IngestReport, ingest_district
from features._warehouse import open_warehouse, write_warehouse

__all__: list[str] = [
    "DemoSummary",
    "generate_demo_district",
    "IngestError",
    "IngestReport",
    "ingest_district",
    "open_warehouse",
    "write_warehouse",
]
