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
from monitoring._publish import (
    SuppressionCounts,
    audit_shared_sizes,
    kpi_cells,
    kpi_rows,
    protect_shared_sizes,
)
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


class MonitoringInputError(ValueError):
    """An input another stage wrote is not in the agreed shape or lacks a year.

    A missing input file raises ``FileNotFoundError`` naming the file and the
    command that writes it.
    """


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
    FileNotFoundError
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
    registered = _registered_attributes(config, dimensions)
    min_n = config.privacy.min_n
    cells_by_kpi = {}
    for kpi in config.kpis:
        last_year = _last_year_students(
            labels, snapshots, kpi.name, school_year - 1, dimensions, registered
        )
        cells_by_kpi[kpi.name] = kpi_cells(
            kpi,
            scored[scored["kpi"] == kpi.name],
            current_snapshots,
            last_year,
            dimensions,
            min_n,
            school_year,
        )
    cells_by_kpi = protect_shared_sizes(cells_by_kpi, min_n, school_year)
    tables = []
    for kpi in config.kpis:
        kpi_projections = None
        if projections is not None:
            kpi_projections = projections[projections["kpi"] == kpi.name]
        current, last_year_cells = cells_by_kpi[kpi.name]
        tables.append(
            kpi_rows(
                kpi,
                current,
                last_year_cells,
                kpi_projections,
                school_names,
                counts,
                school_year,
            )
        )
    indicators = pd.concat(tables, ignore_index=True)
    audit_shared_sizes(indicators, cells_by_kpi, min_n, school_year)

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
        "the groups shown, or the district's total minus the schools shown; a "
        "group's size is hidden in every indicator that counts the same students.",
        "Rates close to 0% or 100% are shown as a range, without the group's size "
        "or count, with the range depending on group size (" + "; ".join(bands) + ").",
        "'So far' is the share of students chronically absent so far this year, "
        "on the days enrolled up to the snapshot date; it can still change by year "
        "end, up or down, as more days count, and is known before the year ends "
        "only for chronic absence; "
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
    """One input table, with ``as_of_date`` as a timestamp whatever it was stored as."""
    path = state_dir / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"no {relative.name} at {path}: run `{WRITTEN_BY[relative]}` first"
        )
    frame = pd.read_parquet(path)
    if "as_of_date" in frame.columns:
        frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
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
    registered: pd.DataFrame | None,
) -> pd.DataFrame | None:
    """Last year's labelled students with their protected attributes, or None.

    Attributes come from the student's latest snapshot of that year; for a
    student labelled without one (enrolled only between checkpoints), from their
    latest snapshot of any year, and failing that from the warehouse's
    ``students`` table (``registered``).
    """
    year = labels[(labels["kpi"] == kpi) & (labels["school_year"] == school_year)]
    year = year[year["missed"].notna()]
    if year.empty:
        return None
    ordered = snapshots.sort_values("as_of_date")
    that_year = ordered[ordered["school_year"] == school_year]
    sources = [that_year.iloc[::-1], ordered.iloc[::-1]]
    if registered is not None:
        sources.append(registered)
    attributes = (
        pd.concat([source[["student_id", *dimensions]] for source in sources])
        .drop_duplicates("student_id", keep="first")
        .set_index("student_id")
    )
    return year[["student_id", "school_id", "missed"]].join(attributes, on="student_id")


def _registered_attributes(
    config: DistrictConfig, dimensions: list[str]
) -> pd.DataFrame | None:
    """Protected attributes of every student in the warehouse (no other field)."""
    import duckdb

    path = config.state_dir / WAREHOUSE
    if not path.is_file():
        return None
    columns = ", ".join(f'"{name}"' for name in ["student_id", *dimensions])
    with duckdb.connect(str(path), read_only=True) as connection:
        students = connection.execute(f"SELECT {columns} FROM students").df()
    # Flags as the snapshots store them: 0/1 floats, missing as NaN.
    for name in dimensions:
        values = students[name].dropna()
        if len(values) and values.isin([True, False]).all():
            students[name] = students[name].map({True: 1.0, False: 0.0}).astype(float)
    return students


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


# Keys and context of a student snapshot: never judged for drift, never given to
# Evidently (student_id least of all).
SNAPSHOT_KEYS = ("student_id", "as_of_date", "school_year", "checkpoint", "school_id")
REPORTS_DIR = Path("reports")
MLFLOW_EXPERIMENT = "ontrack-monitoring"
# With one school year of outcomes the training reference is the current year itself
# (Ed-Fi's Grand Bend sample: 2022 against 2022): no drift could ever show.
NOT_JUDGED = "not judged: no earlier school year to compare with"


@dataclass(frozen=True)
class DriftSummary:
    """The verdict of one drift check and where its report went."""

    as_of_date: str
    checkpoint: str
    reference_years: list[int]
    n_current: int
    n_reference: int
    n_judged: int
    n_drifted: int
    drift_share: float
    alert_share: float
    alert: bool
    schools_flagged: list[str]
    schools_too_small: list[str]
    report: Path
    json_path: Path
    run_id: str | None
    seconds: float
    # False when no reference year is earlier than the current one: no verdict.
    judged: bool = True

    def describe(self) -> str:
        """A few lines for the command line; the first says whether it alerts."""
        verdict = "ALERT" if self.alert else "no alert"
        if not self.judged:
            verdict = NOT_JUDGED
        return "\n".join(
            [
                f"drift as of {self.as_of_date} (checkpoint {self.checkpoint}) "
                f"against school year(s) {', '.join(map(str, self.reference_years))}: "
                f"{verdict}",
                f"  {self.n_drifted} of {self.n_judged} columns drifted "
                f"({100 * self.drift_share:.0f}%; alert at "
                f"{100 * self.alert_share:.0f}%); {self.n_current} students now, "
                f"{self.n_reference} in the reference",
                f"  schools flagged: {', '.join(self.schools_flagged) or 'none'}; "
                f"too small to judge: {', '.join(self.schools_too_small) or 'none'}",
                f"  report: {self.report}",
                f"  JSON:   {self.json_path}",
                f"  MLflow run: {self.run_id or 'not logged'} ({self.seconds:.1f} s)",
            ]
        )


def monitor_drift(config: DistrictConfig) -> DriftSummary:
    """Drift of the current scored snapshot against the training reference.

    The reference is the student snapshots of the training school years (every
    complete year but the latest, which is the holdout; the only one when there is
    just one) at the checkpoint of the current as-of date. Features come from the
    snapshots, scores from the scored snapshot now and from each KPI's champion on
    the reference rows. Writes ``reports/drift.html`` and ``reports/drift.json``
    and logs the summary to MLflow.
    """
    from monitoring._drift import TOO_SMALL, column_drift, school_drift
    from monitoring._drift_report import drift_document, insert_section, summary_section

    started = time.perf_counter()
    state_dir = config.state_dir
    scored = _read(state_dir, SCORED_SNAPSHOT)
    as_of_date = scored["as_of_date"].max()
    scored = scored[scored["as_of_date"] == as_of_date]
    school_year = int(scored["school_year"].iloc[0])
    checkpoint = reference_checkpoint(
        pd.Timestamp(as_of_date).strftime("%m-%d"), config.calendar.checkpoints
    )
    snapshots = _read(state_dir, STUDENT_SNAPSHOTS)
    labels = _read(state_dir, KPI_LABELS)

    reference_years = training_years(labels)
    month_day = _month_day(snapshots)
    reference = snapshots[
        snapshots["school_year"].isin(reference_years) & (month_day == checkpoint)
    ]
    current = snapshots[snapshots["as_of_date"] == as_of_date]
    if current.empty:
        raise MonitoringInputError(
            f"{STUDENT_SNAPSHOTS}: no snapshot rows as of {as_of_date:%Y-%m-%d}, the "
            "date of the scored snapshot; expected the features of the scored students"
        )
    if reference.empty:
        raise MonitoringInputError(
            f"{STUDENT_SNAPSHOTS}: no snapshots at checkpoint {checkpoint} in the "
            f"training year(s) {reference_years}; expected the training reference "
            "(run `ontrack features` for every checkpoint)"
        )
    numeric, categorical = _judged_columns(snapshots)

    scorers = _champions(config)
    current = current.merge(_risk_columns(scored), on="student_id", how="left")
    scores_note = ""
    if scorers:
        reference = reference.merge(
            _risk_columns(_score(scorers, reference)), on="student_id", how="left"
        )
        numeric += [f"risk_{kpi}" for kpi in scorers]
    else:
        scores_note = "no champion model to score the reference with"
    result = column_drift(reference, current, numeric, categorical)
    schools = school_drift(
        reference,
        current,
        numeric,
        categorical,
        config.monitoring.min_school_n,
        config.monitoring.drift_alert_share,
    )

    calibration, auc = _calibration_frames(scorers, snapshots, labels)
    judged = any(year < school_year for year in reference_years)
    alert = judged and result.drift_share >= config.monitoring.drift_alert_share
    if not judged:
        logger.warning("drift as of %s %s", as_of_date, NOT_JUDGED)
    context = {
        "as_of_date": pd.Timestamp(as_of_date).date().isoformat(),
        "checkpoint": checkpoint,
        "school_year": school_year,
        "reference_years": reference_years,
        "alert_share": config.monitoring.drift_alert_share,
        "alert": bool(alert),
        "drift_judged": judged,
        "drift_not_judged_reason": None if judged else NOT_JUDGED,
        "min_school_n": config.monitoring.min_school_n,
        "scores_judged": bool(scorers),
        "scores_note": scores_note,
        "calibration_note": (
            "Each completed year's snapshots are scored with the current champion "
            f"model; years {reference_years} are its training years (in-sample), "
            "later ones are out of sample."
        ),
    }
    document = drift_document(result, schools, calibration, auc, context)

    reports_dir = state_dir / REPORTS_DIR
    reports_dir.mkdir(parents=True, exist_ok=True)
    report = reports_dir / "drift.html"
    json_path = reports_dir / "drift.json"
    evidently_html = reports_dir / "drift_evidently.tmp.html"
    result.snapshot.save_html(str(evidently_html))
    report.write_text(
        insert_section(
            evidently_html.read_text(encoding="utf-8"), summary_section(document)
        ),
        encoding="utf-8",
    )
    evidently_html.unlink()
    json_path.write_text(json.dumps(document, indent=1, allow_nan=False), "utf-8")
    run_id = _log_to_mlflow(config, document, json_path)

    summary = DriftSummary(
        as_of_date=context["as_of_date"],
        checkpoint=checkpoint,
        reference_years=reference_years,
        n_current=result.n_current,
        n_reference=result.n_reference,
        n_judged=result.n_judged,
        n_drifted=result.n_drifted,
        drift_share=result.drift_share,
        alert_share=config.monitoring.drift_alert_share,
        alert=bool(alert),
        schools_flagged=(
            sorted(schools.loc[schools["flagged"], "school_id"]) if judged else []
        ),
        schools_too_small=sorted(
            schools.loc[schools["verdict"] == TOO_SMALL, "school_id"]
        ),
        report=report,
        json_path=json_path,
        run_id=run_id,
        seconds=time.perf_counter() - started,
        judged=judged,
    )
    logger.info(
        "drift as of %s: %d of %d columns drifted (share %.2f, alert %s), run %s, "
        "%.1f s",
        summary.as_of_date,
        summary.n_drifted,
        summary.n_judged,
        summary.drift_share,
        summary.alert,
        run_id,
        summary.seconds,
    )
    return summary


def training_years(labels: pd.DataFrame) -> list[int]:
    """The school years the models trained on: every labelled year but the latest.

    The latest school year with KPI labels is the training stage's holdout, so it
    is left out, unless it is the only one (then the models trained on part of it).
    With labels for 2023, 2024 and 2025 the training years are 2023 and 2024.
    """
    complete = sorted(int(year) for year in labels["school_year"].unique())
    if not complete:
        raise MonitoringInputError(
            f"{KPI_LABELS}: no school year has outcomes; expected at least one "
            "complete year to compare with"
        )
    return complete[:-1] or complete


def reference_checkpoint(month_day: str, checkpoints: list[str]) -> str:
    """The checkpoint whose reference an as-of date is compared with.

    A checkpoint date is its own; an ad-hoc date takes the latest checkpoint on or
    before it in the school year (autumn months first), or the first checkpoint
    when it comes before all of them. With checkpoints 10-01, 12-01, 02-01 and
    04-01, 2026-03-15 is compared with 02-01 and 2025-09-10 with 10-01.
    """
    if month_day in checkpoints:
        return month_day

    def order(value: str) -> tuple[int, str]:
        return (0 if int(value[:2]) >= 8 else 1, value)

    earlier = [c for c in checkpoints if order(c) <= order(month_day)]
    return max(earlier, key=order) if earlier else min(checkpoints, key=order)


def _month_day(snapshots: pd.DataFrame) -> pd.Series:
    """Each snapshot's checkpoint (``MM-DD``), from its as-of date."""
    return pd.to_datetime(snapshots["as_of_date"]).dt.strftime("%m-%d")


def _judged_columns(snapshots: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numeric and categorical columns of the snapshots, keys left out."""
    numeric, categorical = [], []
    for column in snapshots.columns:
        if column in SNAPSHOT_KEYS:
            continue
        values = snapshots[column]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            numeric.append(column)
        elif pd.api.types.is_datetime64_any_dtype(values):
            continue
        else:
            categorical.append(column)
    return numeric, categorical


def _risk_columns(scored: pd.DataFrame) -> pd.DataFrame:
    """One row per student, one ``risk_<kpi>`` column per KPI."""
    wide = scored.pivot_table(
        index="student_id", columns="kpi", values="risk", aggfunc="first"
    )
    wide.columns = [f"risk_{kpi}" for kpi in wide.columns]
    return wide.reset_index()


def _champions(config: DistrictConfig) -> dict:
    """Each KPI's champion scorer, or an empty dict when none is registered."""
    try:
        from training import load_champions
    except ImportError:
        return {}
    if not (config.mlruns_dir / "mlflow.db").is_file():
        return {}
    return load_champions(config)


def _score(scorers: dict, snapshots: pd.DataFrame) -> pd.DataFrame:
    """Risks of every snapshot row under each champion (no drivers)."""
    parts = [scorer.score(snapshots, drivers="none") for scorer in scorers.values()]
    columns = ["student_id", "as_of_date", "school_year", "kpi", "risk"]
    return pd.concat([part[columns] for part in parts], ignore_index=True)


def _calibration_frames(
    scorers: dict, snapshots: pd.DataFrame, labels: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predicted against observed for every year with outcomes, by the champions."""
    from monitoring._calibration import (
        AUC_COLUMNS,
        CALIBRATION_COLUMNS,
        auc_by_year,
        calibration_over_time,
    )

    completed = snapshots[snapshots["school_year"].isin(labels["school_year"].unique())]
    if not scorers or completed.empty:
        return pd.DataFrame(columns=CALIBRATION_COLUMNS), pd.DataFrame(
            columns=AUC_COLUMNS
        )
    predictions = _score(scorers, completed)
    predictions["checkpoint"] = _month_day(predictions)
    return calibration_over_time(predictions, labels), auc_by_year(predictions, labels)


def _log_to_mlflow(
    config: DistrictConfig, document: dict, json_path: Path
) -> str | None:
    """One run in the monitoring experiment: metrics and the JSON summary."""
    from mlflow.tracking import MlflowClient

    config.mlruns_dir.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=config.mlflow_uri)
    experiment = client.get_experiment_by_name(MLFLOW_EXPERIMENT)
    if experiment is None:
        artifacts = (config.mlruns_dir / "artifacts" / "monitoring").resolve()
        artifacts.mkdir(parents=True, exist_ok=True)
        experiment_id = client.create_experiment(
            MLFLOW_EXPERIMENT, artifact_location=artifacts.as_uri()
        )
    else:
        experiment_id = experiment.experiment_id
    run = client.create_run(experiment_id, run_name=f"drift {document['as_of_date']}")
    run_id = run.info.run_id
    client.log_param(run_id, "as_of_date", document["as_of_date"])
    client.log_param(run_id, "checkpoint", document["checkpoint"])
    client.log_param(
        run_id, "reference_years", ",".join(map(str, document["reference_years"]))
    )
    client.log_param(run_id, "alert_share", document["alert_share"])
    client.log_param(run_id, "drift_judged", document["drift_judged"])
    metrics = {
        "drift_share": document["drift_share"],
        "n_drifted": document["n_drifted"],
        "n_judged": document["n_judged"],
        "alert": float(document["alert"]),
        "n_current": document["n_current"],
        "n_reference": document["n_reference"],
    }
    for row in document["auc_by_year"]:
        if row["auc"] is not None:
            metrics[f"auc_{row['kpi']}_{row['school_year']}"] = row["auc"]
    for name, value in metrics.items():
        client.log_metric(run_id, name, float(value))
    client.log_artifact(run_id, str(json_path))
    client.set_terminated(run_id)
    return run_id
