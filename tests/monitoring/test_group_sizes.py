"""Group sizes stay hidden: hand-made tables with the leaks a reader could use."""

import math

import pandas as pd
import pytest
from test_disclosure import ENGLISH_LEARNERS, _pattern, _table

from monitoring import PublishedDisclosureError, audit_public_rows, protect_cells
from monitoring._disclosure_audit import MEASURE_COLUMNS
from monitoring._group_sizes import audit_public_sizes, protect_sizes, size_band
from monitoring._indicators import PUBLIC_STATUS

# The same students as ENGLISH_LEARNERS under a second KPI: school C's 20 English
# learners all met it, so they are a range ("<20%") and no partner is needed in
# the English-learner column. This KPI then shows B's 15 English learners, and the
# first KPI shows C's 20: the district's 41 minus 15 minus 20 gives A's 6.
SECOND_KPI = {
    "A": {"all": (50, 10), "yes": (6, 2), "no": (44, 8)},
    "B": {"all": (40, 12), "yes": (15, 5), "no": (25, 7)},
    "C": {"all": (60, 12), "yes": (20, 0), "no": (40, 12)},
    "district": {"all": (150, 34), "yes": (41, 7), "no": (109, 27)},
}


def _rows(kpi: str, protected: pd.DataFrame, range_size: bool = False) -> pd.DataFrame:
    """Public rows as monitoring._indicators writes them (the columns audits read)."""
    status = protected["disclosure"].map(PUBLIC_STATUS)
    shown = status == "shown"
    if range_size:
        shown |= status == "range"
    rows = protected[["school_id", "dimension", "group"]].assign(
        kpi=kpi,
        status=status,
        rate_so_far_text=protected["rate_text"],
        n_size=protected["n_size"].where(shown),
        n_missed=protected["n_missed"].where(status == "shown"),
    )
    for column in MEASURE_COLUMNS["this_year"]["suppressed_empty"]:
        if column not in rows:
            rows[column] = None
    return rows


def _two_kpis():
    first = protect_cells(_table("english_learner", ENGLISH_LEARNERS), 10, "first")
    second = protect_cells(_table("english_learner", SECOND_KPI), 10, "second")
    return first, second


def test_each_kpi_alone_hides_a_different_partner_of_the_small_group():
    first, second = _two_kpis()

    assert _pattern(first) == {
        ("A", "yes"): "suppressed",
        ("A", "no"): "complementary",
        ("B", "yes"): "complementary",
        ("B", "no"): "complementary",
    }
    assert _pattern(second) == {
        ("A", "yes"): "suppressed",
        ("A", "no"): "complementary",
        ("C", "yes"): "range",
        ("C", "no"): "complementary",
    }


def test_audit_recovers_a_size_as_the_district_minus_the_schools_shown():
    first, second = _two_kpis()
    rows = pd.concat([_rows("first", first), _rows("second", second)])

    with pytest.raises(PublishedDisclosureError) as caught:
        audit_public_sizes(
            rows, {"first": first, "second": second}, "this_year", 10, "test"
        )

    assert str(caught.value) == (
        "test: the size of school A, english_learner=yes (first, second) can be "
        "worked out from the published sizes, 2 such cell(s) in all; nothing was "
        "published"
    )


def test_sizes_shared_by_two_kpis_are_hidden_in_both():
    first, second = _two_kpis()

    first, second = protect_sizes([first, second], 10, "test")

    # B's English learners were shown by the second KPI only: now hidden there too,
    # and with them B's other students, whose size would give them back from B's 40.
    assert _pattern(second) == {
        ("A", "yes"): "suppressed",
        ("A", "no"): "complementary",
        ("B", "yes"): "complementary",
        ("B", "no"): "complementary",
        ("C", "yes"): "range",
        ("C", "no"): "complementary",
    }
    assert second.set_index(["school_id", "group"]).loc[("B", "yes"), "rate_text"] == (
        "suppressed"
    )
    assert _pattern(first) == _pattern(
        protect_cells(_table("english_learner", ENGLISH_LEARNERS), 10, "first")
    )
    rows = pd.concat([_rows("first", first), _rows("second", second)])
    audit_public_sizes(rows, {"first": first, "second": second}, "this_year", 10, "t")


# A small school as the tester found it: its 15 students all met the standard, so
# the school is a range, and so are its 14 students who are not English learners.
# Had the range rows kept their sizes, 15 - 14 would give its one English learner.
CEDAR = {
    "S1": {"all": (15, 0), "yes": (1, 0), "no": (14, 0)},
    "S2": {"all": (45, 15), "yes": (12, 4), "no": (33, 11)},
    "district": {"all": (60, 15), "yes": (13, 4), "no": (47, 11)},
}


def test_a_range_row_that_publishes_its_size_is_refused():
    cells = protect_cells(_table("english_learner", CEDAR), 10, "cedar")
    rows = _rows("k", cells, range_size=True)

    with pytest.raises(PublishedDisclosureError) as caught:
        audit_public_rows(rows, cells, "this_year", "cedar")

    assert str(caught.value) == (
        "cedar: the range row S1, all=all publishes n_size; it must be empty"
    )


def test_a_range_row_without_its_size_keeps_the_complement_group_open():
    cells = protect_cells(_table("english_learner", CEDAR), 10, "cedar")

    assert _pattern(cells) == {
        ("S1", "all"): "range",
        ("S1", "yes"): "suppressed",
        ("S1", "no"): "range",
        ("S2", "all"): "complementary",
        ("S2", "yes"): "complementary",
        ("S2", "no"): "complementary",
    }
    audit_public_rows(_rows("k", cells), cells, "this_year", "cedar")
    audit_public_sizes(_rows("k", cells), {"k": cells}, "this_year", 10, "cedar")


def test_a_range_cutoff_tells_the_band_of_sizes():
    assert size_band(20, 10) == (10, 30.0)
    assert size_band(10, 10) == (31, 60.0)
    assert size_band(5, 10) == (61, 300.0)
    assert size_band(1, 10) == (301, math.inf)
