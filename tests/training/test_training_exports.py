import training


def test_public_surface_is_pinned():
    assert sorted(training.__all__) == [
        "CHAMPION_RULE",
        "CrossValidation",
        "ModelSpec",
        "ScoredRows",
        "Scorer",
        "ScoringSummary",
        "SnapshotError",
        "TrainingDataError",
        "TrainingSummary",
        "cross_validate",
        "cross_validate_table",
        "describe_cross_validation",
        "load_champions",
        "poisson_binomial_pmf",
        "project",
        "score_students",
        "train_models",
    ]
    assert all(hasattr(training, name) for name in training.__all__)


def test_errors_are_value_errors_a_caller_already_catches():
    assert issubclass(training.SnapshotError, ValueError)
    assert issubclass(training.TrainingDataError, ValueError)
