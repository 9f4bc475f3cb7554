"""Which snapshot columns are model inputs, their domains and how a driver reads.

The source of truth is ``features.FEATURE_CATALOG`` (feature name -> domain, plain-words
template, protected flag). Until the features package publishes it, a fallback copy of
the column table in docs/CONTRACTS.md stands in, with our own plain-words templates.

A template is ``str.format``-ed with two already formatted strings, ``value`` (the
student's) and ``reference`` (the district median at the same checkpoint), for example
``"attended {value} of days so far (district median {reference})"`` becomes "attended
84% of days so far (district median 95%)".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

DOMAINS = ("attendance", "behaviour", "course_performance", "assessment", "mobility")
# Contributions of the time-of-year feature are reported under this domain; it is
# never a student's driver because it says nothing about the student.
CONTEXT_DOMAIN = "context"
PROTECTED_DOMAIN = "protected"
DAYS_INTO_YEAR = "days_into_year"

ValueKind = Literal["rate", "count", "number", "flag", "z", "category"]


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: its domain, how its value reads and whether it is protected."""

    name: str
    domain: str
    template: str
    kind: ValueKind = "number"
    protected: bool = False

    def phrase(self, value: float, reference: float) -> str:
        """The driver in plain words, with the student's value and the reference."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return f"no {self.name.replace('_', ' ')} on record yet"
        return self.template.format(
            value=format_value(value, self.kind),
            reference=format_value(reference, self.kind),
        )


def format_value(value: Any, kind: ValueKind) -> str:
    """A value as a person reads it: rates in percent, counts whole, flags yes/no."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    if kind == "category":
        return str(value).replace("_", " ")
    if kind == "rate":
        return f"{value:.0%}"
    if kind == "count":
        return f"{value:.0f}"
    if kind == "flag":
        return "yes" if value >= 0.5 else "no"
    if kind == "z":
        return f"{value:+.1f} SD"
    return f"{value:.3g}"


_MEDIAN = "district median {reference}"
_FALLBACK = (
    # attendance
    ("days_enrolled", "attendance", "count", "enrolled {value} days so far"),
    ("days_absent", "attendance", "number", "absent {value} days so far"),
    ("attendance_rate", "attendance", "rate", "attended {value} of days so far"),
    ("unexcused_share", "attendance", "rate", "{value} of absences unexcused"),
    ("tardies", "attendance", "count", "{value} tardies so far"),
    ("longest_absence_streak", "attendance", "count", "{value} days absent in a row"),
    (
        "attendance_rate_last_20",
        "attendance",
        "rate",
        "attended {value} of the last 20 days",
    ),
    ("attendance_trend", "attendance", "rate", "attendance trend {value}"),
    (
        "prior_attendance_rate",
        "attendance",
        "rate",
        "attended {value} of days last year",
    ),
    (
        "prior_chronic_absence",
        "attendance",
        "flag",
        "chronically absent last year: {value}",
    ),
    # behaviour
    ("incidents", "behaviour", "count", "{value} behaviour incidents this year"),
    ("in_school_suspensions", "behaviour", "count", "{value} in-school suspensions"),
    (
        "out_of_school_suspensions",
        "behaviour",
        "count",
        "{value} out-of-school suspensions",
    ),
    ("days_removed", "behaviour", "number", "{value} days removed from class"),
    ("prior_incidents", "behaviour", "count", "{value} incidents last year"),
    ("prior_suspensions", "behaviour", "count", "{value} suspensions last year"),
    # course performance
    ("failing_marks", "course_performance", "count", "{value} failing marks this year"),
    ("mean_core_mark", "course_performance", "number", "mean core-course mark {value}"),
    (
        "credit_ratio",
        "course_performance",
        "rate",
        "earned {value} of credits attempted",
    ),
    (
        "prior_failures",
        "course_performance",
        "count",
        "{value} failed courses last year",
    ),
    # assessment
    ("ela_scale_z", "assessment", "z", "ELA test score {value} from the mean"),
    ("ela_proficient", "assessment", "flag", "proficient in ELA last test: {value}"),
    ("math_scale_z", "assessment", "z", "math test score {value} from the mean"),
    ("math_proficient", "assessment", "flag", "proficient in math last test: {value}"),
    # mobility
    ("schools_this_year", "mobility", "count", "{value} schools this year"),
    ("schools_last_year", "mobility", "count", "{value} schools last year"),
    (
        "days_since_entry",
        "mobility",
        "count",
        "{value} days since entering this school",
    ),
    ("new_to_district", "mobility", "flag", "new to the district: {value}"),
    ("grade", "mobility", "count", "in grade {value}"),
    ("over_age", "mobility", "flag", "older than the usual age for the grade: {value}"),
    ("current_programs", "mobility", "count", "in {value} support programs"),
    ("in_tutoring", "mobility", "flag", "in tutoring: {value}"),
    ("in_mentoring", "mobility", "flag", "in mentoring: {value}"),
)
_PROTECTED_KINDS = {
    "race_ethnicity": "number",
    "gender": "number",
    "disability": "flag",
    "english_learner": "flag",
    "economically_disadvantaged": "flag",
}


def _fallback_catalog() -> dict[str, FeatureSpec]:
    catalog = {
        name: FeatureSpec(name, domain, f"{text} ({_MEDIAN})", kind)
        for name, domain, kind, text in _FALLBACK
    }
    for name, kind in _PROTECTED_KINDS.items():
        catalog[name] = FeatureSpec(
            name, PROTECTED_DOMAIN, f"{name}: {{value}}", kind, protected=True
        )
    return catalog


def _from_entry(name: str, entry: Any, fallback: FeatureSpec | None) -> FeatureSpec:
    """A :class:`FeatureSpec` from one ``features.FEATURE_CATALOG`` entry."""
    if isinstance(entry, dict):
        fields = entry
    else:
        fields = {key: getattr(entry, key) for key in dir(entry) if key[0] != "_"}
    domain = fields.get("domain") or (fallback.domain if fallback else "mobility")
    protected = bool(fields.get("protected", fallback.protected if fallback else False))
    kind = fields.get("kind") or (fallback.kind if fallback else "number")
    template = fields.get("template") or (fallback.template if fallback else name)
    return FeatureSpec(name, str(domain), str(template), kind, protected)


def feature_catalog() -> dict[str, FeatureSpec]:
    """Every known feature, from ``features.FEATURE_CATALOG`` when it exists.

    Notes
    -----
    Falls back to the column table of docs/CONTRACTS.md while the features package
    does not yet publish its catalog.
    """
    fallback = _fallback_catalog()
    try:
        import features
    except ImportError:
        return fallback
    published = getattr(features, "FEATURE_CATALOG", None)
    if not published:
        return fallback
    return {
        name: _from_entry(name, entry, fallback.get(name))
        for name, entry in published.items()
    }


def model_inputs(
    catalog: dict[str, FeatureSpec],
    snapshot_columns: list[str],
    use_protected: bool,
    protected_attributes: list[str],
) -> list[FeatureSpec]:
    """The catalog features present in the snapshots that the model may use.

    Protected attributes are inputs only when the config opts in, and then only those
    the config lists.
    """
    present = set(snapshot_columns)
    inputs = []
    for spec in catalog.values():
        if spec.name not in present:
            continue
        if spec.protected and not (use_protected and spec.name in protected_attributes):
            continue
        inputs.append(spec)
    return inputs
