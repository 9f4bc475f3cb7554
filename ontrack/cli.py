"""The ``ontrack`` command.

Each sub-command loads the district config, calls one stage's job function and prints
the summary it returns. Heavy libraries (pandas, LightGBM, MLflow, Evidently) are
imported inside the commands so that ``ontrack --help`` answers at once.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import ontrack  # noqa: F401  (turns library telemetry off before anything else)
from ontrack._logging import configure_logging
from ontrack.config import ConfigError, DistrictConfig, load_config

app = typer.Typer(
    help="OnTrack: early-warning and progress indicators for a school district.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Usage errors as one plain line like every other message, not a framed box
    # whose wrapping depends on the terminal's width.
    rich_markup_mode=None,
)
console = Console(soft_wrap=True)
logger = logging.getLogger(__name__)

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="ONTRACK_CONFIG",
        help="District config file (TOML).",
    ),
]
DEFAULT_CONFIG = Path("configs/demo.toml")
DEMO_DATA_DIR = Path("state/demo-district")
# Read by the service's workers at start-up (serving's WORKERS_ENV); checked here so
# that a bad value stops `ontrack serve` before BentoML starts.
WORKERS_ENV = "ONTRACK_SERVING_WORKERS"


# Choices are enums so that click refuses a bad value as a usage error (exit 2) and
# lists every allowed one in its message.
class ExportFormat(StrEnum):
    canonical = "canonical"
    edfi_xml = "edfi-xml"
    student_table = "student-table"


class TableFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


class Role(StrEnum):
    counselor = "counselor"
    leader = "leader"
    service = "service"


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs.")
    ] = False,
) -> None:
    configure_logging(verbose)


def _config(path: Path) -> DistrictConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        console.print("[red]config error[/red]")
        console.print(str(error), highlight=False, markup=False)
        raise typer.Exit(2) from None


def _show(text: str) -> None:
    """Print a summary as plain text (its brackets are not markup)."""
    console.print(text, highlight=False, markup=False)


def _fail(error: Exception) -> None:
    console.print("[red]error:[/red]", end=" ")
    _show(str(error))
    raise typer.Exit(1) from None


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="Folder for the canonical tables.")] = (
        DEMO_DATA_DIR
    ),
    students: Annotated[int, typer.Option(min=10, help="Students per year.")] = 12_000,
    schools: Annotated[int, typer.Option(min=3, help="Schools.")] = 20,
    years: Annotated[int, typer.Option(min=1, max=20, help="School years.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    file_format: Annotated[
        TableFormat, typer.Option("--format", help="File format of the tables.")
    ] = TableFormat.csv,
) -> None:
    """Write the canonical tables of a made-up district (same seed, same bytes)."""
    from features import generate_demo_district

    summary = generate_demo_district(
        out,
        n_students=students,
        n_schools=schools,
        n_years=years,
        seed=seed,
        file_format=file_format.value,
    )
    _show(summary.describe())


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="Export folder (or file).")],
    config: ConfigOption = DEFAULT_CONFIG,
    source_format: Annotated[
        ExportFormat, typer.Option("--format", help="Shape of the export.")
    ] = ExportFormat.canonical,
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="Mapping file: columns of a student table, or a district's own "
            "Ed-Fi descriptor codes."
        ),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Replace the warehouse with this export alone, instead of updating "
            "it by key (to correct a key: a category, an entry date).",
        ),
    ] = False,
) -> None:
    """Validate an export, quarantine bad rows and load the warehouse.

    An export updates the warehouse by key; with ``--fresh`` the new warehouse holds
    this export alone. A flat student table (``--format student-table``, one row per
    student) skips the warehouse and the features step: its rows are written as the
    snapshots.
    """
    student_table = source_format is ExportFormat.student_table
    if student_table and mapping is None:
        raise typer.BadParameter(
            "--format student-table needs it: the TOML file naming the id, school, "
            "group and label columns",
            param_hint="'--mapping'",
        )
    if student_table and fresh:
        raise typer.BadParameter(
            "a student table has no warehouse to replace: its rows are always "
            "written whole as the snapshots",
            param_hint="'--fresh'",
        )
    district = _config(config)
    from features import (
        ExportRefused,
        IngestError,
        StudentTableError,
        ingest_district,
        ingest_student_table,
    )

    try:
        if student_table:
            report = ingest_student_table(district, source, mapping)
        else:
            report = ingest_district(
                district, source, source_format.value, mapping=mapping, fresh=fresh
            )
    except ExportRefused as error:
        # A required table refused: nothing loaded, the same code as any refusal.
        console.print("[red]refused:[/red]", end=" ")
        _show(str(error))
        raise typer.Exit(4) from None
    except (IngestError, StudentTableError) as error:
        _fail(error)
    _show(report.describe())
    refused = {} if student_table else report.refused_tables
    if refused:
        # The rest was loaded; a nightly job must still notice the refused tables.
        console.print(f"[red]refused tables:[/red] {', '.join(sorted(refused))}")
        raise typer.Exit(4)


@app.command()
def features(
    config: ConfigOption = DEFAULT_CONFIG,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="One as-of date (YYYY-MM-DD)."),
    ] = None,
    checkpoints: Annotated[
        bool, typer.Option("--checkpoints", help="Every checkpoint of every year.")
    ] = False,
) -> None:
    """Build student and school snapshots and KPI labels from the warehouse."""
    if as_of is not None and checkpoints:
        raise typer.BadParameter(
            "give either --as-of or --checkpoints, not both",
            param_hint="'--as-of' / '--checkpoints'",
        )
    district = _config(config)
    from features import build_snapshots

    summary = build_snapshots(district, as_of=as_of.date() if as_of else None)
    _show(summary.describe())


@app.command()
def train(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Fit, calibrate, evaluate and register one risk model per KPI."""
    district = _config(config)
    from training import train_models

    summary = train_models(district)
    _show(summary.describe())


@app.command()
def score(
    config: ConfigOption = DEFAULT_CONFIG,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="As-of date; default the latest."),
    ] = None,
) -> None:
    """Score students with each KPI's champion; write lists and projections."""
    district = _config(config)
    from training import score_students

    summary = score_students(district, as_of=as_of.date() if as_of else None)
    _show(summary.describe())


@app.command()
def monitor(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Drift of the scored snapshot against the training reference."""
    district = _config(config)
    from monitoring import monitor_drift

    summary = monitor_drift(district)
    _show(summary.describe())
    if summary.alert:
        raise typer.Exit(3)


@app.command()
def publish(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Public progress indicators with small-cell suppression."""
    district = _config(config)
    from monitoring import publish_indicators

    summary = publish_indicators(district)
    _show(summary.describe())


@app.command()
def crossval(
    source: Annotated[Path, typer.Argument(help="Flat student table (CSV).")],
    mapping: Annotated[Path, typer.Option(help="Its column mapping (TOML).")],
    include: Annotated[
        list[str] | None,
        typer.Option(
            help="Excluded columns to use after all, comma-separated (e.g. G1,G2); "
            "repeat for more settings. The mapping as it is always runs too."
        ),
    ] = None,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 10,
    kpi: Annotated[
        str | None, typer.Option(help="The label to predict; default the only one.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Stratified k-fold accuracy and ROC AUC on a flat table, next to published ones.

    Needs no district config and writes nothing: the model is the one `train` fits.
    """
    from features import StudentTableError, read_student_table
    from training import cross_validate_table, describe_cross_validation

    settings = [
        tuple(column.strip() for column in value.split(",") if column.strip())
        for value in include or []
    ]
    settings = list(dict.fromkeys([*settings, ()]))
    results = []
    try:
        for columns in settings:
            table = read_student_table(source, mapping, include=columns)
            excluded = table.mapping.features.exclude
            name = (
                f"with {', '.join(columns)}"
                if columns
                else f"as mapped (no {', '.join(excluded)})"
                if excluded
                else "as mapped"
            )
            label = kpi or _only_label(table.mapping.labels, mapping)
            published = table.mapping.published_for(columns)
            results.append(
                cross_validate_table(
                    table,
                    label,
                    setting=name,
                    folds=folds,
                    seed=seed,
                    published=(
                        (published.accuracy, published.source) if published else None
                    ),
                )
            )
    except (StudentTableError, ValueError) as error:
        _fail(error)
    _show(describe_cross_validation(results))


def _only_label(labels: dict[str, str], mapping: Path) -> str:
    if len(labels) != 1:
        raise ValueError(
            f"{mapping}: [labels] defines {', '.join(labels)}; choose one with --kpi"
        )
    return next(iter(labels))


@app.command()
def serve(
    config: ConfigOption = DEFAULT_CONFIG,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 3000,
) -> None:
    """Start the prediction service on 127.0.0.1."""
    workers = os.environ.get(WORKERS_ENV)
    if workers is not None and _whole_number(workers) < 1:
        raise typer.BadParameter(
            f"{workers!r}: expected a whole number of worker processes, at least 1",
            param_hint=WORKERS_ENV,
        )
    district = _config(config)
    from serving import run_server

    try:
        run_server(district, port=port)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        _fail(ValueError(error.strerror))


def _whole_number(text: str) -> int:
    """``int(text)`` as the service reads it, or 0 when it is not a whole number."""
    try:
        return int(text)
    except ValueError:
        return 0


@app.command()
def token(
    role: Annotated[Role, typer.Argument(help="What the token may see.")],
    name: Annotated[str, typer.Argument(help="Who holds the token.")],
    schools: Annotated[
        list[str] | None, typer.Option("--school", help="A counselor's school.")
    ] = None,
) -> None:
    """Make a new bearer token and print the config entry that stores its hash."""
    import hashlib
    import json
    import secrets

    if not name.strip():
        raise typer.BadParameter(
            "the token holder's name must not be blank", param_hint="NAME"
        )
    if role is Role.counselor and not schools:
        raise typer.BadParameter(
            "a counselor token needs at least one", param_hint="'--school'"
        )
    secret = secrets.token_urlsafe(32)
    digest = hashlib.sha256(secret.encode()).hexdigest()
    _show(f"token (give it to {name}; it is not stored): {secret}\n")
    # JSON strings are valid TOML basic strings, quotes and backslashes escaped.
    entry = (
        f"[[serving.tokens]]\nname = {json.dumps(name)}\n"
        f"role = {json.dumps(role.value)}"
        f"\nsha256 = {json.dumps(digest)}"
    )
    if schools:
        entry += f"\nschools = {json.dumps(schools)}"
    console.print(entry, highlight=False, markup=False)


@app.command()
def demo(
    config: ConfigOption = DEFAULT_CONFIG,
    students: Annotated[int, typer.Option(min=10)] = 12_000,
    schools: Annotated[int, typer.Option(min=3)] = 20,
    years: Annotated[int, typer.Option(min=2, max=20)] = 4,
) -> None:
    """The main job on the built-in demo district, end to end."""
    district = _config(config)
    from features import build_snapshots, generate_demo_district, ingest_district
    from monitoring import monitor_drift, publish_indicators
    from training import score_students, train_models

    source = district.state_dir / "demo-district"
    steps = [
        (
            "demo district",
            lambda: generate_demo_district(
                source, n_students=students, n_schools=schools, n_years=years
            ),
        ),
        # A fresh warehouse: the state folder may hold another district, which an
        # ingest (an update by key) would otherwise mix with the demo's.
        ("ingest", lambda: ingest_district(district, source, fresh=True)),
        ("features", lambda: build_snapshots(district)),
        ("train", lambda: train_models(district)),
        ("score", lambda: score_students(district)),
        # A drift alert is reported, not fatal: the demo goes on to publish.
        ("monitor", lambda: monitor_drift(district)),
        ("publish", lambda: publish_indicators(district)),
    ]
    for number, (name, run) in enumerate(steps, start=1):
        console.rule(f"{number}. {name}")
        _show(run().describe())


def run() -> None:
    """The console entry point: known failures end with their message, no traceback.

    OnTrack's errors subclass ``ValueError`` (bad input, bad data), ``LookupError``
    (a stage run before the one it needs) or are ``FileNotFoundError``; their
    messages name what is wrong and never hold personal fields. Anything else is a
    bug and keeps its traceback; so do all errors with ``--verbose``.
    """
    import sys

    import duckdb

    try:
        app(standalone_mode=True)
    except duckdb.InterruptException:
        # Ctrl-C while DuckDB runs a query: an interrupt like any other.
        console.print("interrupted")
        raise SystemExit(130) from None
    except (ValueError, FileNotFoundError, LookupError) as error:
        if "-v" in sys.argv or "--verbose" in sys.argv:
            raise
        console.print("[red]error:[/red]", end=" ")
        _show(str(error))
        raise SystemExit(1) from None


if __name__ == "__main__":
    run()
