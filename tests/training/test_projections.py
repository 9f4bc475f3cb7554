import itertools
import math

import numpy as np
import pandas as pd
import pytest

from training import poisson_binomial_pmf, project
from training._projections import miss_count, school_projections


def _brute_force(risk):
    pmf = np.zeros(len(risk) + 1)
    for outcome in itertools.product((0, 1), repeat=len(risk)):
        chosen = np.array(outcome, dtype=bool)
        pmf[chosen.sum()] += np.prod(np.where(chosen, risk, 1 - risk))
    return pmf


def test_poisson_binomial_matches_enumeration_of_ten_students():
    risk = np.random.default_rng(0).random(10)

    np.testing.assert_allclose(
        poisson_binomial_pmf(risk), _brute_force(risk), atol=1e-15
    )


def test_fft_merge_matches_the_exact_recursion_for_thousands_of_students():
    risk = np.random.default_rng(1).random(3000) * 0.4
    exact = np.ones(1)
    for p in risk:
        exact = np.append(exact * (1 - p), 0) + np.append(0, exact * p)

    np.testing.assert_allclose(poisson_binomial_pmf(risk), exact, atol=1e-13)


def test_distribution_has_the_mean_of_the_summed_risks():
    risk = np.random.default_rng(2).random(777)

    pmf = poisson_binomial_pmf(risk)

    assert pmf.sum() == pytest.approx(1)
    assert pmf @ np.arange(pmf.size) == pytest.approx(risk.sum())


def test_missing_the_target_means_a_rate_strictly_above_it():
    # 0.22 x 100 is 22.000000000000004 in floating point: 22 students still meet it.
    assert miss_count(0.22, 100) == 23
    assert miss_count(0.15, 20) == 4
    assert miss_count(0.5, 3) == 2


def test_certain_outcomes_give_certain_projections():
    projection = project(np.array([1.0, 1.0, 0.0, 0.0]), target=0.5)

    assert projection == {
        "n_students": 4,
        "expected_rate": 0.5,
        "rate_low": 0.5,
        "rate_high": 0.5,
        "target": 0.5,
        "p_miss_target": 0.0,
    }


def test_p_miss_target_is_the_upper_tail_of_the_enumeration():
    risk = np.random.default_rng(3).random(10)

    projection = project(risk, target=0.3)

    assert projection["p_miss_target"] == pytest.approx(_brute_force(risk)[4:].sum())


def test_school_rows_and_a_district_roll_up():
    student_risks = pd.DataFrame(
        {
            "school_id": ["0001", "0001", "0002"],
            "kpi": "chronic_absence",
            "risk": [1.0, 0.0, 1.0],
            "observed_so_far": [1.0, 0.0, math.nan],
        }
    )
    targets = {
        ("0001", "chronic_absence"): 0.5,
        ("0002", "chronic_absence"): 0.5,
        ("district", "chronic_absence"): 0.6,
    }

    rows = school_projections(student_risks, targets).set_index("school_id")

    assert list(rows.index) == ["0001", "0002", "district"]
    assert rows.loc["0001", "p_miss_target"] == 0.0
    assert rows.loc["0002", "p_miss_target"] == 1.0
    assert rows.loc["district", "expected_rate"] == pytest.approx(2 / 3)
    assert rows.loc["district", "p_miss_target"] == 1.0
    assert rows.loc["0001", "observed_rate_so_far"] == 0.5
    assert math.isnan(rows.loc["0002", "observed_rate_so_far"])
