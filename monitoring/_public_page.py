"""The static public page: one HTML file a district can host as it is.

No scripts and no build step: charts are SVG drawn by matplotlib and embedded as
data URIs with alt text, each followed by a table with the same numbers for screen
readers and anyone who prefers them. Everything on the page comes from the public
indicator rows, which hold no student-level field.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from jinja2 import Environment

from monitoring._cells import ALL, DISTRICT

ATTRIBUTION = (
    "Published with OnTrack, open-source early-warning and progress software for "
    "school districts."
)
TARGET_COLOUR = "#b2182b"
BAR_COLOUR = "#2166ac"


@dataclass(frozen=True)
class Chart:
    """An embedded chart: its SVG as a data URI and the words that replace it."""

    title: str
    data_uri: str
    alt: str
    rows: list[dict]
    # The column that names a row of the fallback table, and its header.
    row_name: str
    row_header: str


@dataclass(frozen=True)
class PageContext:
    """What the page says besides the indicators."""

    district_name: str
    as_of_date: str
    school_year: int
    min_n: int
    rules: Sequence[str]


def render_page(indicators: pd.DataFrame, context: PageContext) -> str:
    """The whole page as one HTML string."""
    sections = []
    for kpi, rows in indicators.groupby("kpi", sort=False):
        label = rows["kpi_label"].iloc[0]
        district = rows[rows["school_id"] == DISTRICT]
        headline = district[district["dimension"] == ALL].iloc[0]
        sections.append(
            {
                "kpi": kpi,
                "label": label,
                "headline": headline.to_dict(),
                "charts": [_school_chart(rows, label), _group_chart(district, label)],
                "schools": [
                    {"name": name, "rows": school.to_dict("records")}
                    for name, school in rows.groupby("school_name", sort=False)
                ],
            }
        )
    template = Environment(autoescape=True).from_string(_TEMPLATE)
    return template.render(context=context, sections=sections, attribution=ATTRIBUTION)


def _school_chart(rows: pd.DataFrame, label: str) -> Chart:
    """Projected year-end rate of all students by school, with the target."""
    schools = rows[(rows["dimension"] == ALL) & (rows["school_id"] != DISTRICT)]
    plotted = schools[schools["projected_rate"].notna()]
    title = f"{label}: projected year-end rate by school"
    on_track = sum(value is True for value in plotted["on_track"])
    alt = (
        f"Bar chart of the projected year-end rate of students "
        f"'{label.lower()}' for {len(plotted)} schools, with each school's target "
        f"marked. Projected at or below target: {on_track} of {len(plotted)}."
    )
    if len(plotted) < len(schools):
        hidden = len(schools) - len(plotted)
        alt += f" {hidden} schools are not drawn (suppressed or shown as a range)."
    uri = _bar_svg(
        plotted["school_name"].tolist(),
        plotted["projected_rate"].astype(float).tolist(),
        plotted["projected_low"].astype(float).tolist(),
        plotted["projected_high"].astype(float).tolist(),
        plotted["target"].astype(float).tolist(),
        title,
    )
    return Chart(title, uri, alt, schools.to_dict("records"), "school_name", "School")


def _group_chart(district: pd.DataFrame, label: str) -> Chart:
    """Projected year-end rate of each student group in the district."""
    plotted = district[district["projected_rate"].notna()]
    title = f"{label}: projected year-end rate by student group, district"
    alt = (
        f"Bar chart of the district's projected year-end rate of students "
        f"'{label.lower()}' for {len(plotted)} student groups, with the district "
        f"target marked at {100 * float(district['target'].iloc[0]):.0f}%."
    )
    uri = _bar_svg(
        plotted["group_label"].tolist(),
        plotted["projected_rate"].astype(float).tolist(),
        plotted["projected_low"].astype(float).tolist(),
        plotted["projected_high"].astype(float).tolist(),
        plotted["target"].astype(float).tolist(),
        title,
    )
    return Chart(title, uri, alt, district.to_dict("records"), "group_label", "Group")


def _bar_svg(
    names: list[str],
    rates: list[float],
    lows: list[float],
    highs: list[float],
    targets: list[float],
    title: str,
) -> str:
    """Horizontal bars with 90% interval whiskers and target ticks, as a data URI."""
    import matplotlib
    from matplotlib.figure import Figure

    height = 1.2 + 0.28 * max(len(names), 1)
    figure = Figure(figsize=(7.5, height), layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(len(names)))
    errors = [
        [max(r - lo, 0) * 100 for r, lo in zip(rates, lows, strict=True)],
        [max(hi - r, 0) * 100 for r, hi in zip(rates, highs, strict=True)],
    ]
    axes.barh(
        positions,
        [100 * r for r in rates],
        xerr=errors,
        color=BAR_COLOUR,
        ecolor="#444444",
        capsize=2,
        label="projected rate (90% interval)",
    )
    axes.scatter(
        [100 * t for t in targets],
        positions,
        marker="|",
        s=250,
        color=TARGET_COLOUR,
        label="target",
        zorder=3,
    )
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("percent of students")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    buffer = io.StringIO()
    # No date and a fixed id salt: the same numbers give the same bytes.
    with matplotlib.rc_context({"svg.hashsalt": "ontrack"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    encoded = base64.b64encode(buffer.getvalue().encode("utf-8")).decode("ascii")
    return f"data:image/svg+xml;base64,{encoded}"


_TEMPLATE = """{%- macro on_track(row) -%}
{%- if row.on_track is none %}suppressed{% elif row.on_track %}yes
{%- else %}no{% endif -%}
{%- endmacro -%}
{#- A group with no students says so: it describes nobody, and the status already
    tells. A range row's size is withheld like a suppressed one's. -#}
{%- macro students(row) -%}
{%- if row.n_size is not none %}{{ row.n_size }}
{%- elif row.status == "no students" %}0
{%- elif row.status == "range" %}not shown
{%- else %}suppressed{% endif -%}
{%- endmacro -%}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ context.district_name }}: progress indicators</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #bbb; padding: 0.2rem 0.5rem; text-align: left; }
th { background: #eee; }
img { max-width: 100%; height: auto; }
.note { color: #555; font-size: 0.9rem; }
</style>
</head>
<body>
<header>
<h1>{{ context.district_name }}: progress indicators</h1>
<p>School year {{ context.school_year - 1 }}-{{ context.school_year }}, as of
{{ context.as_of_date }}. Each indicator is the share of students who miss a
standard, so lower is better; each target is the highest share the district aims
for.</p>
</header>
<main>
<section>
<h2>How to read these figures</h2>
<ul>
{% for rule in context.rules %}<li>{{ rule }}</li>
{% endfor %}
</ul>
</section>
{% for section in sections %}
<section id="{{ section.kpi }}">
<h2>{{ section.label }}</h2>
<p>District: {{ section.headline.rate_so_far_text }} so far this year (can
still change by year end);
last year {{ section.headline.last_year_text }}; projected
{{ section.headline.projected_text }} at year end against a target of
{{ "%.0f"|format(100 * section.headline.target) }}%:
{% if section.headline.on_track %}on track{% else %}not on track{% endif %}
{% if section.headline.p_on_track is not none %}(chance of meeting the target
{{ "%.0f"|format(100 * section.headline.p_on_track) }}%){% endif %}.</p>
{% for chart in section.charts %}
<figure>
<img src="{{ chart.data_uri }}" alt="{{ chart.alt }}">
<figcaption>{{ chart.title }}. The same numbers as a table:</figcaption>
</figure>
<table>
<caption>{{ chart.title }}</caption>
<thead><tr><th scope="col">{{ chart.row_header }}</th>
<th scope="col">Students</th><th scope="col">So far</th>
<th scope="col">Last year</th><th scope="col">Target</th>
<th scope="col">Projected (90% interval)</th><th scope="col">On track</th></tr></thead>
<tbody>
{% for row in chart.rows %}<tr>
<th scope="row">{{ row[chart.row_name] }}</th>
<td>{{ students(row) }}</td>
<td>{{ row.rate_so_far_text }}</td><td>{{ row.last_year_text }}</td>
<td>{{ "%.0f"|format(100 * row.target) }}%</td><td>{{ row.projected_text }}</td>
<td>{{ on_track(row) }}</td>
</tr>
{% endfor %}</tbody>
</table>
{% endfor %}
<details>
<summary>Every school by student group</summary>
{% for school in section.schools %}
<h3>{{ school.name }}</h3>
<table>
<thead><tr><th scope="col">Group</th><th scope="col">Students</th>
<th scope="col">So far</th><th scope="col">Last year</th>
<th scope="col">Projected (90% interval)</th><th scope="col">On track</th></tr></thead>
<tbody>
{% for row in school.rows %}<tr><th scope="row">{{ row.group_label }}</th>
<td>{{ students(row) }}</td>
<td>{{ row.rate_so_far_text }}</td><td>{{ row.last_year_text }}</td>
<td>{{ row.projected_text }}</td>
<td>{{ on_track(row) }}</td>
</tr>
{% endfor %}</tbody>
</table>
{% endfor %}
</details>
</section>
{% endfor %}
</main>
<footer>
<p class="note">{{ attribution }} The figures are also published as
<a href="indicators.json">indicators.json</a> and
<a href="indicators.csv">indicators.csv</a>.</p>
</footer>
</body>
</html>
"""
