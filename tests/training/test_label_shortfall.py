"""The minimum number of labels a KPI needs before a model is trained and judged."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training._splits import Split
from training._training import label_shortfall


def _examples(missed_training: list[int], missed_holdout: list[int]) -> tuple:
    """Two checkpoints per student; one year, students split as given."""
    missed = missed_training + missed_holdout
    students = pd.DataFrame(
        {
            "student_id": [f"s{i}" for i in range(len(missed))],
            "school_year": 2024,
            "missed": missed,
        }
    )
    examples = pd.concat([students, students], ignore_index=True)
    holdout = np.array(
        ([False] * len(missed_training) + [True] * len(missed_holdout)) * 2
    )
    split = Split(holdout, np.where(holdout, -1, 0), False, (2024,), 2024)
    return examples, split


def test_enough_labels_of_each_outcome_on_each_side_pass():
    examples, split = _examples([1] * 10 + [0] * 30, [1] * 10 + [0] * 10)

    assert label_shortfall(examples, split) is None


def test_too_few_students_counts_each_student_once_not_each_checkpoint():
    # 49 students at 2 checkpoints: 98 rows, still 49 labelled students.
    examples, split = _examples([1] * 10 + [0] * 19, [1] * 10 + [0] * 10)

    assert label_shortfall(examples, split) == (
        "49 labelled students (at least 50 needed)"
    )


def test_too_few_of_one_outcome_in_the_holdout_is_named():
    examples, split = _examples([1] * 20 + [0] * 30, [1] * 4 + [0] * 20)

    assert label_shortfall(examples, split) == (
        "4 labelled students who missed in the holdout (at least 10 of each "
        "outcome needed in training and holdout)"
    )


def test_too_few_who_did_not_miss_in_training_is_named():
    examples, split = _examples([1] * 40 + [0] * 9, [1] * 10 + [0] * 10)

    assert label_shortfall(examples, split) == (
        "9 labelled students who did not miss in the training rows (at least 10 of "
        "each outcome needed in training and holdout)"
    )
