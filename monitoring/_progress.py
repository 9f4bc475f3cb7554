"""Progress toward each KPI's target: cells per school and student group.

For one KPI, the students of the current scored snapshot give each cell its size,
its count of students who have *already* missed the standard this year (so far,
from the snapshot's features) and the sum of their risks; last year's KPI labels
give last year's count. A cell's projected year-end rate is the mean of its
students' risks, with a 90% interval from a normal approximation to the
Poisson-binomial count (mean sum(p), variance sum(p(1 - p))), and its probability of
missing the target (the rate ending strictly above it) from the same approximation
with a continuity correction. For the all-students cells of schools and the
district, the exact Poisson-binomial projections the score stage writes replace
the approximation.

"So far" as of the snapshot date (events strictly before it) is known only for
chronic absence: absent on at least ``absence_threshold`` of the days enrolled so
far (a tie counts, as in the KPI labels), with at least ``min_enrolled_days``
enrolled; students enrolled for fewer days count as not chronically absent yet.
Course failure is decided by the final mark of each course and proficiency by the
spring test, so for those KPIs the cells have no count so far, as in the score
stage's ``observed_rate_so_far``. (A failing term mark is not a failed course.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from features import absent_at_least_threshold
from monitoring._cells import ALL, DISTRICT, NOT_REPORTED
from ontrack.config import KPI

# Two-sided 90% interval of the normal approximation.
INTERVAL_Z = float(norm.ppf(0.95))
# Day counts are sums of fractions of days: a tie at the threshold stays a tie.
TIE_TOLERANCE = 1e-9
YES, NO = "yes", "no"


def group_values(students: pd.DataFrame, dimension: str) -> pd.Series:
    """Each student's group in one dimension, as published.

    Flags (0/1 floats or booleans) become ``"yes"``/``"no"``; categories keep their
    code; a missing value is ``"not_reported"``, so the groups of a dimension
    always add up to all students.
    """
    values = students[dimension]
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        flags = values.astype("float")
        groups = np.where(flags == 1, YES, NO).astype(object)
        groups[flags.isna().to_numpy()] = NOT_REPORTED
        return pd.Series(groups, index=students.index, name=dimension)
    groups = values.astype("object").where(values.notna(), NOT_REPORTED)
    return groups.astype(str).rename(dimension)


def missed_so_far(student_snapshots: pd.DataFrame, kpi: KPI) -> pd.Series:
    """1.0 when a student has already missed the KPI's standard, 0.0 when not yet.

    NaN throughout for course failure and state-test KPIs, whose outcome comes at
    the end of the year.
    """
    index = student_snapshots.index
    if kpi.definition == "chronic_absence":
        enrolled = student_snapshots["days_enrolled"].astype(float)
        absent = student_snapshots["days_absent"].astype(float)
        chronic = absent_at_least_threshold(absent, enrolled, kpi) & (
            enrolled >= kpi.min_enrolled_days
        )
        return chronic.astype(float).rename("missed_so_far")
    return pd.Series(np.nan, index=index, name="missed_so_far")


def progress_cells(
    students: pd.DataFrame, dimensions: Sequence[str], outcome: str
) -> pd.DataFrame:
    """Sum students into cells: every school and the district, by every group.

    Parameters
    ----------
    students
        One row per student: ``school_id``, each of ``dimensions``, the 0/1
        ``outcome`` column (NaN throughout when unknown) and, optionally, ``risk``.
    dimensions
        Protected attributes to break the cells down by.
    outcome
        The column counted into ``n_missed``.

    Returns
    -------
    pandas.DataFrame
        One row per cell: ``school_id``, ``dimension``, ``group``, ``n_size``,
        ``n_missed`` and, with risks, ``expected_missed`` and ``missed_variance``.
        Every school has a cell for every group seen anywhere in the district,
        with size 0 where it has no such students.
    """
    has_risk = "risk" in students.columns
    values = pd.DataFrame(
        {
            "school_id": students["school_id"].astype(str),
            "n_size": 1,
            "n_missed": students[outcome].astype(float),
        }
    )
    if has_risk:
        risk = students["risk"].astype(float)
        values["expected_missed"] = risk
        values["missed_variance"] = risk * (1 - risk)
    sums = [c for c in values.columns if c != "school_id"]
    schools = sorted(values["school_id"].unique())
    frames = [_by_group(values, sums, schools, ALL, pd.Series(ALL, index=values.index))]
    for dimension in dimensions:
        groups = group_values(students, dimension)
        frames.append(_by_group(values, sums, schools, dimension, groups))
    cells = pd.concat(frames, ignore_index=True)
    if students[outcome].isna().all():
        cells["n_missed"] = np.nan
    cells["n_size"] = cells["n_size"].astype(int)
    return cells


def _by_group(
    values: pd.DataFrame,
    sums: list[str],
    schools: list[str],
    dimension: str,
    groups: pd.Series,
) -> pd.DataFrame:
    """Cells of one dimension for every school, then the district."""
    labels = sorted(groups.unique(), key=lambda g: (g == NOT_REPORTED, g))
    by_school = (
        values.assign(group=groups.to_numpy())
        .groupby(["school_id", "group"])[sums]
        .sum(min_count=0)
    )
    grid = pd.MultiIndex.from_product([schools, labels], names=["school_id", "group"])
    by_school = by_school.reindex(grid, fill_value=0).reset_index()
    district = by_school.groupby("group", sort=False)[sums].sum().reset_index()
    district.insert(0, "school_id", DISTRICT)
    cells = pd.concat([by_school, district], ignore_index=True)
    cells.insert(1, "dimension", dimension)
    return cells


def project_cells(
    cells: pd.DataFrame, target_for: Callable[[str], float]
) -> pd.DataFrame:
    """Add the projected year-end rate, its 90% interval and the chance of a miss.

    ``target_for(school_id)`` gives the target of a school, or the district's for
    ``"district"``; a group's target is its school's. On track means the projected
    rate is at or below the target.
    """
    projected = cells.copy()
    n_size = projected["n_size"].to_numpy(dtype=float)
    mean = projected["expected_missed"].to_numpy(dtype=float)
    sd = np.sqrt(projected["missed_variance"].to_numpy(dtype=float))
    targets = projected["school_id"].map(target_for).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        projected["target"] = targets
        projected["projected_rate"] = mean / n_size
        projected["projected_low"] = np.clip((mean - INTERVAL_Z * sd) / n_size, 0, 1)
        projected["projected_high"] = np.clip((mean + INTERVAL_Z * sd) / n_size, 0, 1)
    projected["p_miss_target"] = [
        _p_miss(m, s, t, int(n))
        for m, s, t, n in zip(mean, sd, targets, n_size, strict=True)
    ]
    return projected


def _p_miss(mean: float, sd: float, target: float, n_size: int) -> float:
    """P(count > target * n), normal approximation with a continuity correction."""
    if n_size == 0:
        return math.nan
    # The smallest count that misses: with a target of 0.22 and 100 students, 23.
    miss_count = math.floor(target * n_size + TIE_TOLERANCE) + 1
    if sd == 0:
        return float(mean >= miss_count)
    return float(norm.sf((miss_count - 0.5 - mean) / sd))


def use_school_projections(
    cells: pd.DataFrame, school_projections: pd.DataFrame
) -> pd.DataFrame:
    """Replace the all-students projections with the score stage's exact ones.

    ``school_projections`` holds one KPI's rows (``school_id``, ``expected_rate``,
    ``rate_low``, ``rate_high``, ``p_miss_target``); cells without a row keep the
    approximation.
    """
    exact = school_projections.set_index(school_projections["school_id"].astype(str))
    updated = cells.copy()
    all_students = updated["dimension"] == ALL
    keys = updated.loc[all_students, "school_id"]
    pairs = {
        "projected_rate": "expected_rate",
        "projected_low": "rate_low",
        "projected_high": "rate_high",
        "p_miss_target": "p_miss_target",
    }
    for ours, theirs in pairs.items():
        replacement = keys.map(exact[theirs]).astype(float)
        known = replacement.notna()
        updated.loc[known[known].index, ours] = replacement[known]
    return updated
