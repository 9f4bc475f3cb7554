"""Checkpoints that never get a snapshot are said, not skipped in silence."""

import datetime as dt
import logging

from features._calendar import checkpoints_with_school_days
from ontrack.config import DistrictConfig


def test_a_summer_checkpoint_is_skipped_with_a_warning_naming_it(caplog):
    # School ends 2023-06-09 and 2024-06-07: 07-15 is inside each school year
    # (it starts 08-01) but after its last school day, so it is never built.
    config = DistrictConfig.model_validate(
        {
            "district": {"name": "Tiny", "school_year_start": "08-01"},
            "calendar": {"checkpoints": ["07-15", "04-01"]},
            "kpis": [
                {
                    "name": "chronic_absence",
                    "label": "Chronically absent",
                    "definition": "chronic_absence",
                    "district_target": 0.2,
                }
            ],
        }
    )
    last_days = {2023: dt.date(2023, 6, 9), 2024: dt.date(2024, 6, 7)}

    with caplog.at_level(logging.WARNING, logger="features._calendar"):
        as_of_dates = checkpoints_with_school_days(config, last_days)

    assert as_of_dates == [dt.date(2023, 4, 1), dt.date(2024, 4, 1)]
    assert caplog.messages == [
        "[calendar] checkpoints 07-15: after the last school day of every school "
        "year in the warehouse (2023: 2023-06-09, 2024: 2024-06-07); no snapshots "
        "are built for them"
    ]


def test_checkpoints_that_are_built_in_some_year_raise_no_warning(caplog):
    config = DistrictConfig.model_validate(
        {
            "district": {"name": "Tiny"},
            "calendar": {"checkpoints": ["10-01", "04-01"]},
            "kpis": [
                {
                    "name": "chronic_absence",
                    "label": "Chronically absent",
                    "definition": "chronic_absence",
                    "district_target": 0.2,
                }
            ],
        }
    )
    # The running year 2024 has not reached 04-01; 2023 had it.
    last_days = {2023: dt.date(2023, 6, 9), 2024: dt.date(2023, 12, 15)}

    with caplog.at_level(logging.WARNING, logger="features._calendar"):
        as_of_dates = checkpoints_with_school_days(config, last_days)

    assert as_of_dates == [
        dt.date(2022, 10, 1),
        dt.date(2023, 4, 1),
        dt.date(2023, 10, 1),
    ]
    assert caplog.messages == []
