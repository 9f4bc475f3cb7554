"""Which snapshot columns are model inputs, their domains and how a driver reads.

The source of truth is the catalog of the snapshots, ``features.feature_catalog_for``
(feature name -> domain, plain-words template, kind of value, protected flag):
``features.FEATURE_CATALOG`` for event-level snapshots, a flat student table's own
otherwise; no feature list is written here. A trained
model keeps the domains, templates and kinds of its own inputs in its spec, so its
drivers read the same way after the catalog changes.

A template is ``str.format``-ed with two already formatted strings, ``value`` (the
student's) and ``reference`` (the district median at the same checkpoint), for example
``"attended {value} of days so far (district median {reference})"`` becomes "attended
84% of days so far (district median 95%)".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from features import format_value

DOMAINS = ("attendance", "behaviour", "course_performance", "assessment", "mobility")
# Contributions of the time-of-year feature are reported under this domain; it is
# never a student's driver because it says nothing about the student.
CONTEXT_DOMAIN = "context"
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


def _field(entry: Any, key: str, default: Any = None) -> Any:
    if isinstance(entry, dict):
        return entry.get(key, default)
    return getattr(entry, key, default)


def feature_catalog(state_dir: Path | None = None) -> dict[str, FeatureSpec]:
    """Every feature of the catalog, as :class:`FeatureSpec`.

    The catalog is ``features.feature_catalog_for(state_dir)``: the one stored with
    a flat student table's snapshots, else ``features.FEATURE_CATALOG`` (also when
    ``state_dir`` is None).
    """
    from features import FEATURE_CATALOG, feature_catalog_for

    catalog = FEATURE_CATALOG if state_dir is None else feature_catalog_for(state_dir)
    return {
        name: FeatureSpec(
            name=name,
            domain=str(_field(entry, "domain")),
            template=str(_field(entry, "template", name)),
            kind=_field(entry, "kind", "number"),
            protected=bool(_field(entry, "protected", False)),
        )
        for name, entry in catalog.items()
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
