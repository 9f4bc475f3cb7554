"""Watching the models and publishing progress, safely.

Two faces of the same numbers. ``monitor_drift`` compares the scored snapshot
(features and risks) with the training reference at the same checkpoint and, once a
school year's outcomes are known, predicted against observed rates.
``publish_indicators`` turns student outcomes and risks into public indicators per
KPI, school and student group, after disclosure control: small cells are
suppressed, enough other cells are suppressed with them that no hidden count or
group size can be worked out from the published totals (of groups, of schools, and
of KPIs that count the same students), rates near 0% or 100% are shown as ranges
without a size, and an audit that tries to recover every hidden count and size
must fail before anything is written.
"""

from monitoring._cells import ALL, DISTRICT, NOT_REPORTED, CellTableError
from monitoring._disclosure import (
    DisclosureError,
    missed_range,
    protect_cells,
    rate_cutoff,
)
from monitoring._disclosure_audit import (
    PublishedDisclosureError,
    audit_cells,
    audit_public_rows,
)
from monitoring._jobs import (
    DriftSummary,
    MonitoringInputError,
    PublishSummary,
    monitor_drift,
    publish_indicators,
)

__all__ = [
    "ALL",
    "DISTRICT",
    "NOT_REPORTED",
    "CellTableError",
    "DisclosureError",
    "DriftSummary",
    "MonitoringInputError",
    "PublishSummary",
    "PublishedDisclosureError",
    "audit_cells",
    "audit_public_rows",
    "missed_range",
    "monitor_drift",
    "protect_cells",
    "publish_indicators",
    "rate_cutoff",
]
