"""KPI labels of the tiny district and the counts the summary reports."""

from __future__ import annotations

import shutil

import pytest
from snapshot_district import FIRST_AS_OF, built_tiny_district, make_config

from features import build_snapshots


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    return built_tiny_district(tmp_path_factory.getbasetemp())


def test_labels_of_every_kpi(district):
    labels = district[4]
    rows = sorted(labels.itertuples(index=False, name=None))
    assert rows == sorted(
        [
            # 2023: 0001 absent 3 of 20 days (15%), a final math mark of 50, and
            # proficient in ELA; 0008 not proficient.
            ("0001", 2023, "chronic_absence", True, "A"),
            ("0008", 2023, "chronic_absence", False, "A"),
            ("0009", 2023, "chronic_absence", False, "A"),
            ("0001", 2023, "course_failure", True, "A"),
            ("0001", 2023, "not_proficient_ela", False, "A"),
            ("0008", 2023, "not_proficient_ela", True, "A"),
            ("0009", 2023, "not_proficient_ela", False, "A"),
            # 2024: 0004 is absent exactly 10% (3 of 30 days): chronic. 0005 has 9
            # days and no label; 0006 is absent 1.9 of 20 days (9.5%).
            ("0001", 2024, "chronic_absence", False, "A"),
            ("0002", 2024, "chronic_absence", False, "B"),
            ("0003", 2024, "chronic_absence", False, "A"),
            ("0004", 2024, "chronic_absence", True, "A"),
            ("0006", 2024, "chronic_absence", False, "A"),
            ("0007", 2024, "chronic_absence", False, "B"),
            # 0001 failed ELA in term 1 but its final (term 2) marks all pass.
            ("0001", 2024, "course_failure", False, "A"),
            ("0002", 2024, "course_failure", True, "B"),
            ("0003", 2024, "course_failure", True, "A"),
            # The year's last test counts: 0001's math on 20 May, not 15 April.
            ("0001", 2024, "not_proficient_ela", True, "A"),
            ("0002", 2024, "not_proficient_ela", False, "B"),
            ("0001", 2024, "not_proficient_math", True, "A"),
        ]
    )
    assert labels.missed.dtype == bool
    assert labels.school_year.dtype == "int64"


def test_summary_counts_labels_withheld_and_leavers(district):
    summary = district[1]
    counts = {(c.school_year, c.kpi): c for c in summary.label_counts}
    chronic = counts[(2024, "chronic_absence")]
    # Seven students had a stay in 2024; 0005 was enrolled on too few days.
    assert (chronic.candidates, chronic.labelled, chronic.withheld) == (7, 6, 1)
    assert chronic.base_rate == pytest.approx(1 / 6)
    assert counts[(2024, "not_proficient_math")].withheld == 6
    # 0007 left the district in October; 0002 and 0003 left a stay but came back.
    assert dict(summary.leavers_by_year) == {2023: 0, 2024: 1}
    # 0001 on A's day off, 0002 on B's; 0003 between its two stays.
    assert summary.absences_on_days_off == 2
    assert summary.absences_outside_enrolment == 1
    assert summary.absences_without_calendar == 0


def test_describe_reports_rows_base_rates_and_policies(district):
    text = district[1].describe()
    assert "student snapshots: 7 rows, 4 students, 4 as-of dates" in text
    assert "  2023-10-03 (10-03): 4 students" in text
    assert "  2022-10-03 (10-03): 0 students" in text
    assert "  2024  chronic_absence                  6     16.7%         1" in text
    assert "withheld: chronic absence under 10 enrolled days" in text
    assert "left the district mid-year" in text and "2024: 1" in text
    assert (
        "absence records ignored: 2 on non-instructional days, 1 on days the "
        "student was not enrolled, 0 in school years without a calendar"
    ) in text
    assert "Name" not in text and "Private" not in text


def test_a_school_year_still_running_gets_no_labels(district, tmp_path):
    warehouse = district[0].state_dir / "warehouse.duckdb"
    shutil.copy(warehouse, tmp_path / "warehouse.duckdb")
    running = make_config(tmp_path)
    summary = build_snapshots(running, as_of=FIRST_AS_OF, today=FIRST_AS_OF)
    assert summary.unlabelled_years == (2024,)
    assert {count.school_year for count in summary.label_counts} == {2023}
    assert "no labels yet for school years still running: 2024" in summary.describe()
