"""Disclosure control on small hand-made tables, with exact expected patterns."""

import pandas as pd
import pytest

from monitoring import (
    CellTableError,
    audit_cells,
    missed_range,
    protect_cells,
    rate_cutoff,
)


def _table(dimension: str, spec: dict[str, dict[str, tuple[int, int]]]) -> pd.DataFrame:
    """Cells from ``{school_id: {group: (n_size, n_missed)}}``; group "all" is all."""
    rows = []
    for school_id, groups in spec.items():
        for group, (n_size, n_missed) in groups.items():
            rows.append(
                {
                    "school_id": school_id,
                    "dimension": "all" if group == "all" else dimension,
                    "group": group,
                    "n_size": n_size,
                    "n_missed": n_missed,
                }
            )
    return pd.DataFrame(rows)


def _pattern(protected: pd.DataFrame) -> dict[tuple[str, str], str]:
    return {
        (row.school_id, row.group): row.disclosure
        for row in protected.itertuples()
        if row.disclosure != "shown"
    }


# School A's 6 English learners are under min_n = 10. Left alone, A's total minus
# its 44 other students would give them away; so would the district's English
# learners minus schools B and C.
ENGLISH_LEARNERS = {
    "A": {"all": (50, 10), "yes": (6, 2), "no": (44, 8)},
    "B": {"all": (40, 8), "yes": (15, 3), "no": (25, 5)},
    "C": {"all": (60, 12), "yes": (20, 4), "no": (40, 8)},
    "district": {"all": (150, 30), "yes": (41, 9), "no": (109, 21)},
}


def test_one_small_cell_brings_its_row_and_column_partners():
    cells = _table("english_learner", ENGLISH_LEARNERS)

    protected = protect_cells(cells, min_n=10, table="test")

    assert _pattern(protected) == {
        ("A", "yes"): "suppressed",
        ("A", "no"): "complementary",
        ("B", "yes"): "complementary",
        ("B", "no"): "complementary",
    }
    assert (
        protected.loc[protected["disclosure"] != "shown", "rate_text"]
        .eq("suppressed")
        .all()
    )


def test_audit_recovers_a_lone_suppressed_cell_from_its_row_total():
    cells = _table("english_learner", ENGLISH_LEARNERS)
    cells["disclosure"] = "shown"
    lone = (cells["school_id"] == "A") & (cells["group"] == "yes")
    cells.loc[lone, "disclosure"] = "suppressed"

    ranges = audit_cells(cells, exact_ranges=True)

    assert ranges[["school_id", "group", "feasible_low", "feasible_high"]].to_dict(
        "records"
    ) == [{"school_id": "A", "group": "yes", "feasible_low": 2, "feasible_high": 2}]
    assert ranges["recoverable"].tolist() == [True]


def test_audit_of_the_protected_table_leaves_every_count_open():
    protected = protect_cells(
        _table("english_learner", ENGLISH_LEARNERS), min_n=10, table="test"
    )

    ranges = audit_cells(protected, exact_ranges=True)

    # a_yes + a_no = 10, b_yes + b_no = 8, a_yes + b_yes = 5, a_no + b_no = 13:
    # one free count t = a_yes in 0..5 moves all four.
    assert ranges[["school_id", "group", "feasible_low", "feasible_high"]].to_dict(
        "records"
    ) == [
        {"school_id": "A", "group": "yes", "feasible_low": 0, "feasible_high": 5},
        {"school_id": "A", "group": "no", "feasible_low": 5, "feasible_high": 10},
        {"school_id": "B", "group": "yes", "feasible_low": 0, "feasible_high": 5},
        {"school_id": "B", "group": "no", "feasible_low": 3, "feasible_high": 8},
    ]
    assert not ranges["recoverable"].any()


def test_two_hidden_cells_that_sum_to_zero_get_a_third():
    # In school A the 12 boys and 4 non-binary students all met the standard, so
    # the row gives boys + non-binary = 8 - 8 = 0: both would be known to be 0
    # although both are hidden (boys as a range, non-binary as a small cell).
    cells = _table(
        "gender",
        {
            "A": {
                "all": (40, 8),
                "female": (24, 8),
                "male": (12, 0),
                "nonbinary": (4, 0),
            },
            "B": {
                "all": (60, 15),
                "female": (30, 7),
                "male": (30, 8),
                "nonbinary": (0, 0),
            },
            "district": {
                "all": (100, 23),
                "female": (54, 15),
                "male": (42, 8),
                "nonbinary": (4, 0),
            },
        },
    )

    protected = protect_cells(cells, min_n=10, table="test")

    # Rules 1-3 hide district boys (the district row's partner of its 4 non-binary
    # students); the audit then pins A's boys and non-binary at 0, and the repair
    # hides A's girls, which pulls in B's girls and boys across the female column.
    assert _pattern(protected) == {
        ("A", "female"): "complementary",
        ("A", "male"): "range",
        ("A", "nonbinary"): "suppressed",
        ("B", "female"): "complementary",
        ("B", "male"): "complementary",
        ("B", "nonbinary"): "empty",
        ("district", "male"): "complementary",
        ("district", "nonbinary"): "suppressed",
    }
    ranges = audit_cells(protected, exact_ranges=True).set_index(["school_id", "group"])
    assert not ranges["recoverable"].any()
    assert ranges.loc[("A", "male"), ["feasible_low", "feasible_high"]].tolist() == [
        0,
        2,
    ]


def test_rates_near_zero_or_full_are_ranges_that_tighten_with_group_size():
    assert [rate_cutoff(n) for n in (10, 30, 31, 60, 61, 300, 301)] == [
        20,
        20,
        10,
        10,
        5,
        5,
        1,
    ]
    assert missed_range(50, 4) == (0, 4)  # 8% < 10%: "<10%" stands for 0..4
    assert missed_range(50, 5) is None  # exactly 10% is shown
    assert missed_range(50, 46) == (46, 50)  # 92% > 90%
    assert missed_range(50, 45) is None
    assert missed_range(1000, 9) == (0, 9)
    assert missed_range(1000, 10) is None


def test_ranged_cell_shows_the_range_and_no_count():
    cells = _table(
        "gender",
        {
            "A": {"all": (100, 30), "female": (50, 2), "male": (50, 28)},
            "district": {"all": (100, 30), "female": (50, 2), "male": (50, 28)},
        },
    )

    protected = protect_cells(cells, min_n=10, table="test").set_index(
        ["school_id", "group"]
    )

    assert protected.loc[("A", "female"), "rate_text"] == "<10%"
    assert protected.loc[("A", "female"), "disclosure"] == "range"
    # Its partner in the row and across to the district is hidden too.
    assert protected.loc[("A", "male"), "disclosure"] == "complementary"
    assert protected.loc[("district", "female"), "disclosure"] == "range"


def test_margins_that_do_not_add_up_are_refused_with_the_margin_named():
    cells = _table(
        "gender",
        {
            "A": {"all": (40, 8), "female": (24, 8), "male": (15, 0)},
            "district": {"all": (40, 8), "female": (24, 8), "male": (15, 0)},
        },
    )

    with pytest.raises(CellTableError) as error:
        protect_cells(cells, min_n=10, table="chronic_absence 2026 so far")

    assert str(error.value) == (
        "chronic_absence 2026 so far: margin A by gender does not add up in n_size: "
        "total 40, parts sum to 39"
    )


def test_unknown_counts_are_suppressed_by_size_alone():
    cells = _table(
        "english_learner",
        {
            school: {group: (n_size, None) for group, (n_size, _) in groups.items()}
            for school, groups in ENGLISH_LEARNERS.items()
        },
    )
    cells["n_missed"] = cells["n_missed"].astype(float)

    protected = protect_cells(cells, min_n=10, table="test")

    assert _pattern(protected) == {
        ("A", "yes"): "suppressed",
        ("A", "no"): "complementary",
        ("B", "yes"): "complementary",
        ("B", "no"): "complementary",
    }
    shown = protected["disclosure"] == "shown"
    assert protected.loc[shown, "rate_text"].eq("not yet known").all()
    assert audit_cells(protected).empty
