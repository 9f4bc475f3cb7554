"""Stratified k-fold cross-validation on the UCI maths table (Cortez and Silva 2008,
UCI Machine Learning Repository data set 320, CC BY 4.0): the period grades carry
most of what predicts the final one, and folds keep the share of failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from features import read_student_table
from ontrack.cli import app
from training import cross_validate_table, describe_cross_validation

REPO = Path(__file__).resolve().parents[2]
UCI = REPO.parent / "shared" / "data" / "uci-student-performance"
MATHS = UCI / "student-mat.csv"
MAPPING = REPO / "configs" / "uci-math.mapping.toml"

needs_uci = pytest.mark.skipif(not UCI.is_dir(), reason=f"reference data not at {UCI}")


@pytest.fixture(scope="module")
def maths():
    """Both ends of the comparison: with G1 and G2, and with neither (as mapped)."""
    results = {}
    for name, include in (("with G1, G2", ["G1", "G2"]), ("as mapped", [])):
        table = read_student_table(MATHS, MAPPING, include=include)
        published = table.mapping.published_for(include)
        results[name] = cross_validate_table(
            table,
            "course_failure",
            setting=name,
            folds=10,
            seed=42,
            published=(published.accuracy, published.source),
        )
    return results


@needs_uci
@pytest.mark.slow
def test_the_period_grades_make_the_model_accurate(maths):
    with_grades, without = maths["with G1, G2"], maths["as mapped"]
    assert with_grades.mean("accuracy") >= 0.85
    assert with_grades.mean("accuracy") > without.mean("accuracy")
    assert with_grades.mean("roc_auc") > without.mean("roc_auc")
    # Without the grades the model still ranks better than chance.
    assert without.mean("roc_auc") > 0.5


@needs_uci
@pytest.mark.slow
def test_folds_are_stratified_and_cover_every_student_once(maths):
    folds = maths["as mapped"].folds
    assert folds["n_students"].sum() == 395
    # 130 of 395 students failed: 13 in each of the 10 folds.
    assert folds["n_missed"].tolist() == [13] * 10
    assert maths["as mapped"].majority_accuracy == pytest.approx(265 / 395)


@needs_uci
@pytest.mark.slow
def test_the_table_sets_ours_next_to_the_published_figures(maths):
    text = describe_cross_validation([maths["with G1, G2"], maths["as mapped"]])
    lines = text.splitlines()
    assert lines[1] == "majority-class accuracy: 67.1%"
    assert lines[4].split()[-1] == "91.9%"
    assert lines[5].split()[-1] == "70.6%"
    assert lines[-1] == "published: Cortez and Silva 2008"


@needs_uci
def test_crossval_refuses_an_include_the_mapping_does_not_exclude():
    result = CliRunner().invoke(
        app, ["crossval", str(MATHS), "--mapping", str(MAPPING), "--include", "age"]
    )
    assert result.exit_code == 1
    assert (
        f"{MAPPING}: cannot include 'age': it is not in [features] exclude "
        "(excluded: G1, G2)" in " ".join(result.output.split())
    )


@needs_uci
def test_too_few_students_on_one_side_for_the_folds_is_refused():
    table = read_student_table(MATHS, MAPPING)
    few = type(table)(
        table.features.iloc[:40],
        table.labels.iloc[:40],
        table.groups.iloc[:40],
        table.quarantine,
        table.notes,
        table.mapping,
    )
    n_missed = int(few.labels["missed"].sum())
    with pytest.raises(ValueError) as error:
        cross_validate_table(few, "course_failure", setting="few", folds=30)
    assert str(error.value) == (
        f"kpi_labels: course_failure: {n_missed} of 40 students missed and "
        f"{40 - n_missed} met the standard; 30-fold stratified cross-validation "
        "needs at least 30 of each"
    )
