from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from training_district import PROTECTED

from training._model import (
    REFERENCE_SIZE,
    ModelSize,
    ModelSpec,
    days_into_year,
    feature_matrix,
    fit_booster,
    record_matrix,
)
from training._splits import temporal_split
from training._training import labelled_examples


def test_same_data_and_seed_give_the_same_model(chronic):
    spec = chronic.spec
    rows = chronic.holdout.iloc[:1500]
    features = feature_matrix(rows, spec)
    missed = rows["missed"].to_numpy()

    first = fit_booster(features, missed, spec.features, [], REFERENCE_SIZE, 42, 2)
    second = fit_booster(features, missed, spec.features, [], REFERENCE_SIZE, 42, 2)

    assert first.model_to_string() == second.model_to_string()


def test_holdout_is_the_latest_year_and_calibration_folds_hold_whole_students(
    district,
):
    examples = labelled_examples(
        district["student_snapshots"], district["kpi_labels"], "chronic_absence"
    )

    split = temporal_split(examples)

    assert split.temporal
    assert split.training_years == (2022, 2023)
    assert set(examples.loc[split.holdout, "school_year"]) == {2024}
    training = examples.loc[~split.holdout].assign(fold=split.fold[~split.holdout])
    assert training.groupby("student_id")["fold"].nunique().max() == 1
    assert "evaluated on 2024, a later year (temporal holdout)" in split.describe()


def test_one_labelled_year_gives_a_split_that_says_it_is_not_temporal(district):
    examples = labelled_examples(
        district["student_snapshots"], district["kpi_labels"], "chronic_absence"
    )
    one_year = examples[examples["school_year"] == 2024]

    split = temporal_split(one_year)

    assert not split.temporal
    held_out = set(one_year.loc[split.holdout, "student_id"])
    trained = set(one_year.loc[~split.holdout, "student_id"])
    assert held_out and trained and not held_out & trained
    assert "NOT temporal" in split.describe()


def test_calibrated_risk_is_close_to_observed_rates_on_the_holdout(chronic):
    assert chronic.figure("ece") < 0.04
    mean_risk = chronic.holdout["risk"].mean()
    assert mean_risk == pytest.approx(chronic.holdout["missed"].mean(), abs=0.03)


def test_calibration_keeps_the_boosters_ranking(chronic):
    margin = chronic.holdout["margin"].to_numpy()
    risk = chronic.holdout["risk"].to_numpy()

    order = np.argsort(margin, kind="stable")

    assert np.all(np.diff(risk[order]) >= 0)


def test_protected_attributes_are_not_model_inputs_by_default(chronic):
    assert not set(PROTECTED) & set(chronic.spec.features)
    assert not set(PROTECTED) & set(chronic.booster.feature_name())
    assert chronic.spec.protected == []


def test_chosen_size_is_no_worse_than_the_reference_beyond_the_tolerance(chronic):
    size = chronic.spec.size

    assert size.shap_cost < REFERENCE_SIZE.shap_cost
    assert chronic.figure("roc_auc") >= chronic.reference_auc - 0.005
    table = chronic.fitted.size_table
    assert (
        table["oof_auc"].max()
        - table.loc[
            (table["n_trees"] == size.n_trees)
            & (table["num_leaves"] == size.num_leaves),
            "oof_auc",
        ].item()
        <= 0.005
    )


def test_model_beats_the_abc_flags_at_the_same_number_flagged(chronic):
    abc = chronic.abc.set_index("checkpoint")

    assert (abc["model_precision"] > abc["abc_precision"]).all()


def test_days_into_year_counts_from_the_configured_start():
    dates = pd.Series(pd.to_datetime(["2023-10-01", "2024-02-01", "2023-08-01"]))

    np.testing.assert_array_equal(days_into_year(dates, "08-01"), [61, 184, 0])


def test_spec_survives_json_with_missing_medians(chronic):
    spec = chronic.spec

    again = ModelSpec.from_json(spec.to_json())

    assert again.features == spec.features
    assert again.calibration == spec.calibration
    assert again.size == spec.size
    medians = pd.DataFrame(again.references)
    pd.testing.assert_frame_equal(
        medians, pd.DataFrame(spec.references), check_like=True
    )


def test_a_snapshot_without_a_model_input_is_refused_by_name(chronic):
    rows = chronic.holdout.drop(columns=["attendance_rate"])

    with pytest.raises(ValueError) as error:
        feature_matrix(rows, chronic.spec)

    assert str(error.value) == (
        "student_snapshots: missing column(s) attendance_rate that the "
        "chronic_absence model reads; expected every feature of its spec"
    )


def test_model_size_reads_as_trees_leaves_and_depth():
    assert ModelSize(100, 15, 4).label() == "100 trees x 15 leaves (depth <= 4)"
    assert ModelSize(50, 7, 3).shap_cost == 50 * 7 * 9


def test_records_give_the_matrix_their_frame_gives(chronic):
    rows = chronic.holdout.iloc[:300]

    from_records = record_matrix(rows.to_dict("records"), chronic.spec)

    np.testing.assert_array_equal(from_records, feature_matrix(rows, chronic.spec))


def test_record_matrix_codes_categories_and_reads_absent_values_as_missing(chronic):
    spec = replace(
        chronic.spec,
        features=["gender", "grade", "days_into_year"],
        categories={"gender": ["F", "M"]},
    )
    records = [
        {"gender": "M", "grade": 3, "as_of_date": "2023-10-01"},
        {"gender": None, "grade": None, "as_of_date": "2024-02-01"},
        {"gender": "X", "as_of_date": "2023-08-01"},
    ]

    np.testing.assert_array_equal(
        record_matrix(records, spec),
        [[1, 3, 61], [np.nan, np.nan, 184], [np.nan, np.nan, 0]],
    )


def test_record_matrix_names_a_column_that_is_not_a_number(chronic):
    records = [{"attendance_rate": "high", "as_of_date": "2024-02-01"}]

    with pytest.raises(ValueError) as error:
        record_matrix(records, chronic.spec)

    assert str(error.value) == (
        "records: 'attendance_rate' must be a number or missing in every record"
    )
