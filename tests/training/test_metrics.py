import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from training._evaluation import abc_comparison, bootstrap_pr_auc_difference
from training._metrics import (
    RankedOutcomes,
    expected_calibration_error,
    flag_weights,
    flagged_at_share,
    precision_recall,
    top_count,
)


def test_tied_students_at_the_cut_off_share_the_last_flag():
    score = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    missed = np.array([1, 1, 0, 0, 1])

    weights = flag_weights(score, k=2)
    precision, recall = precision_recall(missed, weights)

    np.testing.assert_allclose(weights, [1, 1 / 3, 1 / 3, 1 / 3, 0])
    # Expected hits: the first student, plus a third of the tied student who missed.
    assert precision == pytest.approx((1 + 1 / 3) / 2)
    assert recall == pytest.approx((1 + 1 / 3) / 3)


def test_tie_aware_precision_does_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    score = rng.integers(0, 4, 200).astype(float)
    missed = rng.integers(0, 2, 200)
    order = rng.permutation(200)

    first = precision_recall(missed, flag_weights(score, 37))
    shuffled = precision_recall(missed[order], flag_weights(score[order], 37))

    assert first == pytest.approx(shuffled)


def test_flags_add_up_to_k_and_missing_scores_rank_last():
    score = np.array([np.nan, 0.2, 0.2, 0.7])

    weights = flag_weights(score, 2)

    assert weights.sum() == pytest.approx(2)
    np.testing.assert_allclose(weights, [0, 0.5, 0.5, 1])


def test_top_share_is_taken_within_each_group():
    score = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.4])
    date = np.array(["a", "a", "a", "b", "b", "b"])

    weights = flagged_at_share(score, 0.34, date)

    # One student per date: 0.34 x 3 = 1.02 rounds to 1.
    np.testing.assert_allclose(weights, [1, 0, 0, 0, 0, 1])
    assert top_count(10, 0.05) == 1
    assert top_count(30, 0.05) == 2
    assert top_count(0, 0.1) == 0


def test_expected_calibration_error_on_two_filled_bins():
    risk = np.array([0.05, 0.05, 0.95, 0.95])
    missed = np.array([0, 1, 1, 1])

    # Bin [0, 0.1): predicted 0.05, observed 0.5; bin [0.9, 1]: 0.95 against 1.0.
    expected = 0.45 * 2 / 4 + 0.05 * 2 / 4
    assert expected_calibration_error(missed, risk) == pytest.approx(expected)


def test_weighted_pr_auc_agrees_with_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    missed = rng.random(3000) < 0.2
    score = np.round(rng.random(3000) + 0.3 * missed, 2)
    weight = rng.integers(0, 3, 3000).astype(float)

    ranked = RankedOutcomes(missed, score)

    assert ranked.average_precision(weight) == pytest.approx(
        average_precision_score(missed, score, sample_weight=weight), abs=1e-12
    )
    assert ranked.average_precision() == pytest.approx(
        average_precision_score(missed, score), abs=1e-12
    )


def test_bootstrap_difference_of_a_scorer_with_itself_is_exactly_zero():
    rng = np.random.default_rng(1)
    missed = rng.integers(0, 2, 400)
    score = rng.random(400)
    students = np.repeat(np.arange(100), 4)

    difference = bootstrap_pr_auc_difference(missed, score, score, students, seed=5)

    assert difference == {"difference": 0.0, "low": 0.0, "high": 0.0, "reps": 200}


def test_bootstrap_interval_brackets_a_clear_improvement():
    rng = np.random.default_rng(2)
    missed = rng.integers(0, 2, 2000)
    good = missed + rng.normal(0, 0.5, 2000)
    noise = rng.random(2000)

    difference = bootstrap_pr_auc_difference(
        missed, good, noise, np.arange(2000), seed=5
    )

    assert 0 < difference["low"] < difference["difference"] < difference["high"]


def test_abc_comparison_flags_the_same_number_at_each_date():
    holdout = pd.DataFrame(
        {
            "as_of_date": ["2024-10-01"] * 4 + ["2025-02-01"] * 4,
            "checkpoint": ["10-01"] * 4 + ["02-01"] * 4,
            "missed": [1, 0, 1, 0, 1, 1, 0, 0],
        }
    )
    abc = np.array([1, 1, 0, 0, 0, 0, 1, 0], dtype=float)
    risk = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.6, 0.5, 0.4])

    table = abc_comparison(holdout, risk, abc).set_index("checkpoint")

    # October: ABC flags students 1 and 2 (one missed); the model's top 2 both missed.
    assert table.loc["10-01", "abc_precision"] == 0.5
    assert table.loc["10-01", "model_precision"] == 1.0
    # February: ABC flags one student who did not miss; the model's top one missed.
    assert table.loc["02-01", "abc_precision"] == 0.0
    assert table.loc["02-01", "model_precision"] == 1.0
    assert table.loc["all", "n_flagged"] == 3
    assert table.loc["all", "model_precision"] == 1.0
    assert table.loc["all", "abc_precision"] == pytest.approx(1 / 3)
