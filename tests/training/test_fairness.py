import math

import numpy as np
import pandas as pd
import pytest

from training._fairness import fairness_audit, top_share_flags


def _holdout():
    # Twenty students at one date. Group "a" has 14 students, "b" has 6.
    risk = np.linspace(0.95, 0.0, 20)
    missed = np.array([1, 1, 0, 1, 0] + [0] * 9 + [1, 0, 0, 0, 0, 1])
    return pd.DataFrame(
        {
            "student_id": [f"{i:04d}" for i in range(20)],
            "as_of_date": "2025-02-01",
            "missed": missed,
            "risk": risk,
            "group_attribute": ["a"] * 14 + ["b"] * 6,
            "english_learner": [1.0] * 5 + [0.0] * 14 + [np.nan],
        }
    )


def test_top_ten_percent_at_each_date_includes_ties_at_the_cut_off():
    risk = np.array([0.9, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])

    flagged = top_share_flags(risk, np.zeros(11))

    # 10% of 11 is 1.1, one place; the student at 0.9 takes it alone.
    assert flagged.tolist() == [True] + [False] * 10
    assert top_share_flags(np.array([0.5, 0.5, 0.1]), np.zeros(3)).tolist() == [
        True,
        True,
        False,
    ]


def test_group_figures_at_the_cut_off():
    audit = fairness_audit(_holdout(), ["group_attribute"], min_n=5)
    row = audit.set_index("group").loc["a"]

    # The top 10% of 20 students are the first two, both in group a and both missed.
    assert row["n_students"] == 14
    assert row["observed_rate"] == pytest.approx(3 / 14)
    assert row["precision_top10"] == 1.0
    assert row["recall_top10"] == pytest.approx(2 / 3)
    assert row["false_negative_rate"] == pytest.approx(1 / 3)
    assert row["false_positive_rate"] == 0.0
    assert row["mean_risk"] == pytest.approx(np.linspace(0.95, 0.0, 20)[:14].mean())


def test_groups_under_the_minimum_n_are_shown_as_too_small_without_figures():
    audit = fairness_audit(_holdout(), ["group_attribute"], min_n=10)
    small = audit.set_index("group").loc["b"]

    assert bool(small["too_small"])
    assert small["n_students"] == 6
    assert math.isnan(small["mean_risk"])
    assert math.isnan(small["recall_top10"])


def test_flag_attributes_read_yes_no_and_unknown():
    audit = fairness_audit(_holdout(), ["english_learner"], min_n=1)

    assert audit["group"].tolist() == ["no", "unknown", "yes"]
    assert audit["n_students"].tolist() == [14, 1, 5]


def test_fairness_of_the_trained_model_covers_every_protected_group(chronic):
    audit = chronic.fairness

    assert set(audit["attribute"]) == {
        "race_ethnicity",
        "gender",
        "disability",
        "english_learner",
        "economically_disadvantaged",
    }
    assert (
        audit.groupby("attribute")["n_students"]
        .sum()
        .eq(chronic.holdout["student_id"].nunique())
        .all()
    )
