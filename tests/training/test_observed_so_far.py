import math

import pandas as pd

from ontrack.config import KPI
from training._jobs import observed_so_far


def test_chronic_so_far_counts_a_tie_at_the_threshold_as_the_labels_do():
    # 0.1 * 30 is 3.0000000000000004 in floating point: 3 of 30 days is a tie.
    kpi = KPI(
        name="chronic_absence",
        label="Chronically absent",
        definition="chronic_absence",
        district_target=0.2,
        min_enrolled_days=10,
    )
    rows = pd.DataFrame(
        {
            "days_absent": [3.0, 2.5, 3.0, 2.0],
            "days_enrolled": [30.0, 30.0, 9.0, 20.0],
        }
    )

    assert observed_so_far(rows, kpi).tolist() == [1.0, 0.0, 0.0, 1.0]


def test_other_kpis_are_not_known_so_far():
    kpi = KPI(
        name="course_failure",
        label="Failed a core course",
        definition="course_failure",
        district_target=0.2,
    )
    rows = pd.DataFrame({"days_absent": [3.0], "days_enrolled": [30.0]})

    assert math.isnan(observed_so_far(rows, kpi)[0])
