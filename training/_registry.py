"""MLflow: one run per KPI and training, a registered model per KPI, the champion alias.

The store is a sqlite database inside the config's ``mlruns_dir``; artifacts go to
``<mlruns_dir>/artifacts``, set explicitly on the experiment so they never land in the
working directory. The registered model ``ontrack-<kpi>`` gets a new version at every
training; the alias ``champion`` moves to it only when it is not worse on the holdout:

    new PR AUC >= champion's PR AUC on the same holdout rows - CHAMPION_TOLERANCE

The current champion is re-scored on the new holdout for that comparison, so both
numbers describe the same students. A first version becomes champion by default; a
champion that cannot score the new snapshots (its features are gone) is replaced.

Nothing student-level is logged: parameters, metrics, aggregate tables, plots and the
model card only.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mlflow
import mlflow.lightgbm
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from training._metrics import RankedOutcomes
from training._model import ModelSpec
from training._scoring import Scorer

logger = logging.getLogger(__name__)

EXPERIMENT = "ontrack"
CHAMPION = "champion"
CHAMPION_TOLERANCE = 0.005
CHAMPION_RULE = (
    "the new version becomes champion if its holdout PR AUC >= the current champion's "
    f"PR AUC on the same holdout - {CHAMPION_TOLERANCE}"
)
SPEC_FILE = "ontrack_spec.json"
LIBRARIES = (
    "lightgbm",
    "scikit-learn",
    "numpy",
    "pandas",
    "mlflow",
    "shap",
    "fairlearn",
)


def model_name(kpi: str) -> str:
    """The registered model of a KPI: ``ontrack-<kpi>``."""
    return f"ontrack-{kpi}"


def connect(mlruns_dir: Path) -> tuple[MlflowClient, str]:
    """A client on ``<mlruns_dir>/mlflow.db`` and the experiment's id.

    The experiment is created with its artifact location set to
    ``<mlruns_dir>/artifacts``.
    """
    # Downloading a model draws a progress bar per file on the console otherwise.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow sets its own logger to INFO when imported, over the entry point's
    # WARNING; put it back unless debug logging was asked for.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlruns_dir.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{mlruns_dir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return client, experiment.experiment_id
    artifacts = (mlruns_dir / "artifacts").resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    return client, client.create_experiment(
        EXPERIMENT, artifact_location=artifacts.as_uri()
    )


def code_version() -> str:
    """The git commit of the code, or ``unknown`` outside a checkout."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return completed.stdout.strip()


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a model depends on."""
    versions = {}
    for library in LIBRARIES:
        try:
            versions[library] = metadata.version(library)
        except metadata.PackageNotFoundError:
            versions[library] = "not installed"
    return versions


def model_environment() -> dict:
    """The model's environment, stated so MLflow infers nothing.

    Given as a conda environment rather than ``pip_requirements``: with the latter
    MLflow looks up pip's version, which a uv-made environment lacks, and warns.
    Stating it also spares the 4-7 s of requirement inference.
    """
    pinned = [
        f"{library}=={metadata.version(library)}"
        for library in ("mlflow", "lightgbm", "numpy", "scikit-learn")
    ]
    return {
        "name": "ontrack-model",
        "channels": ["conda-forge"],
        "dependencies": [f"python={platform.python_version()}", {"pip": pinned}],
    }


@dataclass(frozen=True)
class ChampionDecision:
    """Whether the new version took the alias, with the numbers and the rule."""

    promoted: bool
    new_version: str
    new_pr_auc: float
    champion_version: str | None
    champion_pr_auc: float | None
    reason: str

    def describe(self) -> str:
        """One line: the decision and the comparison behind it."""
        verdict = "champion" if self.promoted else "not champion"
        return f"version {self.new_version} is {verdict}: {self.reason}"


def load_scorer(
    client: MlflowClient,
    kpi: str,
    version: str | None = None,
    alias: str = CHAMPION,
    **scorer_options,
) -> Scorer:
    """The :class:`Scorer` of a registered version (by default the champion).

    Raises
    ------
    LookupError
        If the registered model or alias does not exist.
    """
    name = model_name(kpi)
    try:
        if version is None:
            model_version = client.get_model_version_by_alias(name, alias)
        else:
            model_version = client.get_model_version(name, version)
    except MlflowException as error:
        wanted = f"version {version}" if version else f"alias {alias!r}"
        raise LookupError(
            f"MLflow registry: no {wanted} for model {name!r}; `ontrack train` "
            f"has not registered one for KPI {kpi!r} (it skips a KPI with too few "
            "labels and says so in its summary)"
        ) from error
    # MLflow 3 gives versions as integers; the rest of OnTrack reads them as text.
    version = str(model_version.version)
    uri = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory() as folder:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder)
        booster = mlflow.lightgbm.load_model(local)
        spec_text = next(Path(local).rglob(SPEC_FILE)).read_text(encoding="utf-8")
    spec = ModelSpec.from_json(spec_text)
    return Scorer(booster, spec, version, **scorer_options)


def log_kpi_run(
    client: MlflowClient,
    experiment_id: str,
    kpi: str,
    booster,
    spec: ModelSpec,
    params: dict,
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: list[Path],
    texts: dict[str, str],
) -> tuple[str, str]:
    """Log one KPI's training run and register its model; ``(run_id, version)``."""
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{kpi}") as run:
        mlflow.log_params(params)
        mlflow.set_tags(tags)
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path="report")
        for name, text in texts.items():
            mlflow.log_text(text, name)
        # The model is logged before the metrics: log_model copies every metric of
        # the run into the logged model one by one, which took 5 s for 500 metrics.
        with tempfile.TemporaryDirectory() as folder:
            spec_path = Path(folder) / SPEC_FILE
            spec_path.write_text(spec.to_json(), encoding="utf-8")
            info = mlflow.lightgbm.log_model(
                booster,
                name="model",
                conda_env=model_environment(),
                extra_files=[str(spec_path)],
                registered_model_name=model_name(kpi),
            )
        version = str(info.registered_model_version)
        client.set_model_version_tag(
            model_name(kpi), version, "run_id", run.info.run_id
        )
        mlflow.log_metrics(
            {key: value for key, value in metrics.items() if not math.isnan(value)}
        )
    return run.info.run_id, version


def decide_champion(
    client: MlflowClient,
    kpi: str,
    new_version: str,
    new_pr_auc: float,
    holdout,
    missed: np.ndarray,
) -> ChampionDecision:
    """Re-score the current champion on ``holdout`` and move the alias if not worse."""
    name = model_name(kpi)
    try:
        current = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        current = None
    if current is None or current == new_version:
        decision = ChampionDecision(
            True, new_version, new_pr_auc, None, None, "first version of this model"
        )
    else:
        decision = _compare(
            client, kpi, new_version, new_pr_auc, current, holdout, missed
        )
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, new_version)
    client.set_model_version_tag(
        name, new_version, "champion_decision", decision.describe()
    )
    logger.info("%s %s", name, decision.describe())
    return decision


def _compare(client, kpi, new_version, new_pr_auc, current, holdout, missed):
    try:
        champion = load_scorer(client, kpi, version=current)
        champion_risk = champion.risk(holdout)
    except (KeyError, ValueError, LookupError) as error:
        return ChampionDecision(
            True,
            new_version,
            new_pr_auc,
            current,
            None,
            f"champion version {current} cannot score these snapshots ({error})",
        )
    champion_pr_auc = RankedOutcomes(missed, champion_risk).average_precision()
    promoted = new_pr_auc >= champion_pr_auc - CHAMPION_TOLERANCE
    comparison = "not worse than" if promoted else "worse than"
    reason = (
        f"holdout PR AUC {new_pr_auc:.4f} is {comparison} champion version {current}'s "
        f"{champion_pr_auc:.4f} on the same holdout (tolerance {CHAMPION_TOLERANCE})"
    )
    return ChampionDecision(
        promoted, new_version, new_pr_auc, current, champion_pr_auc, reason
    )
