"""The public indicator rows: what a reader sees for each cell, and nothing more.

One row per KPI, school (or the district) and student group. Each value is taken
from a protected cell and published only as its disclosure state allows:

- suppressed cells (small or complementary, never told apart in public) publish
  no size, count, rate, projection or on-track verdict;
- ranged cells publish the range text only: no size, count or rate;
- shown cells publish size, count and rate;
- cells with no students say so (a group with no student describes nobody).

Why a ranged cell publishes no size: the range exists because the exact count
would say too much (none or nearly all of a group missed), and the size is what
turns the range back into counts ("<20%" of 15 students is 0 to 2). A published
size is also one more known term in the size margins, from which a suppressed
group's size falls out by subtraction: a school of 15 ranged next to its 14
students who are not English learners gives away its 1 English learner. Without
it, the range tells that the rate is near 0% or 100% and, through its cutoff, the
band the size lies in, which the size audit (:mod:`monitoring._group_sizes`) takes
into account.

A projected rate within its group's top/bottom cutoff is shown as a range too,
since a projection close to 0% or 100% says nearly as much as the rate itself.
Rates are rounded to 0.1 percentage point, probabilities to whole percent.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from monitoring._cells import ALL, DISTRICT, NOT_REPORTED
from monitoring._disclosure import rate_cutoff
from monitoring._disclosure_audit import COMPLEMENTARY, EMPTY, RANGE, SHOWN, SUPPRESSED
from ontrack.config import KPI

PUBLIC_COLUMNS = [
    "kpi",
    "kpi_label",
    "school_id",
    "school_name",
    "dimension",
    "group",
    "group_label",
    "status",
    "n_size",
    "n_missed",
    "rate_so_far",
    "rate_so_far_text",
    "last_year_status",
    "last_year_n_size",
    "last_year_rate",
    "last_year_text",
    "target",
    "projected_rate",
    "projected_low",
    "projected_high",
    "projected_text",
    "on_track",
    "p_on_track",
]
# What the public sees of a disclosure state.
PUBLIC_STATUS = {
    SHOWN: "shown",
    RANGE: "range",
    SUPPRESSED: "suppressed",
    COMPLEMENTARY: "suppressed",
    EMPTY: "no students",
}
DIMENSION_LABELS = {
    ALL: "All students",
    "race_ethnicity": "Race/ethnicity",
    "gender": "Gender",
    "english_learner": "English learners",
    "disability": "Students with disabilities",
    "economically_disadvantaged": "Economically disadvantaged",
}
GROUP_LABELS = {
    ("english_learner", "yes"): "English learners",
    ("english_learner", "no"): "Not English learners",
    ("disability", "yes"): "Students with disabilities",
    ("disability", "no"): "Students without disabilities",
    ("economically_disadvantaged", "yes"): "Economically disadvantaged",
    ("economically_disadvantaged", "no"): "Not economically disadvantaged",
    ("race_ethnicity", "two_or_more"): "Two or more races",
    ("race_ethnicity", "american_indian"): "American Indian or Alaska Native",
    ("race_ethnicity", "pacific_islander"): "Native Hawaiian or Pacific Islander",
    ("race_ethnicity", "black"): "Black or African American",
}


def group_label(dimension: str, group: str) -> str:
    """``"English learners"``, ``"Hispanic"``, ``"All students"``: for people."""
    if dimension == ALL:
        return DIMENSION_LABELS[ALL]
    if group == NOT_REPORTED:
        return f"{DIMENSION_LABELS.get(dimension, dimension)}: not reported"
    return GROUP_LABELS.get((dimension, group), group.replace("_", " ").capitalize())


def public_rows(
    current: pd.DataFrame,
    last_year: pd.DataFrame | None,
    kpi: KPI,
    school_names: Mapping[str, str],
) -> pd.DataFrame:
    """The public rows of one KPI from its protected, projected cells.

    Parameters
    ----------
    current
        This year's cells after :func:`monitoring.protect_cells` and
        :func:`monitoring._progress.project_cells`.
    last_year
        Last year's protected cells, or None when there are no outcomes yet.
    kpi
        The KPI (name, label).
    school_names
        Public school names by ``school_id``; a school without one shows its id.

    Every cell of either table gets a row: a group or school found only last
    year has no students this year. Leaving such a cell out would not hide it:
    the published totals minus the published groups would give it away.
    """
    rows = _with_last_year_cells(current, last_year)
    status = rows["disclosure"].map(PUBLIC_STATUS)
    shown = (rows["disclosure"] == SHOWN).to_numpy()
    visible = rows["disclosure"].isin([SHOWN, RANGE]).to_numpy()
    public = pd.DataFrame(
        {
            "kpi": kpi.name,
            "kpi_label": kpi.label,
            "school_id": rows["school_id"],
            "school_name": [
                "District" if s == DISTRICT else school_names.get(s, f"School {s}")
                for s in rows["school_id"]
            ],
            "dimension": rows["dimension"],
            "group": rows["group"],
            "group_label": [
                group_label(d, g)
                for d, g in zip(rows["dimension"], rows["group"], strict=True)
            ],
            "status": status,
            "n_size": _count(shown, rows["n_size"]),
            "n_missed": _count(shown, rows["n_missed"]),
            "rate_so_far": _where(shown, (rows["n_missed"] / rows["n_size"]).round(3)),
            "rate_so_far_text": rows["rate_text"],
        }
    )
    public = public.join(_last_year(rows, last_year))
    public["target"] = rows["target"].round(3)
    public = public.join(_projections(rows, visible))
    return public[PUBLIC_COLUMNS].reset_index(drop=True)


def _with_last_year_cells(
    current: pd.DataFrame, last_year: pd.DataFrame | None
) -> pd.DataFrame:
    """This year's cells plus an empty cell for each key found only last year."""
    if last_year is None:
        return current.copy()
    key = ["school_id", "dimension", "group"]
    known = pd.MultiIndex.from_frame(current[key])
    extra = last_year.loc[~pd.MultiIndex.from_frame(last_year[key]).isin(known), key]
    if extra.empty:
        return current.copy()
    targets = current.drop_duplicates("school_id").set_index("school_id")["target"]
    empty = extra.assign(
        n_size=0,
        n_missed=np.nan if current["n_missed"].isna().all() else 0.0,
        disclosure=EMPTY,
        rate_text="no students",
        target=extra["school_id"].map(targets).to_numpy(),
        projected_rate=np.nan,
        projected_low=np.nan,
        projected_high=np.nan,
        p_miss_target=np.nan,
    )
    return pd.concat([current, empty], ignore_index=True)


def _where(mask: np.ndarray, values: pd.Series) -> pd.Series:
    """``values`` where ``mask`` holds, None elsewhere (an object column)."""
    out = values.astype(object).where(mask, None)
    return out.where(out.notna(), None)


def _count(mask: np.ndarray, values: pd.Series) -> pd.Series:
    """Whole numbers where ``mask`` holds and the count is known, None elsewhere."""
    known = mask & values.notna().to_numpy()
    return _where(known, values.fillna(0).astype("int64"))


def _last_year(rows: pd.DataFrame, last_year: pd.DataFrame | None) -> pd.DataFrame:
    columns = [
        "last_year_status",
        "last_year_n_size",
        "last_year_rate",
        "last_year_text",
    ]
    if last_year is None:
        empty = pd.DataFrame(None, index=rows.index, columns=columns, dtype=object)
        empty["last_year_text"] = "no outcomes yet"
        return empty
    keyed = last_year.set_index(["school_id", "dimension", "group"])
    keys = pd.MultiIndex.from_frame(rows[["school_id", "dimension", "group"]])
    matched = keyed.reindex(keys).reset_index(drop=True)
    matched.index = rows.index
    disclosure = matched["disclosure"].fillna(EMPTY)
    shown = (disclosure == SHOWN).to_numpy()
    return pd.DataFrame(
        {
            "last_year_status": disclosure.map(PUBLIC_STATUS),
            "last_year_n_size": _count(shown, matched["n_size"]),
            "last_year_rate": _where(
                shown, (matched["n_missed"] / matched["n_size"]).round(3)
            ),
            "last_year_text": matched["rate_text"].fillna("no students"),
        },
        index=rows.index,
    )


def _projections(rows: pd.DataFrame, visible: np.ndarray) -> pd.DataFrame:
    """Projected rate, interval and on-track verdict where the cell is visible."""
    texts, exact = [], []
    for rate, low, high, n_size, seen in zip(
        rows["projected_rate"],
        rows["projected_low"],
        rows["projected_high"],
        rows["n_size"],
        visible,
        strict=True,
    ):
        coded = _coded_rate(rate, int(n_size)) if seen else None
        exact.append(seen and coded is None)
        if not seen:
            texts.append("no students" if n_size == 0 else "suppressed")
        elif coded is not None:
            texts.append(coded)
        else:
            texts.append(f"{100 * rate:.1f}% ({100 * low:.1f}% to {100 * high:.1f}%)")
    exact = np.array(exact, dtype=bool)
    p_on_track = (1 - rows["p_miss_target"]).round(2)
    on_track = rows["projected_rate"] <= rows["target"]
    return pd.DataFrame(
        {
            "projected_rate": _where(exact, rows["projected_rate"].round(3)),
            "projected_low": _where(exact, rows["projected_low"].round(3)),
            "projected_high": _where(exact, rows["projected_high"].round(3)),
            "projected_text": texts,
            "on_track": _where(visible, on_track),
            "p_on_track": _where(visible, p_on_track),
        },
        index=rows.index,
    )


def _coded_rate(rate: float, n_size: int) -> str | None:
    """The range text for a projected rate near 0% or 100%, else None."""
    cutoff = rate_cutoff(n_size)
    if 100 * rate < cutoff:
        return f"<{cutoff}%"
    if 100 * rate > 100 - cutoff:
        return f">{100 - cutoff}%"
    return None
