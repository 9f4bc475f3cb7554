"""Holdout metrics: ranking, calibration and tie-aware precision and recall at top k.

A list is made at one date, so "the top 10% of students" is always taken within one
``as_of_date`` (district-wide) or within one ``(as_of_date, school_id)`` (within
school); figures over several dates pool the expected true positives and the number
flagged across the lists.

Ties: when the k-th highest score is shared by several students, each tied student is
flagged with the same fraction of a flag, so that the flags add up to exactly k. With
scores ``[0.9, 0.5, 0.5, 0.5, 0.1]`` and k = 2 the first student counts fully and each
of the three tied at 0.5 counts 1/3: the expected precision under a random tie-break,
whatever order the rows came in.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

TOP_SHARES = (0.05, 0.10, 0.20)


def flag_weights(score: np.ndarray, k: int) -> np.ndarray:
    """How much of a flag each student gets when the top ``k`` scores are flagged.

    Students strictly above the k-th score get 1, those tied with it share what is left
    of k equally, the rest get 0. Missing scores rank last.
    """
    score = np.nan_to_num(np.asarray(score, dtype=float), nan=-np.inf)
    n = score.size
    if k <= 0 or n == 0:
        return np.zeros(n)
    if k >= n:
        return np.ones(n)
    threshold = np.partition(score, n - k)[n - k]
    above = score > threshold
    tied = score == threshold
    weights = above.astype(float)
    weights[tied] = (k - above.sum()) / tied.sum()
    return weights


def top_count(n: int, share: float) -> int:
    """Students in the top ``share`` of ``n``: half rounds up, at least 1."""
    return max(1, math.floor(share * n + 0.5)) if n else 0


def flagged_at_share(
    score: np.ndarray, share: float, groups: np.ndarray | None = None
) -> np.ndarray:
    """Flag weights for the top ``share`` of students within each group."""
    score = np.asarray(score, dtype=float)
    if groups is None:
        return flag_weights(score, top_count(score.size, share))
    weights = np.zeros(score.size)
    for members in _group_indices(groups):
        weights[members] = flag_weights(score[members], top_count(members.size, share))
    return weights


def flagged_at_counts(
    score: np.ndarray, groups: np.ndarray, counts: dict
) -> np.ndarray:
    """Flag weights for the top ``counts[group]`` students within each group."""
    score = np.asarray(score, dtype=float)
    weights = np.zeros(score.size)
    for key, members in _group_indices(groups, with_keys=True):
        weights[members] = flag_weights(score[members], int(counts.get(key, 0)))
    return weights


def _group_indices(groups: np.ndarray, with_keys: bool = False):
    codes, uniques = pd.factorize(pd.Series(groups), sort=True, use_na_sentinel=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    for code, key in enumerate(uniques):
        members = order[bounds[code] : bounds[code + 1]]
        yield (key, members) if with_keys else members


def precision_recall(y_true: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Expected precision and recall of fractional flags against 0/1 outcomes."""
    y_true = np.asarray(y_true, dtype=float)
    flagged = weights.sum()
    hits = float(weights @ y_true)
    positives = y_true.sum()
    precision = hits / flagged if flagged else math.nan
    recall = hits / positives if positives else math.nan
    return precision, recall


def expected_calibration_error(
    y_true: np.ndarray, risk: np.ndarray, n_bins: int = 10
) -> float:
    """Mean gap between predicted and observed rates over equal-width risk bins.

    Each bin's gap is weighted by its share of students; bins are [0, 0.1), [0.1, 0.2)
    ... [0.9, 1.0], the last one closed.
    """
    y_true = np.asarray(y_true, dtype=float)
    risk = np.asarray(risk, dtype=float)
    bins = np.minimum((risk * n_bins).astype(int), n_bins - 1)
    n_per_bin = np.bincount(bins, minlength=n_bins)
    observed = np.bincount(bins, weights=y_true, minlength=n_bins)
    predicted = np.bincount(bins, weights=risk, minlength=n_bins)
    filled = n_per_bin > 0
    gaps = np.abs(observed[filled] - predicted[filled])
    return float(gaps.sum() / risk.size)


class RankedOutcomes:
    """Outcomes sorted once by score, for many weighted PR AUCs of the same scores.

    The bootstrap re-weights students hundreds of times; the order by score does not
    change between draws, so only cumulative sums are redone.
    """

    def __init__(self, y_true: np.ndarray, score: np.ndarray) -> None:
        score = np.nan_to_num(np.asarray(score, dtype=float), nan=-np.inf)
        self._order = np.argsort(-score, kind="stable")
        ranked = score[self._order]
        # Last position of each run of equal scores: one threshold per distinct score.
        self._ends = np.append(np.flatnonzero(np.diff(ranked) != 0), ranked.size - 1)
        self._positive = np.asarray(y_true, dtype=float)[self._order]

    def average_precision(self, weight: np.ndarray | None = None) -> float:
        """PR AUC as sklearn's ``average_precision_score`` defines it, weighted."""
        weight = np.ones(self._order.size) if weight is None else weight[self._order]
        hits = np.cumsum(weight * self._positive)[self._ends]
        flagged = np.cumsum(weight)[self._ends]
        if hits[-1] <= 0:
            return math.nan
        precision = np.divide(hits, flagged, out=np.zeros_like(hits), where=flagged > 0)
        recall = hits / hits[-1]
        return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def ranking_metrics(y_true: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """ROC AUC and PR AUC (average precision); NaN when only one outcome occurs."""
    y_true = np.asarray(y_true, dtype=int)
    score = np.nan_to_num(np.asarray(score, dtype=float), nan=-1e9)
    if y_true.min(initial=0) == y_true.max(initial=0):
        return {"roc_auc": math.nan, "pr_auc": math.nan}
    return {
        "roc_auc": float(roc_auc_score(y_true, score)),
        "pr_auc": float(average_precision_score(y_true, score)),
    }


def evaluate(
    y_true: np.ndarray,
    score: np.ndarray,
    as_of_date: np.ndarray,
    school_id: np.ndarray,
    is_probability: bool,
) -> dict[str, float]:
    """Every holdout figure of one scorer on one set of rows.

    ``score`` ranks students; when it is a probability (``is_probability``) the Brier
    score and expected calibration error are added, otherwise they are NaN.
    """
    y_true = np.asarray(y_true, dtype=float)
    score = np.asarray(score, dtype=float)
    figures = {"n": float(y_true.size), "base_rate": float(y_true.mean())}
    figures.update(ranking_metrics(y_true, score))
    if is_probability:
        figures["brier"] = float(brier_score_loss(y_true, score))
        figures["ece"] = expected_calibration_error(y_true, score)
    else:
        figures["brier"] = figures["ece"] = math.nan
    # Integer codes: grouping by codes is much cheaper than by dates or joined text.
    date_code = pd.factorize(as_of_date)[0]
    school_code = pd.factorize(school_id)[0]
    school_groups = date_code * (school_code.max(initial=0) + 1) + school_code
    for share in TOP_SHARES:
        label = f"top{round(share * 100)}"
        district = flagged_at_share(score, share, date_code)
        within = flagged_at_share(score, share, school_groups)
        precision, recall = precision_recall(y_true, district)
        figures[f"precision_{label}"], figures[f"recall_{label}"] = precision, recall
        precision, recall = precision_recall(y_true, within)
        figures[f"precision_{label}_school"] = precision
        figures[f"recall_{label}_school"] = recall
    return figures
