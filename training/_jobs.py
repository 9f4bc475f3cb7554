"""The jobs the CLI runs: ``train_models`` and ``score_students`` (thin wiring).

They read the snapshot files, call the pure steps of the other modules, and write the
outputs: MLflow runs and registry, the training report, scored snapshots, at-risk lists
and school projections. Files are written to a temporary name and renamed, so a reader
never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features import absent_at_least_threshold
from ontrack.config import DistrictConfig
from training import _registry, _report
from training._catalog import feature_catalog, model_inputs
from training._projections import school_projections
from training._scoring import Scorer
from training._training import (
    LABEL_RULE,
    MODEL,
    KpiResult,
    TooFewLabelsError,
    TrainingDataError,
    TrainingSettings,
    train_kpi,
)

logger = logging.getLogger(__name__)

SNAPSHOT_COLUMNS = {
    "student_snapshots": ("student_id", "as_of_date", "school_year", "school_id"),
    "school_snapshots": ("school_id", "as_of_date"),
    "kpi_labels": ("student_id", "school_year", "kpi", "missed"),
}
LIST_TIERS = ("high", "moderate")
KNOWN_LIMITS = [
    "The registered model is fit on the training years only; the holdout year is "
    "used to judge it, not to fit it.",
    "Risks are calibrated on the training years; a change in the base rate in a new "
    "year shows up as calibration error until the model is retrained.",
    "School projections treat students' outcomes as independent given their risks; "
    "shared shocks (an epidemic, a harder test) make the real spread wider.",
    "Drivers explain the model, not the student: a driver is what moved this "
    "estimate, not a proven cause.",
    "Fairness figures describe the holdout year; small groups are shown as too small "
    "rather than estimated.",
]


# Snapshots without ABC flags (a flat student table) flag nobody: precision is NaN.
NO_ABC_FLAGS = (
    "the ABC flags flag nobody in the holdout (the snapshots have none): no "
    "comparison at the same number flagged"
)


class SnapshotError(ValueError):
    """A snapshot file is missing or lacks a column the training needs."""


def _read_table(path: Path, table: str) -> pd.DataFrame:
    if not path.exists():
        raise SnapshotError(
            f"{table}: no file at {path}; run `ontrack features` first to build it"
        )
    frame = pd.read_parquet(path)
    missing = [column for column in SNAPSHOT_COLUMNS[table] if column not in frame]
    if missing:
        raise SnapshotError(
            f"{table} ({path}): missing column(s) {', '.join(missing)}; expected the "
            f"columns of docs/CONTRACTS.md, got {', '.join(map(str, frame.columns))}"
        )
    if "as_of_date" in frame:
        frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
    for column in ("student_id", "school_id"):
        if column in frame:
            frame[column] = frame[column].astype(str)
    return frame


def read_snapshots(state_dir: Path) -> dict[str, pd.DataFrame]:
    """The three snapshot tables under ``<state>/snapshots``."""
    folder = state_dir / "snapshots"
    return {
        table: _read_table(folder / f"{table}.parquet", table)
        for table in SNAPSHOT_COLUMNS
    }


@dataclass
class KpiTraining:
    """What the console says about one KPI after training."""

    kpi: str
    model_version: str
    run_id: str
    size: str
    roc_auc: float
    pr_auc: float
    baseline_pr_auc: dict[str, float]
    abc_precision: float
    model_precision_at_abc: float
    decision: str
    champion: bool


@dataclass
class TrainingSummary:
    """The outcome of ``ontrack train``."""

    kpis: list[KpiTraining]
    split: str
    champion_rule: str
    protected_inputs: bool
    report_path: Path
    json_path: Path
    mlflow_uri: str
    seconds: float
    skipped: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """Plain text for the console."""
        lines = [
            f"{self.split}",
            "protected attributes as model inputs: "
            + ("yes (config opts in)" if self.protected_inputs else "no"),
        ]
        for kpi in self.kpis:
            baselines = ", ".join(
                f"{_report.BASELINE_NAMES[name]} {value:.3f}"
                for name, value in kpi.baseline_pr_auc.items()
            )
            abc = (
                "  at the ABC flags' number flagged: precision "
                f"{kpi.model_precision_at_abc:.1%} (ABC flags {kpi.abc_precision:.1%})"
            )
            if math.isnan(kpi.abc_precision):
                abc = f"  {NO_ABC_FLAGS}"
            lines += [
                f"{kpi.kpi}: model version {kpi.model_version} ({kpi.size})",
                f"  holdout ROC AUC {kpi.roc_auc:.3f}, PR AUC {kpi.pr_auc:.3f}; "
                f"baselines' PR AUC: {baselines}",
                abc,
                f"  {kpi.decision}",
            ]
        for kpi, reason in self.skipped.items():
            lines.append(f"{kpi}: skipped, {reason}")
        lines += [
            f"champion rule: {self.champion_rule}",
            f"report: {self.report_path}",
            f"JSON: {self.json_path}",
            f"MLflow: {self.mlflow_uri}",
            f"took {self.seconds:.0f} s",
        ]
        return "\n".join(lines)


def _settings(config: DistrictConfig) -> TrainingSettings:
    return TrainingSettings(
        seed=config.model.seed,
        n_jobs=config.model.n_jobs,
        school_year_start=config.district.school_year_start,
        protected_attributes=tuple(config.privacy.protected_attributes),
        use_protected=config.privacy.use_protected_as_features,
        min_n=config.privacy.min_n,
    )


def _run_metrics(result: KpiResult) -> dict[str, float]:
    metrics = {}
    skip = {"scorer", "checkpoint"}
    for row in result.metrics.to_dict(orient="records"):
        prefix = f"{row['scorer']}/{row['checkpoint']}"
        metrics.update(
            {
                f"{prefix}/{key}": float(value)
                for key, value in row.items()
                if key not in skip
            }
        )
    for row in result.abc.to_dict(orient="records"):
        prefix = f"abc_same_n/{row['checkpoint']}"
        metrics.update(
            {
                f"{prefix}/{key}": float(v)
                for key, v in row.items()
                if key != "checkpoint"
            }
        )
    for row in result.pr_auc_differences.to_dict(orient="records"):
        for key in ("difference", "low", "high"):
            metrics[f"pr_auc_minus_{row['baseline']}/{key}"] = float(row[key])
    metrics["reference_300x31/all/roc_auc"] = result.reference_auc
    metrics["training_seconds"] = result.fitted.seconds
    return metrics


def _run_params(result: KpiResult, settings: TrainingSettings) -> dict:
    return {
        "kpi": result.kpi,
        "seed": settings.seed,
        "n_jobs": settings.n_jobs,
        "n_trees": result.spec.size.n_trees,
        "num_leaves": result.spec.size.num_leaves,
        "max_depth": result.spec.size.max_depth,
        "calibration": "platt",
        "training_years": ",".join(map(str, result.split.training_years)),
        "holdout_year": result.split.holdout_year,
        "temporal_holdout": result.split.temporal,
        "n_features": len(result.spec.features),
        "protected_inputs": ",".join(result.spec.protected) or "none",
        "n_training_rows": result.n_training_rows,
    }


def train_models(config: DistrictConfig) -> TrainingSummary:
    """Fit, calibrate, evaluate and register one model per KPI; write the report."""
    started = time.perf_counter()
    settings = _settings(config)
    snapshots = read_snapshots(config.state_dir)
    student_snapshots = snapshots["student_snapshots"]
    inputs = model_inputs(
        feature_catalog(config.state_dir),
        list(student_snapshots.columns),
        settings.use_protected,
        list(settings.protected_attributes),
    )
    client, experiment_id = _registry.connect(config.mlruns_dir)
    reports = config.state_dir / "reports"
    plot_folder = reports / "training"
    results, runs, plots, kpis, skipped = [], {}, {}, [], {}
    for kpi in config.kpis:
        if not (snapshots["kpi_labels"]["kpi"] == kpi.name).any():
            skipped[kpi.name] = "no rows in kpi_labels"
            logger.warning("kpi %s has no labels: not trained", kpi.name)
            continue
        try:
            result = train_kpi(
                kpi.name,
                student_snapshots,
                snapshots["school_snapshots"],
                snapshots["kpi_labels"],
                inputs,
                settings,
            )
        except TooFewLabelsError as error:
            skipped[kpi.name] = error.reason
            logger.warning("kpi %s skipped: %s", kpi.name, error.reason)
            continue
        plots[kpi.name] = _report.write_plots(result, plot_folder)
        run = _log_and_register(
            client, experiment_id, result, settings, plots[kpi.name]
        )
        card = _report.model_card(result, run, kpi.label, KNOWN_LIMITS)
        client.log_text(run["run_id"], card, "model_card.md")
        results.append(result)
        runs[kpi.name] = run
        kpis.append(_kpi_training(result, run))
    if not results:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
        raise TrainingDataError(
            f"kpi_labels: no KPI can be trained ({reasons}); each KPI needs "
            f"{LABEL_RULE}"
        )

    document = {
        "district": config.district.name,
        "label_rule": LABEL_RULE,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mlflow_uri": config.mlflow_uri,
        "champion_rule": _registry.CHAMPION_RULE,
        "protected_as_inputs": settings.use_protected,
        "known_limits": KNOWN_LIMITS,
        "skipped": skipped,
        "kpis": {
            result.kpi: _report.kpi_json(result, runs[result.kpi]) for result in results
        },
    }
    json_path = reports / "training.json"
    report_path = reports / "training.html"
    _report.write_json(json_path, document)
    _report.write_html(
        report_path,
        _report.render_html(
            results,
            runs,
            plots,
            {kpi.name: kpi.label for kpi in config.kpis},
            config.district.name,
            settings.use_protected,
            settings.min_n,
            KNOWN_LIMITS,
        ),
    )
    seconds = time.perf_counter() - started
    logger.info(
        "trained %s KPI models in %.1f s; report %s", len(results), seconds, report_path
    )
    return TrainingSummary(
        kpis=kpis,
        split=results[0].split.describe(),
        champion_rule=_registry.CHAMPION_RULE,
        protected_inputs=settings.use_protected,
        report_path=report_path,
        json_path=json_path,
        mlflow_uri=config.mlflow_uri,
        seconds=seconds,
        skipped=skipped,
    )


def _log_and_register(client, experiment_id, result, settings, plots) -> dict:
    tables = {
        "fairness.json": result.fairness,
        "district_drivers.json": result.district_drivers,
        "school_drivers.json": result.school_drivers,
        "holdout_metrics.json": result.metrics,
        "abc_same_number_flagged.json": result.abc,
        "pr_auc_differences.json": result.pr_auc_differences,
        "model_size_candidates.json": result.fitted.size_table,
    }
    texts = {
        f"tables/{name}": table.to_json(orient="records", indent=1)
        for name, table in tables.items()
    }
    tags = {
        "kpi": result.kpi,
        "code_version": _registry.code_version(),
        "training_data_fingerprint": result.training_fingerprint,
        "holdout_data_fingerprint": result.holdout_fingerprint,
        "split": result.split.describe(),
        **{f"library.{name}": v for name, v in _registry.library_versions().items()},
    }
    run_id, version = _registry.log_kpi_run(
        client,
        experiment_id,
        result.kpi,
        result.booster,
        result.spec,
        _run_params(result, settings),
        _run_metrics(result),
        tags,
        list(plots.values()),
        texts,
    )
    decision = _registry.decide_champion(
        client,
        result.kpi,
        version,
        result.figure("pr_auc"),
        result.holdout,
        result.holdout["missed"].to_numpy(),
    )
    return {
        "model_version": version,
        "run_id": run_id,
        "registered_model": _registry.model_name(result.kpi),
        "champion": decision.promoted,
        "champion_decision": decision.describe(),
        "champion_rule": _registry.CHAMPION_RULE,
        "champion_comparison": {
            "new_pr_auc": decision.new_pr_auc,
            "champion_version": decision.champion_version,
            "champion_pr_auc": decision.champion_pr_auc,
        },
    }


def _kpi_training(result: KpiResult, run: dict) -> KpiTraining:
    abc = result.abc.iloc[0]
    return KpiTraining(
        kpi=result.kpi,
        model_version=run["model_version"],
        run_id=run["run_id"],
        size=result.spec.size.label(),
        roc_auc=result.figure("roc_auc"),
        pr_auc=result.figure("pr_auc"),
        baseline_pr_auc={
            name: result.figure("pr_auc", name)
            for name in _report.BASELINE_NAMES
            if name != MODEL
        },
        abc_precision=float(abc["abc_precision"]),
        model_precision_at_abc=float(abc["model_precision"]),
        decision=run["champion_decision"],
        champion=run["champion"],
    )


def load_champions(
    config: DistrictConfig, n_jobs: int | None = None
) -> dict[str, Scorer]:
    """Each KPI's champion :class:`Scorer`, keyed by KPI name.

    KPIs without a champion yet are left out, with a warning.
    """
    client, _ = _registry.connect(config.mlruns_dir)
    scorers = {}
    for kpi in config.kpis:
        try:
            scorers[kpi.name] = _registry.load_scorer(
                client,
                kpi.name,
                tier_high=config.model.tier_high,
                tier_moderate=config.model.tier_moderate,
                top_drivers=config.model.top_drivers,
                n_jobs=n_jobs or config.model.n_jobs,
            )
        except LookupError as error:
            logger.warning("%s", error)
    return scorers


@dataclass
class ScoringSummary:
    """The outcome of ``ontrack score``."""

    as_of_date: dt.date
    rows_scored: int
    students: int
    model_versions: dict[str, str]
    tier_counts: dict[str, dict[str, int]]
    scored_path: Path
    projections_path: Path
    lists_dir: Path
    n_lists: int
    district_projections: list[dict]
    seconds: float

    def describe(self) -> str:
        """Plain text for the console."""
        lines = [
            f"scored {self.students} students as of {self.as_of_date} "
            f"({self.rows_scored} student-KPI rows) in {self.seconds:.1f} s",
        ]
        for kpi, version in self.model_versions.items():
            tiers = self.tier_counts.get(kpi, {})
            lines.append(
                f"{kpi}: champion version {version}; high {tiers.get('high', 0)}, "
                f"moderate {tiers.get('moderate', 0)}, low {tiers.get('low', 0)}"
            )
        for row in self.district_projections:
            lines.append(
                f"district {row['kpi']}: expected year-end rate "
                f"{row['expected_rate']:.1%} (90% {row['rate_low']:.1%} to "
                f"{row['rate_high']:.1%}), target {row['target']:.0%}, "
                f"P(miss target) {row['p_miss_target']:.2f}"
            )
        lines += [
            f"scored snapshot: {self.scored_path}",
            f"at-risk lists ({self.n_lists} files, tiers high and moderate): "
            f"{self.lists_dir}",
            f"school projections: {self.projections_path}",
        ]
        return "\n".join(lines)


def _as_of_rows(student_snapshots: pd.DataFrame, as_of: dt.date | None) -> pd.DataFrame:
    dates = student_snapshots["as_of_date"]
    wanted = dates.max() if as_of is None else pd.Timestamp(as_of)
    rows = student_snapshots[dates == wanted]
    if rows.empty:
        raise SnapshotError(
            f"student_snapshots: no rows with as_of_date {as_of}; available dates: "
            f"{_date_list(dates)}; run `ontrack features --as-of {as_of}` first"
        )
    return rows.reset_index(drop=True)


# Up to this many snapshot dates are listed one by one in an error; more are given as
# the first, the last and the count (a district of ten years has 40 checkpoints).
LISTED_DATES = 12


def _date_list(dates: pd.Series) -> str:
    available = sorted({str(date.date()) for date in dates.unique()})
    if len(available) <= LISTED_DATES:
        return ", ".join(available)
    return f"{len(available)} dates from {available[0]} to {available[-1]}"


def observed_so_far(rows: pd.DataFrame, kpi) -> np.ndarray:
    """Whether each student already misses the KPI on the as-of date, where known.

    Known only for chronic absence (absent at least the threshold of enrolled days,
    enrolled at least the minimum); NaN for the other definitions, whose outcome
    comes at the end of the year.
    """
    if kpi.definition != "chronic_absence" or "days_absent" not in rows:
        return np.full(len(rows), math.nan)
    absent = rows["days_absent"].to_numpy(dtype=float)
    enrolled = rows["days_enrolled"].to_numpy(dtype=float)
    missed = absent_at_least_threshold(absent, enrolled, kpi)
    return np.where(missed & (enrolled >= kpi.min_enrolled_days), 1.0, 0.0)


def score_students(
    config: DistrictConfig, as_of: dt.date | None = None
) -> ScoringSummary:
    """Score every student at ``as_of`` (default: the latest snapshot date)."""
    started = time.perf_counter()
    state = config.state_dir
    student_snapshots = _read_table(
        state / "snapshots" / "student_snapshots.parquet", "student_snapshots"
    )
    rows = _as_of_rows(student_snapshots, as_of)
    scorers = load_champions(config)
    if not scorers:
        raise LookupError(
            f"MLflow registry at {config.mlflow_uri}: no champion model for any KPI; "
            "run `ontrack train` first"
        )
    protected = [name for name in config.privacy.protected_attributes if name in rows]
    scored_parts, risk_parts = [], []
    for kpi_name, scorer in scorers.items():
        kpi_started = time.perf_counter()
        eligible = rows[scorer.applies(rows)].reset_index(drop=True)
        scored = scorer.score(eligible)
        for name in protected:
            scored[name] = eligible[name].to_numpy()
        scored_parts.append(scored)
        risk_parts.append(
            pd.DataFrame(
                {
                    "school_id": scored["school_id"],
                    "kpi": kpi_name,
                    "risk": scored["risk"],
                    "observed_so_far": observed_so_far(eligible, config.kpi(kpi_name)),
                }
            )
        )
        logger.info(
            "scored %s: %s students with model version %s in %.2f s",
            kpi_name,
            len(scored),
            scorer.model_version,
            time.perf_counter() - kpi_started,
        )
    scored_snapshot = pd.concat(scored_parts, ignore_index=True)
    scores_dir = state / "scores"
    scored_path = scores_dir / "scored_snapshot.parquet"
    _write_parquet(scored_snapshot, scored_path)

    student_risks = pd.concat(risk_parts, ignore_index=True)
    _warn_unknown_target_schools(config, student_risks["school_id"].unique())
    targets = {
        (school_id, kpi.name): kpi.target_for(school_id)
        for kpi in config.kpis
        for school_id in student_risks["school_id"].unique()
    }
    targets.update({("district", kpi.name): kpi.district_target for kpi in config.kpis})
    projections = school_projections(student_risks, targets)
    projections.insert(2, "as_of_date", rows["as_of_date"].iloc[0].date())
    projections_path = scores_dir / "school_projections.parquet"
    _write_parquet(projections, projections_path)

    lists_dir = state / "lists"
    n_lists = _write_lists(scored_snapshot, lists_dir, _student_names(state))
    tier_counts = {
        kpi: part["tier"].value_counts().to_dict()
        for kpi, part in scored_snapshot.groupby("kpi")
    }
    district = projections[projections["school_id"] == "district"]
    seconds = time.perf_counter() - started
    logger.info(
        "scored %s students x %s KPIs as of %s in %.1f s",
        len(rows),
        len(scorers),
        rows["as_of_date"].iloc[0].date(),
        seconds,
    )
    return ScoringSummary(
        as_of_date=rows["as_of_date"].iloc[0].date(),
        rows_scored=len(scored_snapshot),
        students=int(rows["student_id"].nunique()),
        model_versions={kpi: s.model_version for kpi, s in scorers.items()},
        tier_counts=tier_counts,
        scored_path=scored_path,
        projections_path=projections_path,
        lists_dir=lists_dir,
        n_lists=n_lists,
        district_projections=district.to_dict(orient="records"),
        seconds=seconds,
    )


def _warn_unknown_target_schools(config: DistrictConfig, school_ids) -> None:
    """Warn about ``school_targets`` keys that no scored student's school matches.

    The config cannot know the district's schools; scoring can. A target of a
    school id that is not scored (a typo, ``"1"`` for ``"0001"``, a closed school)
    is never used, so each KPI's unknown ids are named.
    """
    scored = {str(school_id) for school_id in school_ids}
    for kpi in config.kpis:
        unknown = sorted(set(kpi.school_targets) - scored)
        if unknown:
            logger.warning(
                "[kpis.%s] school_targets: no scored student at school(s) %s; their "
                "targets are not used (ids are strings, leading zeros count)",
                kpi.name,
                ", ".join(unknown),
            )


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(temporary, index=False)
    temporary.replace(path)


def _student_names(state: Path) -> pd.DataFrame | None:
    """``student_id``, ``first_name``, ``last_name`` from the warehouse, if it has them.

    Read-only; the names go into the counselors' lists and nowhere else.
    """
    import duckdb

    path = state / "warehouse.duckdb"
    if not path.exists():
        return None
    try:
        with duckdb.connect(str(path), read_only=True) as connection:
            columns = {
                row[0]
                for row in connection.execute(
                    "select column_name from information_schema.columns "
                    "where table_name = 'students'"
                ).fetchall()
            }
            if not {"first_name", "last_name"} <= columns:
                return None
            names = connection.execute(
                "select student_id, first_name, last_name from students"
            ).df()
    except duckdb.Error as error:
        logger.warning(
            "warehouse %s not readable for list names: %s", path, type(error)
        )
        return None
    names["student_id"] = names["student_id"].astype(str)
    return names.drop_duplicates("student_id")


LIST_COLUMNS = (
    "student_id",
    "first_name",
    "last_name",
    "grade",
    "risk",
    "tier",
    "driver_1",
    "driver_2",
    "driver_3",
    "model_version",
    "as_of_date",
)


def _write_lists(
    scored_snapshot: pd.DataFrame, lists_dir: Path, names: pd.DataFrame | None
) -> int:
    """One CSV per school and KPI, students in tiers high and moderate, riskiest first.

    A school with nobody at risk still gets its file, with the header only.
    """
    listed = scored_snapshot
    if names is not None:
        listed = listed.merge(names, on="student_id", how="left")
    if "grade" in listed:
        listed = listed.assign(grade=listed["grade"].round().astype("Int64"))
    columns = [column for column in LIST_COLUMNS if column in listed]
    n_files = 0
    for (school_id, kpi), students in listed.groupby(["school_id", "kpi"]):
        at_risk = students[students["tier"].isin(LIST_TIERS)].sort_values(
            ["risk", "student_id"], ascending=[False, True]
        )
        path = lists_dir / str(school_id) / f"{kpi}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        at_risk[columns].to_csv(temporary, index=False, float_format="%.4f")
        temporary.replace(path)
        n_files += 1
    return n_files
