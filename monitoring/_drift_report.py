"""The drift report: our summary on top of Evidently's page, and the JSON summary.

The HTML is Evidently's own report (it works offline) with one section inserted at
the top of its body: the verdict, each column's verdict, each school's, and
predicted against observed rates by year and checkpoint. The JSON holds the same
summary. Neither holds a student-level row: Evidently is given only the judged
columns, never an identifier.
"""

from __future__ import annotations

import math

import pandas as pd
from jinja2 import Environment

from monitoring._drift import DriftResult


def drift_document(
    result: DriftResult,
    schools: pd.DataFrame,
    calibration: pd.DataFrame,
    auc: pd.DataFrame,
    context: dict,
) -> dict:
    """The JSON summary: context, totals, and one entry per column and school."""
    return {
        **context,
        "n_reference": result.n_reference,
        "n_current": result.n_current,
        "n_judged": result.n_judged,
        "n_drifted": result.n_drifted,
        "drift_share": round(result.drift_share, 4),
        "columns": _records(result.columns),
        "schools": _records(schools),
        "calibration": _records(calibration),
        "auc_by_year": _records(auc),
    }


def summary_section(document: dict) -> str:
    """The HTML section inserted at the top of Evidently's report."""
    template = Environment(autoescape=True).from_string(_SECTION)
    return template.render(doc=document)


def insert_section(evidently_html: str, section: str) -> str:
    """Evidently's page with ``section`` as the first thing in its body."""
    marker = "<body>"
    at = evidently_html.find(marker)
    if at < 0:
        return section + evidently_html
    at += len(marker)
    return evidently_html[:at] + section + evidently_html[at:]


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {key: _plain(value) for key, value in record.items()}
        for record in frame.to_dict("records")
    ]


def _plain(value):
    if value is None or value is pd.NA:
        return None
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value


_SECTION = """
<section style="font-family: system-ui, sans-serif; max-width: 70rem;
 margin: 1.5rem auto; padding: 0 1rem; line-height: 1.4; color: #222;">
<style>
.ontrack-drift table { border-collapse: collapse; margin: 0.5rem 0 1.2rem;
  font-size: 0.85rem; }
.ontrack-drift th, .ontrack-drift td { border: 1px solid #bbb;
  padding: 0.15rem 0.45rem; text-align: left; }
.ontrack-drift th { background: #eee; }
</style>
<div class="ontrack-drift">
<h1>OnTrack drift report, {{ doc.as_of_date }} (checkpoint {{ doc.checkpoint }})</h1>
{% if doc.drift_judged is false %}<p><strong>Drift {{ doc.drift_not_judged_reason
}}.</strong> The reference is the current school year itself, so the figures below
cannot show drift; they are kept for the record.</p>{% endif %}
<p><strong>{% if doc.alert %}ALERT{% elif doc.drift_judged is false %}No verdict{%
else %}No alert{% endif %}:</strong>
{{ doc.n_drifted }} of {{ doc.n_judged }} judged columns drifted
({{ "%.0f"|format(100 * doc.drift_share) }}%; the alert threshold is
{{ "%.0f"|format(100 * doc.alert_share) }}%). Current: {{ doc.n_current }} students
as of {{ doc.as_of_date }}; reference: {{ doc.n_reference }} snapshots of school
year(s) {{ doc.reference_years|join(", ") }} at the same checkpoint.
{% if not doc.scores_judged %}Scores were not judged: {{ doc.scores_note }}{% endif %}
</p>
<h2>Columns</h2>
<table>
<thead><tr><th>column</th><th>kind</th><th>verdict</th><th>method</th>
<th>score</th><th>threshold</th><th>missing (reference)</th>
<th>missing (current)</th><th>new categories</th></tr></thead>
<tbody>
{% for c in doc.columns %}<tr><td>{{ c.column }}</td><td>{{ c.kind }}</td>
<td>{{ c.verdict }}</td><td>{{ c.method or "" }}</td>
<td>{{ "%.4g"|format(c.score) if c.score is not none else "" }}</td>
<td>{{ c.threshold if c.threshold is not none else "" }}</td>
<td>{{ "%.1f"|format(100 * c.missing_share_reference) }}%</td>
<td>{{ "%.1f"|format(100 * c.missing_share_current) }}%</td>
<td>{{ c.new_categories|join(", ") }}</td></tr>
{% endfor %}</tbody>
</table>
<h2>Schools</h2>
<p>A school is judged only with at least {{ doc.min_school_n }} students now and in
the reference; smaller schools are reported as too small, never flagged.</p>
<table>
<thead><tr><th>school</th><th>students now</th><th>reference</th><th>verdict</th>
<th>drifted / judged</th></tr></thead>
<tbody>
{% for s in doc.schools %}<tr><td>{{ s.school_id }}</td><td>{{ s.n_current }}</td>
<td>{{ s.n_reference }}</td><td>{{ s.verdict }}</td>
<td>{% if s.n_judged %}{{ s.n_drifted }} / {{ s.n_judged }}{% endif %}</td></tr>
{% endfor %}</tbody>
</table>
<h2>Predicted against observed, by school year and checkpoint</h2>
{% if doc.calibration %}
<p>{{ doc.calibration_note }}</p>
<table>
<thead><tr><th>KPI</th><th>school year</th><th>checkpoint</th><th>students</th>
<th>predicted rate</th><th>observed rate</th><th>observed - predicted</th>
<th>AUC</th></tr></thead>
<tbody>
{% for r in doc.calibration %}<tr><td>{{ r.kpi }}</td><td>{{ r.school_year }}</td>
<td>{{ r.checkpoint }}</td><td>{{ r.n_students }}</td>
<td>{{ "%.1f"|format(100 * r.predicted_rate) }}%</td>
<td>{{ "%.1f"|format(100 * r.observed_rate) }}%</td>
<td>{{ "%+.1f"|format(100 * r.difference) }} pts</td>
<td>{{ "%.3f"|format(r.auc) if r.auc is not none else "" }}</td></tr>
{% endfor %}</tbody>
</table>
<h2>AUC by school year</h2>
<table>
<thead><tr><th>KPI</th><th>school year</th><th>students</th><th>AUC</th></tr></thead>
<tbody>
{% for r in doc.auc_by_year %}<tr><td>{{ r.kpi }}</td><td>{{ r.school_year }}</td>
<td>{{ r.n_students }}</td>
<td>{{ "%.3f"|format(r.auc) if r.auc is not none else "" }}</td></tr>
{% endfor %}</tbody>
</table>
{% else %}
<p>No school year with both predictions and outcomes yet. {{ doc.calibration_note }}</p>
{% endif %}
<hr>
</div>
</section>
"""
