"""Student and school snapshots of the tiny district, against values worked by hand.

The district is described in ``snapshot_district``; each expected value is worked out
in the comment above it.
"""

from __future__ import annotations

import datetime as dt
import math

import ibis
import pandas as pd
import pytest
from snapshot_district import (
    FIRST_AS_OF,
    SECOND_AS_OF,
    built_tiny_district,
    make_config,
    tiny_district,
    write_district,
)

from features import (
    FEATURE_CATALOG,
    build_snapshots,
    duckdb_stage,
    student_snapshots,
)
from features._indicators import STUDENT_SNAPSHOT_COLUMNS, WAREHOUSE_TABLES
from features._snapshots import WarehouseError


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    return built_tiny_district(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def students(district):
    frame = district[2]
    return {
        (row.student_id, row.as_of_date): row._asdict()
        for row in frame.itertuples(index=False)
    }


def test_one_row_per_enrolled_student_and_as_of_date(district):
    snapshots = district[2]
    rows = snapshots.groupby("as_of_date")["student_id"].apply(sorted).to_dict()
    # 0007 left on 31 October; the 2023 checkpoints precede its four weeks of school.
    assert rows == {
        FIRST_AS_OF: ["0001", "0002", "0003", "0007"],
        SECOND_AS_OF: ["0001", "0002", "0003"],
    }
    assert list(snapshots.columns) == list(STUDENT_SNAPSHOT_COLUMNS)
    assert set(snapshots.checkpoint) == {"10-03", "02-01"}


def test_attendance_of_a_student_with_2_5_days_absent_in_20(students):
    row = students[("0001", FIRST_AS_OF)]
    # A taught 4 September to 2 October minus the 15th: 20 days. Absent 1 + 1 + 0.5;
    # the absence on the 15th (a day off) and on 3 October (the as-of date) are not
    # counted.
    assert row["days_enrolled"] == 20
    assert row["days_absent"] == 2.5
    assert row["attendance_rate"] == 0.875
    assert row["unexcused_share"] == pytest.approx(1.5 / 2.5)
    assert row["tardies"] == 1
    # 5 and 6 September are consecutive whole days; the 12th was half a day.
    assert row["longest_absence_streak"] == 2
    # All 20 days are the recent window, so there is no rate before it to compare.
    assert row["attendance_rate_last_20"] == 0.875
    assert math.isnan(row["attendance_trend"])
    # 2023: absent 3 of 20 days, 15% >= 10%.
    assert row["prior_attendance_rate"] == pytest.approx(0.85)
    assert row["prior_chronic_absence"] == 1.0


def test_attendance_trend_compares_the_last_20_days_with_the_rest(students):
    row = students[("0001", SECOND_AS_OF)]
    # 4 September to 31 January: 108 weekdays minus the 15th = 107 days. Absent 2.5
    # + 1 (3 October) + 1 (6 November) = 4.5, none in the last 20 school days
    # (4 to 31 January), so the trend is 1 - (1 - 4.5 / 87) = 4.5 / 87.
    assert row["days_enrolled"] == 107
    assert row["days_absent"] == 4.5
    assert row["attendance_rate_last_20"] == 1.0
    assert row["attendance_trend"] == pytest.approx(4.5 / 87)


def test_mid_year_transfer_counts_the_shared_day_once(students):
    row = students[("0002", FIRST_AS_OF)]
    # A from 4 to 20 September (12 days without the 15th), B from the 21st (the 20th
    # is already counted) to 2 October: 21, 25-29 and 2 October = 7 days (B is
    # closed on the 22nd, when the student's absence is ignored).
    assert row["days_enrolled"] == 19
    assert row["days_absent"] == 1
    assert row["attendance_rate"] == pytest.approx(18 / 19)
    assert row["school_id"] == "B"
    assert row["schools_this_year"] == 2
    assert row["days_since_entry"] == 13
    assert row["new_to_district"] == 1.0
    assert row["schools_last_year"] == 0
    assert math.isnan(row["prior_attendance_rate"])


def test_exit_and_reentry_skip_the_days_away(students):
    row = students[("0003", FIRST_AS_OF)]
    # 4-8 September (5 days) and 18 September to 2 October (11 days); the absence
    # on the 12th falls between the stays.
    assert row["days_enrolled"] == 16
    assert row["days_absent"] == 2
    assert row["attendance_rate"] == 0.875
    assert row["unexcused_share"] == 0.5
    # Friday 22 and Monday 25 September are consecutive school days.
    assert row["longest_absence_streak"] == 2
    assert row["schools_this_year"] == 1
    assert row["days_since_entry"] == 15


def test_behaviour_counts_incidents_before_the_as_of_date(students):
    row = students[("0001", FIRST_AS_OF)]
    # Three incidents in September; the one on 3 October is on the as-of date.
    assert (row["incidents"], row["in_school_suspensions"]) == (3, 1)
    assert (row["out_of_school_suspensions"], row["days_removed"]) == (1, 3.0)
    assert (row["prior_incidents"], row["prior_suspensions"]) == (1, 1)


def test_course_marks_count_from_the_end_of_their_term(students):
    row = students[("0001", FIRST_AS_OF)]
    # Term 1 ended 29 September: math 70, ELA 60, science 90, art 50.
    assert row["failing_marks"] == 2
    assert row["mean_core_mark"] == pytest.approx((70 + 60 + 90) / 3)
    assert row["credit_ratio"] == 0.5
    assert row["latest_core_mark"] == 60
    assert row["prior_failures"] == 1
    # By 1 February term 2 has ended too (core 80, 70, 85): its lowest, not
    # term 1's 60, is the latest core mark; the art mark of 95 is not core.
    assert students[("0001", SECOND_AS_OF)]["latest_core_mark"] == 70
    # 0003's mark of 40 belongs to a term that ended on 6 October.
    early, late = students[("0003", FIRST_AS_OF)], students[("0003", SECOND_AS_OF)]
    assert (early["failing_marks"], early["marks_so_far"]) == (0, 0)
    assert math.isnan(early["mean_core_mark"]) and math.isnan(early["credit_ratio"])
    assert (late["failing_marks"], late["latest_core_mark"]) == (1, 40)


def test_latest_prior_test_is_standardised_within_grade_and_year(students):
    row = students[("0001", FIRST_AS_OF)]
    # Grade 7 ELA in 2023: 300, 320, 340 -> mean 320, sample SD 20.
    assert row["ela_scale_z"] == pytest.approx(1.0)
    assert row["ela_proficient"] == 1.0
    assert math.isnan(row["math_scale_z"]) and math.isnan(row["math_proficient"])


def test_mobility_context_and_protected_attributes(students):
    first, second = students[("0001", FIRST_AS_OF)], students[("0002", FIRST_AS_OF)]
    assert (first["grade"], first["days_since_entry"]) == (8, 29)
    assert (first["new_to_district"], first["schools_last_year"]) == (0.0, 1)
    # Tutoring 10 September to 2 October (the day before): current. 0002's
    # mentoring begins on the as-of date: not yet.
    assert (first["current_programs"], first["in_tutoring"]) == (1, 1.0)
    assert (second["current_programs"], second["in_mentoring"]) == (0, 0.0)
    # Born 1 June 2010: 13 on 1 September 2023, usual for grade 8. Born 1 May 2009:
    # 14, a year older than usual.
    assert (first["over_age"], second["over_age"]) == (0.0, 1.0)
    assert (first["race_ethnicity"], first["gender"]) == ("white", "female")
    assert (first["economically_disadvantaged"], first["disability"]) == (1.0, 0.0)


def test_abc_flags_ride_along(students):
    row = students[("0001", FIRST_AS_OF)]
    # 0.875 < 0.88; 3 incidents > 2; latest core mark 60 < 65.
    assert (row["abc_attendance"], row["abc_behaviour"], row["abc_course"]) == (1, 2, 2)
    assert row["abc_any_at_risk"] == 1.0
    quiet = students[("0007", FIRST_AS_OF)]
    assert (quiet["abc_attendance"], quiet["abc_behaviour"]) == (0, 0)
    assert (quiet["abc_course"], quiet["abc_any_at_risk"]) == (0, 0.0)


def test_school_snapshots(district):
    schools = district[3].set_index(["school_id", "as_of_date"])
    a, b = schools.loc[("A", FIRST_AS_OF)], schools.loc[("B", FIRST_AS_OF)]
    # A: 0001 (2.5 of 20) and 0003 (2 of 16), both at 12.5%.
    assert a["enrollment"] == 2
    assert a["school_attendance_rate"] == pytest.approx(1 - 4.5 / 36)
    assert (a["school_chronic_rate_so_far"], a["school_incident_rate"]) == (1.0, 1.0)
    assert a["school_failing_rate"] == 1.0
    # 2023 at A: 0001 chronically absent and failing, 0008 not proficient in ELA.
    assert a["school_prior_chronic_absence_rate"] == pytest.approx(1 / 3)
    assert a["school_prior_course_failure_rate"] == 1.0
    assert a["school_prior_not_proficient_ela_rate"] == pytest.approx(1 / 3)
    assert math.isnan(a["school_prior_not_proficient_math_rate"])
    # B: 0002 (1 of 19) and 0007 (0 of 20).
    assert b["school_attendance_rate"] == pytest.approx(1 - 1 / 39)
    assert (b["school_chronic_rate_so_far"], b["school_incident_rate"]) == (0.0, 0.0)
    assert math.isnan(b["school_prior_chronic_absence_rate"])


def test_rates_stay_in_range_and_features_match_the_catalog(district):
    snapshots = district[2]
    for name, feature in FEATURE_CATALOG.items():
        assert name in snapshots.columns
        if feature.kind == "rate" and name != "attendance_trend":
            values = snapshots[name].dropna()
            assert values.between(0, 1).all(), name
    protected = {name for name, f in FEATURE_CATALOG.items() if f.protected}
    assert protected == {
        "race_ethnicity",
        "gender",
        "disability",
        "english_learner",
        "economically_disadvantaged",
    }
    assert not {"birth_date", "first_name", "last_name"} & set(snapshots.columns)


def test_feature_describes_itself_in_plain_words():
    rate = FEATURE_CATALOG["attendance_rate"]
    assert rate.describe(0.84, 0.95) == (
        "attended 84% of school days so far (district median 95%)"
    )
    assert rate.raises_risk == "lower"
    assert FEATURE_CATALOG["in_tutoring"].describe(1.0) == "in tutoring now: yes"
    # A median of counts can fall halfway; a student's own count never does.
    assert FEATURE_CATALOG["tardies"].describe(3.0, 4.5) == (
        "late 3 times so far (district median 4.5)"
    )
    assert FEATURE_CATALOG["ela_scale_z"].describe(float("nan"), 0.0) == (
        "last ELA test score unknown (district median +0.0 SD)"
    )


def test_ad_hoc_dates_match_the_checkpoint_run_and_the_first_year(district):
    config = district[0]
    con = ibis.duckdb.connect(config.state_dir / "warehouse.duckdb", read_only=True)
    tables = {name: con.table(name) for name in WAREHOUSE_TABLES}
    in_first_year = dt.date(2023, 5, 15)
    ad_hoc = con.to_pandas(
        student_snapshots(
            tables, [FIRST_AS_OF, in_first_year], config, stage=duckdb_stage(con)
        )
    )
    con.disconnect()
    ad_hoc["as_of_date"] = ad_hoc.as_of_date.dt.date
    # The warehouse's first school year: nobody's previous year is known.
    first_year = ad_hoc[ad_hoc.as_of_date == in_first_year].set_index("student_id")
    assert sorted(first_year.index) == ["0001", "0008", "0009"]
    assert set(first_year.checkpoint) == {""}
    assert first_year.new_to_district.isna().all()
    assert first_year.schools_last_year.isna().all()
    # 1 to 12 May at A: 10 days, absent 2, 3 and 4 May.
    assert first_year.loc["0001", "days_enrolled"] == 10
    assert first_year.loc["0001", "attendance_rate"] == 0.7
    assert first_year.loc["0001", "longest_absence_streak"] == 3
    checkpoint_run = district[2]
    expected = checkpoint_run[checkpoint_run.as_of_date == FIRST_AS_OF]
    pd.testing.assert_frame_equal(
        _sorted(ad_hoc[ad_hoc.as_of_date == FIRST_AS_OF]),
        _sorted(expected),
        check_dtype=False,
    )


class _PySparkOptions(ibis.config.Config):
    """What the PySpark compiler reads of the options pyspark itself would register."""

    treat_nan_as_null: bool = False


@pytest.mark.slow
def test_definitions_compile_for_pyspark(district, monkeypatch):
    monkeypatch.setattr(ibis.options, "pyspark", _PySparkOptions())
    config = district[0]
    con = ibis.duckdb.connect(config.state_dir / "warehouse.duckdb", read_only=True)
    tables = {name: con.table(name) for name in WAREHOUSE_TABLES}
    sql = ibis.to_sql(
        student_snapshots(tables, [FIRST_AS_OF], config), dialect="pyspark"
    )
    con.disconnect()
    assert "ASOF" not in sql.upper()
    assert sql.count("SELECT") > 50


def test_missing_warehouse_is_named(tmp_path):
    config = make_config(tmp_path)
    with pytest.raises(WarehouseError) as error:
        build_snapshots(config)
    assert str(error.value) == (
        f"no warehouse at {tmp_path / 'warehouse.duckdb'}: load the district first "
        "with `ontrack ingest`"
    )


def test_empty_calendar_is_refused(tmp_path):
    tables = tiny_district()
    tables["calendar"] = tables["calendar"].iloc[:0]
    write_district(tmp_path, tables)
    with pytest.raises(WarehouseError, match="^warehouse table calendar: no "):
        build_snapshots(make_config(tmp_path))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["student_id", "as_of_date"]).reset_index(drop=True)


def test_a_school_without_a_calendar_has_no_recent_window(tmp_path):
    # 0002 moved from A to B on 20 September; B's calendar is left out.
    tables = tiny_district()
    calendar = tables["calendar"]
    tables["calendar"] = calendar[calendar.school_id != "B"]
    config = make_config(tmp_path)
    write_district(tmp_path, tables)
    build_snapshots(config, as_of=FIRST_AS_OF)
    frame = pd.read_parquet(tmp_path / "snapshots" / "student_snapshots.parquet")
    row = frame[
        (frame.student_id == "0002")
        & (pd.to_datetime(frame.as_of_date).dt.date == FIRST_AS_OF)
    ].iloc[0]

    # The days at A still count; the last 20 days of B's calendar do not exist.
    assert row["days_enrolled"] > 0
    assert not math.isnan(row["attendance_rate"])
    assert math.isnan(row["attendance_rate_last_20"])
    assert math.isnan(row["attendance_trend"])


def test_a_result_takes_the_grade_of_the_stay_entered_last_before_it():
    from features._assessments import _with_grade
    from features._enrolment import enrolment_stays

    D = dt.date
    stays = enrolment_stays(
        ibis.memtable(
            pd.DataFrame(
                {
                    "student_id": ["s1", "s1", "s1", "s1"],
                    "school_id": ["A", "B", "C", "D"],
                    "school_year": [2024] * 4,
                    "grade": [6, 7, 8, 8],
                    # Two stays entered on 1 December: the higher grade counts.
                    "entry_date": [
                        D(2023, 9, 4),
                        D(2023, 12, 1),
                        D(2023, 12, 1),
                        D(2024, 3, 1),
                    ],  # fmt: skip
                    "exit_date": [D(2023, 11, 30), None, None, None],
                    "exit_reason": ["transfer", None, None, None],
                }
            )
        ),
        "08-01",
    )
    tests = ibis.memtable(
        pd.DataFrame(
            {
                "student_id": ["s1"] * 4,
                "school_year": [2024] * 4,
                "date": [
                    D(2023, 9, 1),
                    D(2023, 11, 30),
                    D(2023, 12, 1),
                    D(2024, 3, 2),
                ],  # fmt: skip
                "subject": ["math"] * 4,
                "scale_score": [400.0, 410.0, 420.0, 430.0],
            }
        )
    )

    graded = _with_grade(tests, stays).to_pandas().sort_values("date")

    # Before any entry: no grade; then 6, then the higher of the two December
    # stays, then March's.
    assert graded.grade.tolist()[1:] == [6, 8, 8]
    assert pd.isna(graded.grade.iloc[0])
    assert len(graded) == 4
