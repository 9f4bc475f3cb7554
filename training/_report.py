"""The training report: plots, an HTML page a leader can read, JSON for machines.

Everything here is aggregate: figures over the holdout, per checkpoint, per school and
per student group. No student identifier or personal field reaches a plot, a table or
the model card.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from jinja2 import Environment, select_autoescape  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from training._training import MODEL, KpiResult  # noqa: E402

BASELINE_NAMES = {
    MODEL: "LightGBM (this model)",
    "abc_flags": "ABC flags",
    "last_year_outcome": "last year's outcome",
    "logistic_regression": "logistic regression",
    "school_only": "the school-level model",
}
PLOT_DPI = 90


def baseline_findings(result: KpiResult) -> list[str]:
    """Plain sentences: where the model is better than each baseline, and where not."""
    findings = []
    abc = result.abc.set_index("checkpoint").loc["all"]
    verdict = "better" if abc["precision_gain"] > 0 else "NOT better"
    if abc["n_flagged"] == 0:
        findings.append(
            "The ABC flags flag nobody in the holdout (the snapshots have none, as "
            "for a flat student table): there is no list to compare with."
        )
    else:
        findings.append(
            f"At the same number of students flagged as the ABC flags "
            f"({abc['n_flagged']:.0f} student-checkpoints), the model's precision is "
            f"{abc['model_precision']:.1%} against the ABC flags' "
            f"{abc['abc_precision']:.1%}: {verdict}."
        )
    for row in result.pr_auc_differences.itertuples():
        name = BASELINE_NAMES[row.baseline]
        interval = f"95% interval {row.low:+.3f} to {row.high:+.3f}"
        if row.low > 0:
            findings.append(
                f"LightGBM's PR AUC beats {name} by {row.difference:+.3f} ({interval})."
            )
        elif row.high < 0:
            findings.append(
                f"LightGBM is WORSE than {name}: PR AUC {row.difference:+.3f} "
                f"({interval})."
            )
        else:
            findings.append(
                f"LightGBM is not clearly better than {name}: PR AUC difference "
                f"{row.difference:+.3f} ({interval}, which includes 0)."
            )
    size = result.spec.size
    model_auc = result.figure("roc_auc")
    findings.append(
        f"Model size {size.label()}, chosen on the training years for fast drivers: "
        f"holdout ROC AUC {model_auc:.3f} against {result.reference_auc:.3f} for the "
        f"300-tree, 31-leaf reference ({model_auc - result.reference_auc:+.3f})."
    )
    return findings


def kpi_json(result: KpiResult, run: dict) -> dict:
    """The machine-readable section of one KPI."""
    return {
        **run,
        "split": result.split.describe(),
        "temporal": result.split.temporal,
        "training_years": list(result.split.training_years),
        "holdout_year": result.split.holdout_year,
        "n_training_rows": result.n_training_rows,
        "n_training_students": result.n_training_students,
        "n_holdout_rows": len(result.holdout),
        "training_fingerprint": result.training_fingerprint,
        "model_size": {
            "n_trees": result.spec.size.n_trees,
            "num_leaves": result.spec.size.num_leaves,
            "max_depth": result.spec.size.max_depth,
            "candidates": _records(result.fitted.size_table),
            "reference_roc_auc": result.reference_auc,
        },
        "calibration": {
            "method": "platt",
            "slope": result.spec.calibration.slope,
            "intercept": result.spec.calibration.intercept,
        },
        "features": result.spec.features,
        "protected_inputs": result.spec.protected,
        "metrics": _records(result.metrics),
        "abc_same_number_flagged": _records(result.abc),
        "pr_auc_differences": _records(result.pr_auc_differences),
        "fairness": _records(result.fairness),
        "district_drivers": _records(result.district_drivers),
        "school_drivers": _records(result.school_drivers),
        "findings": baseline_findings(result),
    }


def whole_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its count columns (``n`` and ``n_*``) as whole numbers.

    The metric steps keep every figure a float (MLflow logs floats only); a report
    says "n 47807", not "n 47807.000".
    """
    counts = [
        column
        for column in frame.columns
        if (column == "n" or str(column).startswith("n_"))
        and pd.api.types.is_float_dtype(frame[column])
        and (frame[column].dropna() % 1 == 0).all()
    ]
    return frame.astype(dict.fromkeys(counts, "Int64"))


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {key: _plain(value) for key, value in row.items()}
        for row in whole_counts(frame).to_dict(orient="records")
    ]


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def write_json(path: Path, document: dict) -> None:
    """Write the JSON report atomically."""
    _atomic_write(path, json.dumps(document, indent=1, default=str))


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def write_plots(result: KpiResult, folder: Path) -> dict[str, Path]:
    """PNG plots of one KPI's holdout results; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    plots = {
        "pr_curves": _pr_curves,
        "abc": _abc_bars,
        "calibration": _calibration,
        "domain_drivers": _domain_drivers,
        "shap_beeswarm": _beeswarm,
        "fairness": _fairness,
    }
    paths = {}
    for name, plot in plots.items():
        # One figure at a time: shap draws on pyplot's current figure.
        figure = plot(result)
        path = folder / f"{result.kpi}_{name}.png"
        temporary = path.with_name(f".{path.name}.tmp.png")
        figure.savefig(temporary, dpi=PLOT_DPI, bbox_inches="tight")
        plt.close(figure)
        temporary.replace(path)
        paths[name] = path
    return paths


def _pr_curves(result: KpiResult):
    figure, axes = plt.subplots(figsize=(6, 4.5))
    missed = result.holdout["missed"].to_numpy()
    for name, label in BASELINE_NAMES.items():
        column = "risk" if name == MODEL else f"score_{name}"
        score = np.nan_to_num(result.holdout[column].to_numpy(dtype=float), nan=-1e9)
        precision, recall, _ = precision_recall_curve(missed, score)
        pr_auc = result.figure("pr_auc", name)
        axes.plot(recall, precision, label=f"{label} (PR AUC {pr_auc:.3f})")
    axes.axhline(missed.mean(), color="grey", linestyle=":", label="base rate")
    axes.set(
        xlabel="recall",
        ylabel="precision",
        title=f"{result.kpi}: precision-recall on the holdout",
        ylim=(0, 1.02),
    )
    axes.legend(fontsize=7)
    return figure


def _abc_bars(result: KpiResult):
    figure, axes = plt.subplots(figsize=(6, 3.5))
    abc = result.abc
    positions = np.arange(len(abc))
    axes.bar(positions - 0.2, abc["abc_precision"], 0.4, label="ABC flags")
    axes.bar(positions + 0.2, abc["model_precision"], 0.4, label="model, same number")
    axes.set_xticks(positions, abc["checkpoint"])
    axes.set(
        ylabel="precision",
        ylim=(0, 1),
        title=f"{result.kpi}: precision at the ABC flags' number flagged",
    )
    axes.legend(fontsize=8)
    return figure


def _calibration(result: KpiResult):
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    risk = result.holdout["risk"].to_numpy()
    missed = result.holdout["missed"].to_numpy()
    bins = np.minimum((risk * 10).astype(int), 9)
    table = pd.DataFrame({"bin": bins, "risk": risk, "missed": missed}).groupby("bin")
    means = table.mean()
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axes.plot(means["risk"], means["missed"], marker="o")
    axes.set(
        xlabel="mean predicted risk",
        ylabel="observed rate",
        title=f"{result.kpi}: calibration (ECE {result.figure('ece'):.3f})",
    )
    return figure


def _domain_drivers(result: KpiResult):
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    district = result.district_drivers
    left.barh(district["domain"], district["mean_abs_contribution"])
    left.invert_yaxis()
    left.set(xlabel="mean |contribution| (log-odds)", title="district")
    schools = result.school_drivers.pivot(
        index="group", columns="domain", values="mean_abs_contribution"
    )
    image = right.imshow(schools.to_numpy(), aspect="auto", cmap="Blues")
    right.set_xticks(range(schools.shape[1]), schools.columns, rotation=45, ha="right")
    right.set_yticks(range(schools.shape[0]), schools.index, fontsize=7)
    right.set(title="per school")
    figure.colorbar(image, ax=right)
    figure.suptitle(f"{result.kpi}: drivers by domain on the holdout")
    return figure


def _import_shap():
    """shap, imported without the warnings its import raises.

    shap 0.51 calls matplotlib's ``Colormap.set_bad`` at import, which matplotlib
    marks as a pending deprecation: shap's to update, and harmless to the plot.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        import shap
    return shap


def _beeswarm(result: KpiResult):
    shap = _import_shap()

    names = result.spec.features
    explanation = shap.Explanation(
        values=result.contributions_sample[:, : len(names)],
        base_values=result.contributions_sample[:, -1],
        data=result.features_sample,
        feature_names=names,
    )
    figure, axes = plt.subplots(figsize=(7, 5))
    shap.plots.beeswarm(
        explanation, max_display=12, show=False, plot_size=None, ax=axes
    )
    figure.suptitle(f"{result.kpi}: feature contributions (sample of the holdout)")
    return figure


def _fairness(result: KpiResult):
    figure, axes = plt.subplots(figsize=(7, 4))
    table = result.fairness[~result.fairness["too_small"]]
    labels = table["attribute"] + ": " + table["group"]
    positions = np.arange(len(table))
    axes.bar(positions - 0.2, table["mean_risk"], 0.4, label="mean predicted risk")
    axes.bar(positions + 0.2, table["observed_rate"], 0.4, label="observed rate")
    axes.set_xticks(positions, labels, rotation=60, ha="right", fontsize=7)
    axes.set(title=f"{result.kpi}: predicted against observed by group")
    axes.legend(fontsize=8)
    return figure


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>OnTrack training report: {{ district }}</title>
<style>
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; }
img { max-width: 100%; }
.finding { margin: 0.3em 0; }
</style></head><body>
<h1>OnTrack risk models: {{ district }}</h1>
<p>Trained {{ generated_at }}. {{ split }}</p>
<p>One model per KPI for every checkpoint of the year: the time of year is one of
its inputs (days into the school year), so it learns how much each indicator says in
October against April, from all checkpoints' rows at once. Risks are calibrated
(Platt scaling) on the training years only; drivers come from the model's log-odds
by exact TreeSHAP.</p>
<p>Protected attributes as model inputs: <b>{{ protected_inputs }}</b>.
Protected attributes are never shown as a student's driver.</p>
<p>Champion rule: {{ champion_rule }}.</p>
<h2>Summary</h2>
{{ summary_table | safe }}
{% for kpi in kpis %}
<h2 id="{{ kpi.name }}">{{ kpi.label }} ({{ kpi.name }})</h2>
<p>Model version {{ kpi.version }} (run {{ kpi.run_id }}). {{ kpi.decision }}</p>
<h3>What the holdout says</h3>
{% for finding in kpi.findings %}<p class="finding">{{ finding }}</p>{% endfor %}
<img src="data:image/png;base64,{{ kpi.plots.pr_curves }}" alt="precision-recall">
<img src="data:image/png;base64,{{ kpi.plots.abc }}" alt="ABC comparison">
<h3>Holdout figures per checkpoint, model and baselines</h3>
<p>Precision and recall at the top 5%, 10% and 20% of students at each date,
district-wide and within school (tied scores share the last places).</p>
{{ kpi.metrics_table | safe }}
<h3>Same number flagged as the ABC flags</h3>
{{ kpi.abc_table | safe }}
<h3>PR AUC difference with a 95% bootstrap interval (students resampled)</h3>
{{ kpi.differences_table | safe }}
<h3>Calibration</h3>
<img src="data:image/png;base64,{{ kpi.plots.calibration }}" alt="calibration">
<h3>Fairness at the top-10% cut-off</h3>
<p>Groups with fewer than {{ min_n }} students are shown as too small, without
figures.</p>
{{ kpi.fairness_table | safe }}
<img src="data:image/png;base64,{{ kpi.plots.fairness }}" alt="fairness">
<h3>Drivers</h3>
<img src="data:image/png;base64,{{ kpi.plots.domain_drivers }}" alt="domain drivers">
<img src="data:image/png;base64,{{ kpi.plots.shap_beeswarm }}" alt="shap beeswarm">
<h3>Model size</h3>
{{ kpi.size_table | safe }}
{% endfor %}
<h2>Known limits</h2>
<ul>{% for limit in limits %}<li>{{ limit }}</li>{% endfor %}</ul>
</body></html>
"""


def _table(frame: pd.DataFrame) -> str:
    return whole_counts(frame).to_html(
        index=False, float_format=lambda value: f"{value:.3f}", na_rep=""
    )


def render_html(
    results: list[KpiResult],
    runs: dict[str, dict],
    plots: dict[str, dict[str, Path]],
    labels: dict[str, str],
    district: str,
    protected_inputs: bool,
    min_n: int,
    limits: list[str],
) -> str:
    """The whole report page, plots embedded."""
    summary = pd.DataFrame(
        [
            {
                "KPI": result.kpi,
                "version": runs[result.kpi]["model_version"],
                "champion": runs[result.kpi]["champion"],
                "ROC AUC": result.figure("roc_auc"),
                "PR AUC": result.figure("pr_auc"),
                "PR AUC logistic": result.figure("pr_auc", "logistic_regression"),
                "PR AUC school only": result.figure("pr_auc", "school_only"),
                "PR AUC last year": result.figure("pr_auc", "last_year_outcome"),
                "precision vs ABC": result.abc.iloc[0]["model_precision"],
                "ABC precision": result.abc.iloc[0]["abc_precision"],
                "ECE": result.figure("ece"),
            }
            for result in results
        ]
    )
    metric_columns = [
        "scorer",
        "checkpoint",
        "n",
        "base_rate",
        "roc_auc",
        "pr_auc",
        "brier",
        "ece",
        "precision_top5",
        "recall_top5",
        "precision_top10",
        "recall_top10",
        "precision_top20",
        "recall_top20",
        "precision_top10_school",
        "recall_top10_school",
    ]
    kpis = []
    for result in results:
        run = runs[result.kpi]
        kpis.append(
            {
                "name": result.kpi,
                "label": labels[result.kpi],
                "version": run["model_version"],
                "run_id": run["run_id"],
                "decision": run["champion_decision"],
                "findings": baseline_findings(result),
                "plots": {
                    name: base64.b64encode(path.read_bytes()).decode()
                    for name, path in plots[result.kpi].items()
                },
                "metrics_table": _table(result.metrics[metric_columns]),
                "abc_table": _table(result.abc),
                "differences_table": _table(result.pr_auc_differences),
                "fairness_table": _table(result.fairness),
                "size_table": _table(result.fitted.size_table),
            }
        )
    environment = Environment(autoescape=select_autoescape(default=True))
    return environment.from_string(_PAGE).render(
        district=district,
        generated_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        split=results[0].split.describe() if results else "",
        protected_inputs="yes (the config opts in)" if protected_inputs else "no",
        champion_rule=runs[results[0].kpi]["champion_rule"] if results else "",
        summary_table=_table(summary),
        kpis=kpis,
        min_n=min_n,
        limits=limits,
    )


def write_html(path: Path, page: str) -> None:
    """Write the HTML report atomically."""
    _atomic_write(path, page)


def model_card(result: KpiResult, run: dict, label: str, limits: list[str]) -> str:
    """The model card logged with the run (markdown)."""
    fairness = result.fairness.copy()
    lines = [
        f"# Model card: ontrack-{result.kpi}",
        "",
        "## Intended use",
        f"Estimate each student's probability of missing the KPI '{label}' by the end "
        "of the school year, at any checkpoint, so counselors can look first at the "
        "students most likely to need support and see why. It supports a conversation; "
        "it is not a decision about a student, and it must not be used for placement, "
        "discipline or grading.",
        "",
        "## Data",
        f"- {result.split.describe()}",
        f"- {result.n_training_rows} training rows (student-checkpoints) of "
        f"{result.n_training_students} students; {len(result.holdout)} holdout rows.",
        f"- Training data fingerprint (SHA-256): {result.training_fingerprint}",
        f"- Inputs: {', '.join(result.spec.features)}.",
        "- Protected attributes as inputs: "
        + (", ".join(result.spec.protected) if result.spec.protected else "none")
        + ".",
        "",
        "## Model",
        f"- LightGBM, {result.spec.size.label()}; Platt calibration "
        f"(slope {result.spec.calibration.slope:.3f}, intercept "
        f"{result.spec.calibration.intercept:.3f}) on out-of-fold margins of the "
        "training years.",
        f"- Version {run['model_version']}; {run['champion_decision']}",
        "",
        "## Holdout metrics (all checkpoints)",
        _markdown(
            result.metrics[result.metrics["checkpoint"] == "all"][
                ["scorer", "roc_auc", "pr_auc", "brier", "ece", "precision_top10"]
            ]
        ),
        "",
        *[f"- {finding}" for finding in baseline_findings(result)],
        "",
        "## Fairness (top-10% cut-off)",
        _markdown(fairness),
        "",
        "## Known limits",
        *[f"- {limit}" for limit in limits],
    ]
    return "\n".join(lines) + "\n"


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = [
        "| "
        + " | ".join(
            f"{value:.3f}" if isinstance(value, float) else str(value) for value in row
        )
        + " |"
        for row in whole_counts(frame).itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])
