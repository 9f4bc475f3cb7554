"""School and district KPI projections from students' risks (Poisson-binomial).

A school's year-end count of students missing a KPI is a sum of independent Bernoulli
draws, one per student with that student's risk: a Poisson-binomial variable. Its mean
is the sum of the risks; its whole distribution gives the 90% interval of the year-end
rate and the probability that the rate misses the target.

"Missing the target" means the rate ends strictly above it (targets are maxima): with
a target of 0.22 and 100 students, 22 students missing the KPI meets the target and 23
misses it.

Notes
-----
Students' outcomes are treated as independent given their risks; a shock shared by a
whole school (a flu season, a hard test) makes real intervals wider than these.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.signal import fftconvolve

# Students per block convolved exactly before the blocks are merged by FFT.
_BLOCK = 64
INTERVAL = (0.05, 0.95)


def poisson_binomial_pmf(risk: np.ndarray) -> np.ndarray:
    """P(sum = j) for j = 0..n, the distribution of the number of students missing.

    Blocks of students are convolved exactly (one recursion step per student,
    vectorised over blocks), then blocks are merged pairwise by FFT convolution, so a
    district of a million students takes about a second rather than hours.
    """
    risk = np.clip(np.asarray(risk, dtype=float), 0.0, 1.0)
    n = risk.size
    if n == 0:
        return np.ones(1)
    n_blocks = math.ceil(n / _BLOCK)
    # Padding students with risk 0 never miss, so they leave the distribution as is.
    padded = np.zeros(n_blocks * _BLOCK)
    padded[:n] = risk
    blocks = padded.reshape(n_blocks, _BLOCK)
    pmf = np.zeros((n_blocks, _BLOCK + 1))
    pmf[:, 0] = 1.0
    for step in range(_BLOCK):
        p = blocks[:, step : step + 1]
        pmf[:, 1 : step + 2] = pmf[:, 1 : step + 2] * (1 - p) + pmf[:, : step + 1] * p
        pmf[:, 0] *= 1 - p[:, 0]
    while pmf.shape[0] > 1:
        if pmf.shape[0] % 2:
            identity = np.zeros((1, pmf.shape[1]))
            identity[0, 0] = 1.0
            pmf = np.vstack([pmf, identity])
        pmf = fftconvolve(pmf[0::2], pmf[1::2], axes=1)
        # FFT round-off leaves values of about 1e-17 around zero; probabilities are not
        # negative.
        np.clip(pmf, 0.0, None, out=pmf)
    pmf = pmf[0, : n + 1]
    return pmf / pmf.sum()


def miss_count(target: float, n: int) -> int:
    """The smallest number of students missing that puts the rate above ``target``."""
    # 0.22 * 100 is 22.000000000000004 in floating point; the tolerance keeps it 22.
    return math.floor(target * n + 1e-9) + 1


def project(risk: np.ndarray, target: float) -> dict[str, float]:
    """Expected rate, its 90% interval and the probability of missing ``target``."""
    risk = np.asarray(risk, dtype=float)
    n = risk.size
    if n == 0:
        nan = math.nan
        return {
            "n_students": 0,
            "expected_rate": nan,
            "rate_low": nan,
            "rate_high": nan,
            "target": target,
            "p_miss_target": nan,
        }
    pmf = poisson_binomial_pmf(risk)
    cdf = np.cumsum(pmf)
    low = int(np.searchsorted(cdf, INTERVAL[0]))
    high = int(np.searchsorted(cdf, INTERVAL[1]))
    return {
        "n_students": n,
        "expected_rate": float(risk.sum() / n),
        "rate_low": low / n,
        "rate_high": high / n,
        "target": target,
        "p_miss_target": float(pmf[miss_count(target, n) :].sum()),
    }


def school_projections(
    student_risks: pd.DataFrame, targets: dict[tuple[str, str], float]
) -> pd.DataFrame:
    """One row per ``(school_id, kpi)`` plus ``school_id = "district"`` per KPI.

    ``student_risks`` has one row per ``(student_id, kpi)`` at one as-of date with
    ``school_id``, ``kpi``, ``risk`` and ``observed_so_far`` (0/1, NaN where unknown);
    ``targets`` maps ``(school_id, kpi)`` to the target rate and ``("district", kpi)``
    to the district's.
    """
    rows = []
    for (kpi, school_id), students in student_risks.groupby(["kpi", "school_id"]):
        rows.append(_row(students, str(school_id), kpi, targets[(school_id, kpi)]))
    for kpi, students in student_risks.groupby("kpi"):
        rows.append(_row(students, "district", kpi, targets[("district", kpi)]))
    return pd.DataFrame(rows)


def _row(students: pd.DataFrame, school_id: str, kpi: str, target: float) -> dict:
    observed = students["observed_so_far"]
    return {
        "school_id": school_id,
        "kpi": kpi,
        **project(students["risk"].to_numpy(), target),
        "observed_rate_so_far": float(observed.mean())
        if observed.notna().all()
        else math.nan,
    }
