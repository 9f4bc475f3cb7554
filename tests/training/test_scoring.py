from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from training import Scorer


@pytest.fixture(scope="module")
def scorer(chronic):
    return Scorer(chronic.booster, chronic.spec, "3", tier_high=0.5, tier_moderate=0.25)


def test_scored_risk_is_the_calibrated_holdout_risk(chronic, scorer):
    scored = scorer.score(chronic.holdout)

    np.testing.assert_allclose(scored["risk"], chronic.holdout["risk"], atol=1e-12)
    assert (scored["model_version"] == "3").all()
    assert (scored["kpi"] == "chronic_absence").all()
    assert list(scored["student_id"]) == list(chronic.holdout["student_id"])


def test_tiers_follow_the_configured_cut_offs_inclusively(scorer):
    risk = np.array([0.5, 0.4999, 0.25, 0.2499])

    assert list(scorer.tier(risk)) == ["high", "moderate", "moderate", "low"]


def test_one_row_scores_exactly_as_it_does_in_a_batch(chronic, scorer):
    batch = scorer.score(chronic.holdout.iloc[:50])

    alone = scorer.score(chronic.holdout.iloc[[17]])

    pd.testing.assert_frame_equal(
        alone.reset_index(drop=True), batch.iloc[[17]].reset_index(drop=True)
    )


def test_flagged_mode_gives_drivers_only_outside_the_low_tier(chronic, scorer):
    scored = scorer.score(chronic.holdout, drivers="flagged")

    low = scored["tier"] == "low"
    assert (scored.loc[low, "driver_1"] == "").all()
    everyone = scorer.score(chronic.holdout)
    pd.testing.assert_frame_equal(scored[~low], everyone[~low])


def test_explanation_adds_up_to_the_margin_by_feature_and_by_domain(chronic, scorer):
    row = chronic.holdout.iloc[5]

    explanation = scorer.explain(row.to_dict())

    by_feature = sum(item["contribution"] for item in explanation["by_feature"])
    by_domain = sum(explanation["by_domain"].values())
    assert explanation["base_value"] + by_feature == pytest.approx(
        explanation["margin"], abs=1e-9
    )
    assert by_domain == pytest.approx(by_feature, abs=1e-9)
    assert explanation["margin"] == pytest.approx(row["margin"], abs=1e-9)
    assert explanation["risk"] == pytest.approx(row["risk"], abs=1e-12)
    assert explanation["model_version"] == "3"


def test_explain_refuses_more_than_one_row(chronic, scorer):
    with pytest.raises(
        ValueError, match="explain takes one student snapshot row, got 2"
    ):
        scorer.explain(chronic.holdout.iloc[:2])


def test_a_kpi_applies_to_the_grades_it_had_labels_for(chronic):
    spec = replace(chronic.spec, grades=[3.0, 4.0])
    scorer = Scorer(chronic.booster, spec, "3")
    rows = pd.DataFrame({"grade": [2.0, 3.0, np.nan, 4.0]})

    assert scorer.applies(rows).tolist() == [False, True, True, True]
    assert scorer.applies_to_grades([2, 3, None, 4.0]).tolist() == [
        False,
        True,
        True,
        True,
    ]
    assert chronic.spec.grades == [float(grade) for grade in range(3, 11)]


def test_no_rows_score_to_an_empty_frame_with_every_column(chronic, scorer):
    scored = scorer.score(chronic.holdout.iloc[:0])

    assert scored.empty
    assert list(scored.columns) == list(scorer.score(chronic.holdout.iloc[:1]).columns)


def test_records_score_exactly_as_their_frame_does(chronic, scorer):
    rows = chronic.holdout.iloc[:200]
    frame = scorer.score(rows)

    scored_rows = scorer.score_records(rows.to_dict("records"))

    np.testing.assert_array_equal(scored_rows.risk, frame["risk"])
    assert scored_rows.tier.tolist() == frame["tier"].tolist()
    for slot in (1, 2, 3):
        column = slot - 1
        assert scored_rows.driver_texts[:, column].tolist() == (
            frame[f"driver_{slot}"].tolist()
        )
        assert scored_rows.driver_features[:, column].tolist() == (
            frame[f"driver_{slot}_feature"].tolist()
        )
        assert scored_rows.driver_domains[:, column].tolist() == (
            frame[f"driver_{slot}_domain"].tolist()
        )


def test_a_record_explains_exactly_as_its_frame_row_does(chronic, scorer):
    rows = chronic.holdout.iloc[[5]]

    assert scorer.explain(rows.iloc[0].to_dict()) == scorer.explain(rows)
