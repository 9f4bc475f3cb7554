"""Wiring: read the stage outputs, call the pure steps, write reports and pages.

``publish_indicators`` and ``monitor_drift`` are what ``ontrack publish`` and
``ontrack monitor`` call. Each reads the files other stages wrote under the state
folder (see docs/CONTRACTS.md), fails with a message naming a missing file and the
command that writes it, and returns a summary the command prints.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from monitoring._disclosure import LARGE_GROUP_CUTOFF, RATE_CUTOFFS
from monitoring._public_page import PageContext, render_page
from monitoring._publish import SuppressionCounts, kpi_indicators
from ontrack.config import DistrictConfig

logger = logging.getLogger(__name__)

SCORED_SNAPSHOT = Path("scores/scored_snapshot.parquet")
SCHOOL_PROJECTIONS = Path("scores/school_projections.parquet")
STUDENT_SNAPSHOTS = Path("snapshots/student_snapshots.parquet")
KPI_LABELS = Path("snapshots/kpi_labels.parquet")
PUBLIC_DIR = Path("public")
WAREHOUSE = Path("warehouse.duckdb")
WRITTEN_BY = {
    SCORED_SNAPSHOT: "ontrack score",
    SCHOOL_PROJECTIONS: "ontrack score",
    STUDENT_SNAPSHOTS: "ontrack features",
    KPI_LABELS: "ontrack features",
}


class MonitoringInputError(FileNotFoundError):
    """An input another stage writes is missing or not in the agreed shape."""


@dataclass(frozen=True)
class PublishSummary:
    """Where the public indicators went and how much was hidden."""

    page: Path
    json_path: Path
    csv_path: Path
    as_of_date: str
    n_rows: int
    n_kpis: int
    primary_suppressed: int
    complementary_suppressed: int
    ranged: int
    seconds: float

    def describe(self) -> str:
        """A few lines for the command line."""
        return "\n".join(
            [
                f"public indicators as of {self.as_of_date}: {self.n_rows} rows for "
                f"{self.n_kpis} KPIs",
                f"  cells suppressed: {self.primary_suppressed} under the minimum n, "
                f"{self.complementary_suppressed} complementary; "
                f"{self.ranged} rates shown as ranges",
                "  disclosure audit: no hidden count can be worked out",
                f"  page: {self.page}",
                f"  JSON: {self.json_path}",
                f"  CSV:  {self.csv_path}",
                f"  ({self.seconds:.1f} s)",
            ]
        )


def publish_indicators(config: DistrictConfig) -> PublishSummary:
    """Public progress indicators per KPI, school and group, after disclosure control.

    Reads the scored snapshot, the student snapshots, the KPI labels and (when
    present) the school projections; writes ``public/index.html``,
    ``public/indicators.json`` and ``public/indicators.csv`` under the state folder
    only after every table passed the disclosure audit.

    Raises
    ------
    MonitoringInputError
        When an input file is missing.
    monitoring.DisclosureError
        When a table cannot be protected; nothing is written.
    """
    started = time.perf_counter()
    state_dir = config.state_dir
    scored = _read(state_dir, SCORED_SNAPSHOT)
    as_of_date = scored["as_of_date"].max()
    scored = scored[scored["as_of_date"] == as_of_date]
    school_year = int(scored["school_year"].iloc[0])
    snapshots = _read(state_dir, STUDENT_SNAPSHOTS)
    labels = _read(state_dir, KPI_LABELS)
    projections = _read_optional(state_dir, SCHOOL_PROJECTIONS)
    dimensions = list(config.privacy.protected_attributes)
    current_snapshots = snapshots[snapshots["as_of_date"] == as_of_date]
    scored = _with_attributes(scored, current_snapshots, dimensions)
    school_names = _school_names(config)

    counts = SuppressionCounts()
    tables = []
    for kpi in config.kpis:
        last_year = _last_year_students(
            labels, snapshots, kpi.name, school_year - 1, dimensions
        )
        kpi_projections = None
        if projections is not None:
            kpi_projections = projections[projections["kpi"] == kpi.name]
        tables.append(
            kpi_indicators(
                kpi,
                scored[scored["kpi"] == kpi.name],
                current_snapshots,
                last_year,
                kpi_projections,
                dimensions,
                config.privacy.min_n,
                school_names,
                counts,
                school_year,
            )
        )
    indicators = pd.concat(tables, ignore_index=True)

    as_of_text = pd.Timestamp(as_of_date).date().isoformat()
    context = PageContext(
        district_name=config.district.name,
        as_of_date=as_of_text,
        school_year=school_year,
        min_n=config.privacy.min_n,
        rules=disclosure_rules(config.privacy.min_n),
    )
    public_dir = state_dir / PUBLIC_DIR
    public_dir.mkdir(parents=True, exist_ok=True)
    page = public_dir / "index.html"
    json_path = public_dir / "indicators.json"
    csv_path = public_dir / "indicators.csv"
    page.write_text(render_page(indicators, context), encoding="utf-8")
    json_path.write_text(
        json.dumps(
            _json_document(indicators, config, context), indent=1, allow_nan=False
        ),
        encoding="utf-8",
    )
    indicators.to_csv(csv_path, index=False)
    summary = PublishSummary(
        page=page,
        json_path=json_path,
        csv_path=csv_path,
        as_of_date=as_of_text,
        n_rows=len(indicators),
        n_kpis=len(config.kpis),
        primary_suppressed=counts.primary,
        complementary_suppressed=counts.complementary,
        ranged=counts.ranged,
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "published %d indicator rows as of %s: %d suppressed, %d complementary, "
        "%d ranged, in %.1f s",
        summary.n_rows,
        as_of_text,
        counts.primary,
        counts.complementary,
        counts.ranged,
        summary.seconds,
    )
    return summary


def disclosure_rules(min_n: int) -> list[str]:
    """The disclosure rules in plain words, for the page and the JSON."""
    bands = []
    previous = min_n
    for largest, cutoff in RATE_CUTOFFS:
        if largest >= previous:
            bands.append(
                f"{previous} to {largest} students: below {cutoff}% or above "
                f"{100 - cutoff}%"
            )
        previous = largest + 1
    bands.append(
        f"more than {previous - 1} students: below {LARGE_GROUP_CUTOFF}% or above "
        f"{100 - LARGE_GROUP_CUTOFF}%"
    )
    return [
        f"A group with fewer than {min_n} students is not shown (suppressed): "
        "neither its size nor its rate.",
        "Other groups are suppressed with it wherever the hidden figure could "
        "otherwise be worked out from totals, for example the school's total minus "
        "the groups shown.",
        "Rates close to 0% or 100% are shown as a range, without a count, with the "
        "range depending on group size (" + "; ".join(bands) + ").",
        "'So far' counts students who have already missed the standard this year; "
        "'projected' is the expected rate at the end of the year from each "
        "student's predicted risk, with a 90% interval.",
        "On track means the projected rate is at or below the target.",
    ]


def _json_document(
    indicators: pd.DataFrame, config: DistrictConfig, context: PageContext
) -> dict:
    records = [
        {key: _plain(value) for key, value in record.items()}
        for record in indicators.to_dict("records")
    ]
    return {
        "district": config.district.name,
        "school_year": context.school_year,
        "as_of_date": context.as_of_date,
        "min_n": config.privacy.min_n,
        "rules": list(context.rules),
        "kpis": [
            {
                "kpi": kpi.name,
                "label": kpi.label,
                "direction": kpi.direction,
                "district_target": kpi.district_target,
            }
            for kpi in config.kpis
        ],
        "indicators": records,
    }


def _plain(value):
    """A JSON value: None for missing, Python numbers and booleans."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _read(state_dir: Path, relative: Path) -> pd.DataFrame:
    path = state_dir / relative
    if not path.is_file():
        raise MonitoringInputError(
            f"no {relative.name} at {path}: run `{WRITTEN_BY[relative]}` first"
        )
    frame = pd.read_parquet(path)
    logger.debug("read %s: %d rows", path, len(frame))
    return frame


def _read_optional(state_dir: Path, relative: Path) -> pd.DataFrame | None:
    path = state_dir / relative
    return pd.read_parquet(path) if path.is_file() else None


def _with_attributes(
    scored: pd.DataFrame, snapshots: pd.DataFrame, dimensions: list[str]
) -> pd.DataFrame:
    """The scored rows with every protected attribute, from the snapshots if needed."""
    missing = [d for d in dimensions if d not in scored.columns]
    if not missing:
        return scored
    attributes = snapshots.drop_duplicates("student_id", keep="last").set_index(
        "student_id"
    )
    absent = [d for d in missing if d not in attributes.columns]
    if absent:
        raise MonitoringInputError(
            f"{SCORED_SNAPSHOT}: protected attributes {absent} are in neither the "
            f"scored snapshot nor the student snapshots; expected {dimensions}"
        )
    return scored.join(attributes[missing], on="student_id")


def _last_year_students(
    labels: pd.DataFrame,
    snapshots: pd.DataFrame,
    kpi: str,
    school_year: int,
    dimensions: list[str],
) -> pd.DataFrame | None:
    """Last year's labelled students with their protected attributes, or None."""
    year = labels[(labels["kpi"] == kpi) & (labels["school_year"] == school_year)]
    year = year[year["missed"].notna()]
    if year.empty:
        return None
    that_year = snapshots[snapshots["school_year"] == school_year]
    attributes = (
        that_year.sort_values("as_of_date")
        .drop_duplicates("student_id", keep="last")
        .set_index("student_id")
    )
    return year[["student_id", "school_id", "missed"]].join(
        attributes[dimensions], on="student_id"
    )


def _school_names(config: DistrictConfig) -> dict[str, str]:
    """Public school names from the warehouse; ids stand in when it is missing."""
    import duckdb

    path = config.state_dir / WAREHOUSE
    if not path.is_file():
        logger.warning("no warehouse at %s: schools are named by their ids", path)
        return {}
    with duckdb.connect(str(path), read_only=True) as connection:
        schools = connection.execute("SELECT school_id, school_name FROM schools").df()
    return dict(
        zip(schools["school_id"].astype(str), schools["school_name"], strict=True)
    )
