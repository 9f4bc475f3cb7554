"""The catalog of snapshot features: domain, plain words, risk direction, protection.

Training and serving read this catalog instead of a hard-coded column list. A
feature's ``template`` is ``str.format``-ed with ``value`` (the student's) and
``reference`` (for example the district median at the same as-of date), each already
formatted for its ``kind``::

    >>> FEATURE_CATALOG["attendance_rate"].describe(0.84, 0.95)
    'attended 84% of school days so far (district median 95%)'

``raises_risk`` says which direction of the value usually goes with a higher risk
(``"higher"`` or ``"lower"``), or ``None`` where neither does; protected attributes
are for audits and disaggregation and never a student's driver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Domain = Literal[
    "attendance",
    "behaviour",
    "course_performance",
    "assessment",
    "mobility",
    "protected",
    # A flat student table's column that the mapping gives no other domain.
    "other",
]
Kind = Literal["rate", "count", "number", "flag", "z", "category"]
Direction = Literal["higher", "lower"] | None


@dataclass(frozen=True)
class Feature:
    """One column of the student snapshots that a model may read."""

    name: str
    domain: Domain
    template: str
    kind: Kind = "number"
    raises_risk: Direction = None
    protected: bool = False

    def describe(self, value: object, reference: object = None) -> str:
        """The feature in plain words, e.g. "3 behaviour incidents this year"."""
        return self.template.format(
            value=format_value(value, self.kind),
            reference=format_value(reference, self.kind),
        )


def format_value(value: object, kind: Kind) -> str:
    """A value as a person reads it: rates in percent, counts whole, flags yes/no."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    if kind == "category":
        return str(value).replace("_", " ")
    number = float(value)
    if kind == "rate":
        return f"{number:.0%}"
    if kind == "count":
        # A student's count is whole; a median of counts may fall halfway
        # (4.5 absences), which rounding would misstate.
        return f"{number:.0f}" if number.is_integer() else f"{number:.1f}"
    if kind == "flag":
        return "yes" if number >= 0.5 else "no"
    if kind == "z":
        return f"{number:+.1f} SD"
    return f"{number:.3g}"


_MEDIAN = " (district median {reference})"
_ENTRIES = (
    # name, domain, kind, raises risk, words
    ("days_enrolled", "attendance", "count", None, "enrolled {value} school days"),
    ("days_absent", "attendance", "number", "higher", "absent {value} days so far"),
    (
        "attendance_rate",
        "attendance",
        "rate",
        "lower",
        "attended {value} of school days so far",
    ),
    (
        "unexcused_share",
        "attendance",
        "rate",
        "higher",
        "{value} of the days missed were unexcused",
    ),
    ("tardies", "attendance", "count", "higher", "late {value} times so far"),
    (
        "longest_absence_streak",
        "attendance",
        "count",
        "higher",
        "missed {value} school days in a row at most",
    ),
    (
        "attendance_rate_last_20",
        "attendance",
        "rate",
        "lower",
        "attended {value} of the last 20 school days",
    ),
    (
        "attendance_trend",
        "attendance",
        "rate",
        "lower",
        "attendance over the last 20 days changed by {value}",
    ),
    (
        "prior_attendance_rate",
        "attendance",
        "rate",
        "lower",
        "attended {value} of school days last year",
    ),
    (
        "prior_chronic_absence",
        "attendance",
        "flag",
        "higher",
        "chronically absent last year: {value}",
    ),
    (
        "incidents",
        "behaviour",
        "count",
        "higher",
        "{value} behaviour incidents this year",
    ),
    (
        "in_school_suspensions",
        "behaviour",
        "count",
        "higher",
        "{value} in-school suspensions this year",
    ),
    (
        "out_of_school_suspensions",
        "behaviour",
        "count",
        "higher",
        "{value} out-of-school suspensions this year",
    ),
    (
        "days_removed",
        "behaviour",
        "number",
        "higher",
        "{value} days removed from class",
    ),
    ("prior_incidents", "behaviour", "count", "higher", "{value} incidents last year"),
    (
        "prior_suspensions",
        "behaviour",
        "count",
        "higher",
        "{value} suspensions last year",
    ),
    (
        "failing_marks",
        "course_performance",
        "count",
        "higher",
        "{value} failing term marks this year",
    ),
    (
        "mean_core_mark",
        "course_performance",
        "number",
        "lower",
        "core-course marks average {value}",
    ),
    (
        "credit_ratio",
        "course_performance",
        "rate",
        "lower",
        "earned {value} of the credits attempted",
    ),
    (
        "latest_core_mark",
        "course_performance",
        "number",
        "lower",
        "lowest core-course mark of the last term {value}",
    ),
    (
        "prior_failures",
        "course_performance",
        "count",
        "higher",
        "{value} failing term marks last year",
    ),
    ("ela_scale_z", "assessment", "z", "lower", "last ELA test score {value}"),
    (
        "ela_proficient",
        "assessment",
        "flag",
        "lower",
        "proficient on the last ELA test: {value}",
    ),
    ("math_scale_z", "assessment", "z", "lower", "last math test score {value}"),
    (
        "math_proficient",
        "assessment",
        "flag",
        "lower",
        "proficient on the last math test: {value}",
    ),
    (
        "schools_this_year",
        "mobility",
        "count",
        "higher",
        "attended {value} schools this year",
    ),
    (
        "schools_last_year",
        "mobility",
        "count",
        "higher",
        "attended {value} schools last year",
    ),
    (
        "days_since_entry",
        "mobility",
        "count",
        "lower",
        "entered this school {value} days ago",
    ),
    (
        "new_to_district",
        "mobility",
        "flag",
        "higher",
        "new to the district this year: {value}",
    ),
    ("grade", "mobility", "count", None, "in grade {value}"),
    (
        "over_age",
        "mobility",
        "flag",
        "higher",
        "a year or more older than the grade's usual age: {value}",
    ),
    ("current_programs", "mobility", "count", None, "in {value} support programs now"),
    ("in_tutoring", "mobility", "flag", None, "in tutoring now: {value}"),
    ("in_mentoring", "mobility", "flag", None, "in mentoring now: {value}"),
)
_PROTECTED = (
    ("race_ethnicity", "category"),
    ("gender", "category"),
    ("disability", "flag"),
    ("english_learner", "flag"),
    ("economically_disadvantaged", "flag"),
)
# Model inputs whose words need no district reference (a yes/no or a grade).
_NO_REFERENCE_KINDS = ("flag",)

FEATURE_CATALOG: MappingProxyType[str, Feature] = MappingProxyType(
    {
        **{
            name: Feature(
                name=name,
                domain=domain,
                template=words if kind in _NO_REFERENCE_KINDS else words + _MEDIAN,
                kind=kind,
                raises_risk=direction,
            )
            for name, domain, kind, direction, words in _ENTRIES
        },
        **{
            name: Feature(
                name=name,
                domain="protected",
                template=name.replace("_", " ") + ": {value}",
                kind=kind,
                protected=True,
            )
            for name, kind in _PROTECTED
        },
    }
)
