"""Drivers: why a student's risk is what it is, from exact TreeSHAP contributions.

LightGBM's ``pred_contrib`` splits each student's raw margin (log-odds) exactly into one
contribution per feature plus a base value shared by all students; contributions plus
the base value equal the margin. Contributions are summed into domains (attendance,
behaviour, course performance, assessment, mobility) for the domain view.

A student's drivers are the features that raise the risk most: the largest positive
contributions among the features that may be shown. A protected attribute is never a
driver, nor is the time of year. A student with fewer than three risk-raising features
has fewer drivers; the empty slots are empty strings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from training._catalog import CONTEXT_DOMAIN, DAYS_INTO_YEAR, FeatureSpec, format_value
from training._model import ModelSpec

ALL_CHECKPOINTS = ""


def contributions(booster, features: np.ndarray, n_jobs: int) -> np.ndarray:
    """Exact TreeSHAP: ``(n, n_features + 1)``, the last column the base value."""
    return booster.predict(features, pred_contrib=True, num_threads=n_jobs)


def driver_eligible(spec: ModelSpec) -> np.ndarray:
    """Which of the booster's features may be shown to a person as a driver."""
    hidden = set(spec.protected) | {DAYS_INTO_YEAR}
    return np.array([name not in hidden for name in spec.features])


def domain_of(spec: ModelSpec, name: str) -> str:
    """The domain a feature's contribution is summed into."""
    if name == DAYS_INTO_YEAR:
        return CONTEXT_DOMAIN
    return spec.domains[name]


def by_domain(contrib: np.ndarray, spec: ModelSpec) -> pd.DataFrame:
    """Contributions summed per domain: one row per student, one column per domain."""
    per_feature = pd.DataFrame(contrib[:, : len(spec.features)], columns=spec.features)
    domains = [domain_of(spec, name) for name in spec.features]
    return per_feature.T.groupby(domains, sort=True).sum().T


def top_drivers(contrib: np.ndarray, eligible: np.ndarray, k: int) -> np.ndarray:
    """Column positions of each student's ``k`` largest positive contributions.

    ``(n, k)`` integers in descending order of contribution; -1 where a student has
    fewer than ``k`` risk-raising features. ``argpartition`` keeps it linear in the
    number of features, which matters for a million students.
    """
    values = contrib[:, : eligible.size].copy()
    values[:, ~eligible] = -np.inf
    values[values <= 0] = -np.inf
    k = min(k, values.shape[1])
    part = np.argpartition(-values, k - 1, axis=1)[:, :k]
    chosen = np.take_along_axis(values, part, axis=1)
    order = np.argsort(-chosen, axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    top_values = np.take_along_axis(chosen, order, axis=1)
    top[~np.isfinite(top_values)] = -1
    return top


class ReferenceTable:
    """The reference medians as one array: a row per checkpoint, a column per feature.

    A median the training years lacked at a checkpoint falls back to the median over
    all checkpoints.
    """

    def __init__(self, spec: ModelSpec) -> None:
        medians = pd.DataFrame(spec.references).T.reindex(columns=spec.features)
        overall = medians.loc[ALL_CHECKPOINTS]
        self.values = medians.fillna(overall).to_numpy(dtype=float)
        self._row_of = {str(key): row for row, key in enumerate(medians.index)}
        self._overall = self._row_of[ALL_CHECKPOINTS]

    def rows(self, checkpoints: Sequence) -> np.ndarray:
        """Each student's reference values: the medians at the student's checkpoint.

        A checkpoint the training years did not have (an ad-hoc date, or none)
        reads against the medians over all checkpoints.
        """
        rows = [self._row_of.get(key, self._overall) for key in checkpoints]
        return self.values[np.asarray(rows, dtype=np.intp)]


class Phrasebook:
    """How each of a model's features is worded as a driver, made once per model."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._phrases = [_feature_spec(spec, name).phrase for name in spec.features]
        self._names = np.array(spec.features + [""], dtype=object)
        self._domains = np.array(
            [domain_of(spec, name) for name in spec.features] + [""], dtype=object
        )

    def slots(
        self, top: np.ndarray, features: np.ndarray, references: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per driver slot: the phrase, the feature and the domain of every row.

        ``top`` is :func:`top_drivers`' ``(n, k)`` positions. Phrases are made
        feature by feature: the rows whose slot holds a feature are formatted
        together, so the cost is one template per row and slot, no more.
        """
        spec = self.spec
        slots = []
        for slot in range(top.shape[1]):
            position = top[:, slot]
            phrases = np.full(position.size, "", dtype=object)
            for feature in np.unique(position[position >= 0]):
                rows = np.flatnonzero(position == feature)
                phrase = self._phrases[feature]
                name = spec.features[feature]
                phrases[rows] = [
                    phrase(
                        category_value(spec, name, value),
                        None if name in spec.categories else reference,
                    )
                    for value, reference in zip(
                        features[rows, feature], references[rows, feature], strict=True
                    )
                ]
            slots.append((phrases, self._names[position], self._domains[position]))
        return slots


def category_value(spec: ModelSpec, name: str, value: float) -> object:
    """A categorical feature's value as its category, any other value as it is.

    The booster reads a category as its position in ``spec.categories[name]``; a
    person reads the category itself. A category has no median: its reference
    (the median of positions) is shown as unknown, never as a category.
    """
    if name not in spec.categories:
        return value
    if value is None or np.isnan(value) or not float(value).is_integer():
        return None
    return spec.categories[name][int(value)]


def _feature_spec(spec: ModelSpec, name: str) -> FeatureSpec:
    if name == DAYS_INTO_YEAR:
        return FeatureSpec(name, CONTEXT_DOMAIN, "{value} days into the school year")
    return FeatureSpec(
        name,
        spec.domains[name],
        spec.templates[name],
        spec.kinds.get(name, "number"),
        name in spec.protected,
    )


def explain_row(
    contrib: np.ndarray, features: np.ndarray, references: np.ndarray, spec: ModelSpec
) -> dict:
    """One student's contributions by domain and by feature, largest first."""
    per_feature = contrib[: len(spec.features)]
    feature_rows = []
    for position in np.argsort(-np.abs(per_feature), kind="stable"):
        name = spec.features[position]
        kind = _feature_spec(spec, name).kind
        value = category_value(spec, name, float(features[position]))
        reference = None if name in spec.categories else float(references[position])
        feature_rows.append(
            {
                "feature": name,
                "domain": domain_of(spec, name),
                "contribution": float(per_feature[position]),
                "value": format_value(value, kind),
                "reference": format_value(reference, kind),
                "protected": name in spec.protected,
            }
        )
    domains: dict[str, float] = {}
    for row in feature_rows:
        domains[row["domain"]] = domains.get(row["domain"], 0.0) + row["contribution"]
    return {
        "base_value": float(contrib[-1]),
        "margin": float(contrib.sum()),
        "by_domain": dict(sorted(domains.items(), key=lambda item: -abs(item[1]))),
        "by_feature": feature_rows,
    }


def global_drivers(
    contrib: np.ndarray, spec: ModelSpec, groups: pd.Series | None = None
) -> pd.DataFrame:
    """Mean absolute contribution per domain, overall or per group (e.g. school).

    One row per ``(group, domain)`` with ``mean_abs_contribution`` and
    ``mean_contribution`` (log-odds), largest first within a group.
    """
    domains = by_domain(contrib, spec)
    if groups is None:
        groups = pd.Series("district", index=domains.index)
    domains.index = pd.Index(np.asarray(groups), name="group")
    mean_abs = domains.abs().groupby(level="group").mean().stack()
    mean = domains.groupby(level="group").mean().stack()
    table = pd.DataFrame(
        {"mean_abs_contribution": mean_abs, "mean_contribution": mean}
    ).reset_index()
    table.columns = ["group", "domain", "mean_abs_contribution", "mean_contribution"]
    return table.sort_values(
        ["group", "mean_abs_contribution"], ascending=[True, False]
    ).reset_index(drop=True)
