import numpy as np
import pandas as pd
import pytest
from training_district import PROTECTED

from training import Scorer
from training._catalog import DAYS_INTO_YEAR, FeatureSpec
from training._drivers import by_domain, contributions, driver_eligible, top_drivers
from training._model import feature_matrix
from training._training import train_kpi


def test_contributions_plus_base_value_equal_the_raw_margin(chronic):
    features = feature_matrix(chronic.holdout, chronic.spec)

    contrib = contributions(chronic.booster, features, n_jobs=1)
    margin = chronic.booster.predict(features, raw_score=True)

    np.testing.assert_allclose(contrib.sum(axis=1), margin, rtol=0, atol=1e-9)
    np.testing.assert_allclose(margin, chronic.holdout["margin"], rtol=0, atol=1e-12)


def test_domains_add_up_to_the_feature_contributions(chronic):
    features = feature_matrix(chronic.holdout.iloc[:200], chronic.spec)
    contrib = contributions(chronic.booster, features, n_jobs=1)

    domains = by_domain(contrib, chronic.spec)

    np.testing.assert_allclose(
        domains.sum(axis=1), contrib[:, :-1].sum(axis=1), atol=1e-12
    )
    assert set(domains.columns) <= {
        "attendance",
        "behaviour",
        "course_performance",
        "assessment",
        "mobility",
        "context",
    }


def test_top_drivers_are_the_largest_positive_eligible_contributions():
    contrib = np.array(
        [
            [0.5, 3.0, 0.2, -1.0, 0.0],
            [-0.1, -0.2, 0.3, 0.0, 0.0],
        ]
    )
    # The second feature is protected: never a driver, however large.
    eligible = np.array([True, False, True, True])

    top = top_drivers(contrib, eligible, k=3)

    np.testing.assert_array_equal(top, [[0, 2, -1], [2, -1, -1]])


@pytest.mark.slow
def test_protected_attributes_are_never_drivers_even_when_they_are_inputs(
    district, settings
):
    from dataclasses import replace

    from training._catalog import feature_catalog, model_inputs

    students = district["student_snapshots"]
    opted_in = replace(settings, use_protected=True)
    inputs = model_inputs(
        feature_catalog(), list(students.columns), True, list(PROTECTED)
    )
    result = train_kpi(
        "chronic_absence",
        students,
        district["school_snapshots"],
        district["kpi_labels"],
        inputs,
        opted_in,
    )
    scorer = Scorer(result.booster, result.spec, "1")

    scored = scorer.score(result.holdout)

    assert set(result.spec.protected) == set(PROTECTED)
    assert set(PROTECTED) <= set(result.booster.feature_name())
    assert not driver_eligible(result.spec)[
        [result.spec.features.index(name) for name in PROTECTED]
    ].any()
    shown = pd.unique(scored[["driver_1_feature", "driver_2_feature"]].values.ravel())
    assert not set(PROTECTED) & set(shown)
    assert DAYS_INTO_YEAR not in set(shown)


def test_a_driver_reads_with_the_students_value_and_the_district_median():
    spec = FeatureSpec(
        "attendance_rate",
        "attendance",
        "attended {value} of school days so far (district median {reference})",
        "rate",
    )

    assert spec.phrase(0.84, 0.95) == (
        "attended 84% of school days so far (district median 95%)"
    )
    assert spec.phrase(float("nan"), 0.95) == "no attendance rate on record yet"


@pytest.mark.parametrize("slot", [1, 2, 3])
def test_every_scored_driver_is_a_risk_raising_feature_in_plain_words(chronic, slot):
    scorer = Scorer(chronic.booster, chronic.spec, "7")

    scored = scorer.score(chronic.holdout.iloc[:300])

    named = scored[scored[f"driver_{slot}_feature"] != ""]
    assert len(named) > 0
    assert (named[f"driver_{slot}"].str.len() > 0).all()
    assert (named[f"driver_{slot}_domain"] != "").all()
    assert not set(named[f"driver_{slot}_feature"]) & set(PROTECTED)
