"""Counts in the training report read as whole numbers, figures with 3 decimals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training._report import _markdown, _records, _table

METRICS = pd.DataFrame(
    {
        "scorer": ["lightgbm", "abc_flags"],
        "n": [47807.0, 47807.0],
        "n_flagged": [5120.0, np.nan],
        "roc_auc": [0.81234, 0.5],
    }
)


def test_html_table_shows_counts_whole_and_figures_to_three_decimals():
    html = _table(METRICS)

    assert "<td>47807</td>" in html
    assert "<td>5120</td>" in html
    assert "<td>0.812</td>" in html
    assert "47807.000" not in html


def test_json_records_and_model_card_hold_whole_counts():
    records = _records(METRICS)

    # 47807 == 47807.0 in Python: the type is what the JSON shows.
    assert [type(row["n"]) for row in records] == [int, int]
    assert records == [
        {"scorer": "lightgbm", "n": 47807, "n_flagged": 5120, "roc_auc": 0.81234},
        {"scorer": "abc_flags", "n": 47807, "n_flagged": None, "roc_auc": 0.5},
    ]
    assert _markdown(METRICS[["scorer", "n", "roc_auc"]]).splitlines()[2] == (
        "| lightgbm | 47807 | 0.812 |"
    )
