"""The demo district: contract shape, consistency, realism bands and reproducibility.

One small district (1,500 students a year, 6 schools, 3 school years, seed 7) is
generated once per session; the realism checks are statistical, with the band each
one must fall in stated in the test. Rates are computed from the raw tables, the way
a reader of the export would.
"""

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import DemoSummary, generate_demo_district
from features import _demo_district as demo_module

SMALL = {"n_students": 1_500, "n_schools": 6, "n_years": 3, "seed": 7}
SCHOOL_YEARS = (2023, 2024, 2025)

# Column lists copied from docs/CONTRACTS.md, not from the generator.
CONTRACT_COLUMNS = {
    "schools": [
        "school_id",
        "school_name",
        "school_level",
        "lowest_grade",
        "highest_grade",
    ],
    "students": [
        "student_id",
        "birth_date",
        "gender",
        "race_ethnicity",
        "economically_disadvantaged",
        "english_learner",
        "disability",
        "first_name",
        "last_name",
    ],
    "enrollments": [
        "student_id",
        "school_id",
        "school_year",
        "grade",
        "entry_date",
        "exit_date",
        "exit_reason",
    ],
    "calendar": ["school_id", "date"],
    "attendance": ["student_id", "school_id", "date", "category", "fraction_missed"],
    "discipline": [
        "incident_id",
        "student_id",
        "school_id",
        "date",
        "behavior_category",
        "action",
        "days_removed",
    ],
    "grades": [
        "student_id",
        "school_id",
        "school_year",
        "term",
        "term_end_date",
        "course_id",
        "subject",
        "mark",
        "letter",
        "credits_attempted",
        "credits_earned",
    ],
    "assessments": [
        "student_id",
        "school_year",
        "date",
        "subject",
        "scale_score",
        "performance_level",
        "proficient",
    ],
    "programs": ["student_id", "program", "begin_date", "end_date"],
}
DATE_COLUMNS = (
    "birth_date",
    "entry_date",
    "exit_date",
    "date",
    "term_end_date",
    "begin_date",
    "end_date",
)
ID_COLUMNS = ("student_id", "school_id", "incident_id")


def _read_csv(path: Path) -> pd.DataFrame:
    header = pd.read_csv(path, nrows=0).columns
    frame = pd.read_csv(path, dtype={c: str for c in ID_COLUMNS if c in header})
    for column in DATE_COLUMNS:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], format="%Y-%m-%d")
    return frame


def _hashes(folder: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
    }


@pytest.fixture(scope="session")
def district(tmp_path_factory) -> tuple[Path, DemoSummary]:
    folder = tmp_path_factory.mktemp("demo") / "district"
    return folder, generate_demo_district(folder, **SMALL)


@pytest.fixture(scope="session")
def tables(district) -> dict[str, pd.DataFrame]:
    folder, _ = district
    return {name: _read_csv(folder / f"{name}.csv") for name in CONTRACT_COLUMNS}


@pytest.fixture(scope="session")
def enrolled_days(tables) -> pd.DataFrame:
    """One row per (stay, instructional day enrolled)."""
    enrollments = tables["enrollments"].reset_index(names="stay")
    calendar = tables["calendar"]
    # A school year runs from August to July, named by its spring year.
    calendar = calendar.assign(
        school_year=calendar["date"].dt.year + (calendar["date"].dt.month >= 8)
    )
    days = enrollments.merge(calendar, on=["school_id", "school_year"])
    inside = (days["date"] >= days["entry_date"]) & (days["date"] <= days["exit_date"])
    return days.loc[inside, ["stay", "student_id", "school_id", "school_year", "date"]]


@pytest.fixture(scope="session")
def student_years(tables, enrolled_days) -> pd.DataFrame:
    """Days enrolled and absent per (student_id, school_year), 10+ days enrolled."""
    absent = tables["attendance"].merge(
        enrolled_days, on=["student_id", "school_id", "date"], how="inner"
    )
    absent = absent[absent["category"] != "tardy"]
    per_year = enrolled_days.groupby(["student_id", "school_year"]).size()
    missed = absent.groupby(["student_id", "school_year"])["fraction_missed"].sum()
    frame = pd.DataFrame({"days_enrolled": per_year, "days_absent": missed}).fillna(
        {"days_absent": 0.0}
    )
    frame = frame[frame["days_enrolled"] >= 10].reset_index()
    frame["absence_rate"] = frame["days_absent"] / frame["days_enrolled"]
    frame["chronic"] = frame["absence_rate"] >= 0.10
    return frame.merge(tables["students"], on="student_id")


# --- shape ---------------------------------------------------------------------


def test_folder_holds_one_file_per_contract_table(district):
    folder, _ = district
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{name}.csv" for name in CONTRACT_COLUMNS
    )
    assert [p.name for p in folder.parent.iterdir()] == ["district"]


def test_columns_are_the_contract_columns_in_order(tables):
    for name, columns in CONTRACT_COLUMNS.items():
        assert list(tables[name].columns) == columns, name


def test_summary_counts_the_rows_written(district, tables):
    _, summary = district
    assert dict(summary.row_counts) == {n: len(t) for n, t in tables.items()}
    assert summary.school_years == SCHOOL_YEARS
    assert summary.n_schools == 6


def test_identifiers_are_zero_padded_strings(tables):
    assert tables["schools"]["school_id"].tolist() == [f"{i:04d}" for i in range(1, 7)]
    student_ids = tables["students"]["student_id"]
    assert student_ids.str.fullmatch(r"\d{7}").all()
    assert student_ids.iloc[0] == "0000001"
    assert student_ids.is_unique
    assert tables["discipline"]["incident_id"].str.fullmatch(r"\d{8}").all()
    assert tables["discipline"]["incident_id"].is_unique


def test_codes_are_the_contract_codes(tables):
    students, enrollments = tables["students"], tables["enrollments"]
    assert set(students["gender"]) <= {"female", "male", "nonbinary"}
    assert set(students["race_ethnicity"]) == {
        "hispanic",
        "white",
        "black",
        "asian",
        "two_or_more",
        "american_indian",
        "pacific_islander",
    }
    assert set(enrollments["exit_reason"]) <= {
        "transfer",
        "left_district",
        "graduated",
        "dropped_out",
        "end_of_year",
        "other",
    }
    assert set(enrollments["school_year"]) == set(SCHOOL_YEARS)
    assert enrollments["grade"].between(0, 12).all()
    assert set(tables["attendance"]["category"]) == {"excused", "unexcused", "tardy"}
    assert set(tables["discipline"]["behavior_category"]) <= {
        "minor",
        "disruption",
        "defiance",
        "fighting",
        "bullying",
        "substance",
        "weapon",
        "other",
    }
    assert set(tables["discipline"]["action"]) <= {
        "none",
        "in_school_suspension",
        "out_of_school_suspension",
        "expulsion",
    }
    assert set(tables["grades"]["subject"]) == {
        "ela",
        "math",
        "science",
        "social_studies",
        "other",
    }
    assert set(tables["grades"]["term"]) == {"Q1", "Q2", "Q3", "Q4"}
    assert set(tables["assessments"]["subject"]) == {"ela", "math", "science"}
    assert set(tables["programs"]["program"]) == {"tutoring", "mentoring"}
    grade_span = (
        tables["schools"]
        .groupby("school_level")[["lowest_grade", "highest_grade"]]
        .agg(set)
    )
    assert grade_span.to_dict("index") == {
        "elementary": {"lowest_grade": {0}, "highest_grade": {5}},
        "middle": {"lowest_grade": {6}, "highest_grade": {8}},
        "high": {"lowest_grade": {9}, "highest_grade": {12}},
    }


def test_values_are_in_their_ranges(tables):
    attendance = tables["attendance"]
    tardy = attendance["category"] == "tardy"
    assert (attendance.loc[tardy, "fraction_missed"] == 0).all()
    absence = attendance.loc[~tardy, "fraction_missed"]
    assert set(absence) == {0.5, 1.0}
    grades = tables["grades"]
    assert grades["mark"].between(0, 100).all()
    letter_floor = {"A": 90, "B": 80, "C": 70, "D": 65, "F": 0}
    assert (grades["mark"] >= grades["letter"].map(letter_floor)).all()
    assert (grades["credits_earned"] <= grades["credits_attempted"]).all()
    assessments = tables["assessments"]
    assert assessments["performance_level"].between(1, 4).all()
    assert (assessments["proficient"] == (assessments["performance_level"] >= 3)).all()
    assert (tables["discipline"]["days_removed"] >= 0).all()


def test_students_have_fake_names_from_the_built_in_lists(tables):
    students = tables["students"]
    assert students["first_name"].isin(demo_module.population.FIRST_NAMES).all()
    assert students["last_name"].isin(demo_module.population.LAST_NAMES).all()


# --- consistency: nothing ingest would quarantine -------------------------------


def test_calendars_have_178_to_180_weekdays_per_school_and_year(tables):
    calendar = tables["calendar"]
    assert (calendar["date"].dt.dayofweek < 5).all()
    assert not calendar.duplicated().any()
    school_year = calendar["date"].dt.year + (calendar["date"].dt.month >= 8)
    days = calendar.groupby(["school_id", school_year]).size()
    assert days.between(178, 180).all()
    assert len(days) == 6 * 3
    assert set(calendar["date"].dt.month) == {8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6}


def test_stays_start_and_end_on_calendar_days_and_never_overlap(tables):
    enrollments = tables["enrollments"]
    calendar_days = set(
        zip(tables["calendar"]["school_id"], tables["calendar"]["date"], strict=True)
    )
    for column in ("entry_date", "exit_date"):
        days = zip(enrollments["school_id"], enrollments[column], strict=True)
        assert all(day in calendar_days for day in days), column
    assert (enrollments["entry_date"] <= enrollments["exit_date"]).all()
    ordered = enrollments.sort_values(["student_id", "entry_date"])
    same_student = ordered["student_id"].eq(ordered["student_id"].shift())
    gap = ordered["entry_date"] - ordered["exit_date"].shift()
    assert (gap[same_student] > pd.Timedelta(0)).all()
    assert set(enrollments["student_id"]) == set(tables["students"]["student_id"])


def test_every_attendance_row_is_a_day_the_student_is_enrolled_there(
    tables, enrolled_days
):
    attendance = tables["attendance"]
    matched = attendance.merge(
        enrolled_days, on=["student_id", "school_id", "date"], how="left"
    )
    assert len(matched) == len(attendance)
    assert matched["stay"].notna().all()
    assert not attendance.duplicated(["student_id", "date"]).any()


def test_incidents_tests_marks_and_programs_fall_inside_a_stay(tables, enrolled_days):
    keys = ["student_id", "school_id", "date"]
    incidents = tables["discipline"].merge(enrolled_days, on=keys, how="left")
    assert incidents["stay"].notna().all()

    tests = tables["assessments"].merge(
        enrolled_days, on=["student_id", "school_year", "date"], how="left"
    )
    assert tests["stay"].notna().all()
    assert len(tests) == len(tables["assessments"])

    marks = tables["grades"].rename(columns={"term_end_date": "date"})
    marks = marks.merge(enrolled_days, on=[*keys, "school_year"], how="left")
    assert marks["stay"].notna().all()

    programs = tables["programs"]
    begins = programs.merge(
        enrolled_days, left_on=["student_id", "begin_date"], right_on=keys[::2]
    )
    ends = programs.merge(
        enrolled_days, left_on=["student_id", "end_date"], right_on=keys[::2]
    )
    assert len(begins) == len(ends) == len(programs)
    assert (begins["stay"].to_numpy() == ends["stay"].to_numpy()).all()


def test_leavers_and_graduates_do_not_come_back(tables):
    enrollments = tables["enrollments"]
    gone = enrollments[
        enrollments["exit_reason"].isin(["left_district", "graduated", "dropped_out"])
    ]
    later = gone[["student_id", "school_year"]].merge(
        enrollments[["student_id", "school_year"]], on="student_id"
    )
    assert (later["school_year_y"] <= later["school_year_x"]).all()
    assert (
        enrollments.loc[enrollments["exit_reason"] == "graduated", "grade"] == 12
    ).all()


def test_movers_start_again_at_another_school_of_the_same_level(tables):
    enrollments = tables["enrollments"].merge(
        tables["schools"][["school_id", "school_level"]], on="school_id"
    )
    moves = enrollments[enrollments["exit_reason"] == "transfer"]
    after = moves.merge(enrollments, on=["student_id", "school_year"])
    after = after[after["entry_date_y"] > after["exit_date_x"]]
    assert len(after) == len(moves)
    assert (after["school_id_x"] != after["school_id_y"]).all()
    assert (after["school_level_x"] == after["school_level_y"]).all()
    assert (after["grade_x"] == after["grade_y"]).all()


# --- realism --------------------------------------------------------------------


def test_group_shares_are_close_to_us_public_schools(tables):
    students = tables["students"]
    assert 0.40 <= students["economically_disadvantaged"].mean() <= 0.60
    assert 0.07 <= students["english_learner"].mean() <= 0.13
    assert 0.12 <= students["disability"].mean() <= 0.18
    race = students["race_ethnicity"].value_counts(normalize=True)
    assert 0.38 <= race["white"] <= 0.50
    assert 0.24 <= race["hispanic"] <= 0.34
    assert 0.11 <= race["black"] <= 0.19


def test_chronic_absence_is_a_quarter_to_a_third_of_student_years(student_years):
    assert 0.22 <= student_years["chronic"].mean() <= 0.33


def test_chronic_absence_persists_from_one_year_to_the_next(student_years):
    this = student_years[["student_id", "school_year", "chronic"]]
    last = this.assign(school_year=this["school_year"] + 1)
    pairs = this.merge(last, on=["student_id", "school_year"], suffixes=("", "_last"))
    base_rate = pairs["chronic"].mean()
    again = pairs.loc[pairs["chronic_last"], "chronic"].mean()
    newly = pairs.loc[~pairs["chronic_last"], "chronic"].mean()
    assert again > 0.5
    assert again > 2 * base_rate
    assert newly < base_rate


def test_chronic_absence_gaps_by_group(student_years):
    by_ed = student_years.groupby("economically_disadvantaged")["chronic"].mean()
    assert by_ed[True] - by_ed[False] >= 0.10
    by_disability = student_years.groupby("disability")["chronic"].mean()
    assert by_disability[True] > by_disability[False]
    by_race = student_years.groupby("race_ethnicity")["chronic"].mean()
    assert by_race["asian"] < by_race["white"] < by_race["black"]


def test_absences_peak_on_mondays_fridays_and_in_winter(tables, enrolled_days):
    attendance = tables["attendance"]
    missed = attendance[attendance["category"] != "tardy"]
    missed = missed.groupby("date")["fraction_missed"].sum()
    enrolled = enrolled_days.groupby("date").size()
    daily = pd.DataFrame({"missed": missed, "enrolled": enrolled}).fillna(0.0)

    weekday = daily.groupby(daily.index.dayofweek).sum()
    rate = weekday["missed"] / weekday["enrolled"]
    midweek = rate[[1, 2, 3]].max()
    assert rate[0] > midweek * 1.05  # Monday
    assert rate[4] > midweek * 1.05  # Friday

    month = daily.groupby(daily.index.month).sum()
    winter = month.loc[[12, 1, 2]].sum()
    autumn = month.loc[[9, 10, 11]].sum()
    assert winter["missed"] / winter["enrolled"] > 1.15 * (
        autumn["missed"] / autumn["enrolled"]
    )


def test_absences_come_in_streaks(tables, enrolled_days):
    # The share of absences whose next enrolled day is also an absence, compared
    # with the absence rate itself: independent days would make them equal.
    attendance = tables["attendance"]
    absences = attendance[attendance["category"] != "tardy"]
    days = enrolled_days.sort_values(["stay", "date"]).copy()
    days["next_date"] = days.groupby("stay")["date"].shift(-1)
    absent = pd.MultiIndex.from_frame(absences[["student_id", "date"]])
    days["absent"] = pd.MultiIndex.from_frame(days[["student_id", "date"]]).isin(absent)
    days["next_absent"] = pd.MultiIndex.from_frame(
        days[["student_id", "next_date"]]
    ).isin(absent)
    follow_on = days.loc[days["absent"], "next_absent"].mean()
    assert follow_on > 2 * days["absent"].mean()


def test_half_days_and_unexcused_absences_are_a_minority_and_a_large_share(tables):
    absences = tables["attendance"]
    absences = absences[absences["category"] != "tardy"]
    assert 0.05 <= (absences["fraction_missed"] == 0.5).mean() <= 0.11
    assert 0.3 <= (absences["category"] == "unexcused").mean() <= 0.6


def test_proficiency_is_near_half_and_lower_for_students_who_miss_school(
    tables, student_years
):
    tests = tables["assessments"].merge(student_years, on=["student_id", "school_year"])
    assert 0.40 <= tests["proficient"].mean() <= 0.56
    by_chronic = tests.groupby("chronic")["proficient"].mean()
    assert by_chronic[False] - by_chronic[True] >= 0.15
    band = pd.cut(tests["absence_rate"], [0, 0.05, 0.10, 0.20, 1], include_lowest=True)
    by_band = tests.groupby(band, observed=True)["proficient"].mean()
    assert by_band.is_monotonic_decreasing
    by_ed = tests.groupby("economically_disadvantaged")["proficient"].mean()
    assert by_ed[False] - by_ed[True] >= 0.10
    by_el = tests[tests["subject"] == "ela"].groupby("english_learner")["proficient"]
    assert by_el.mean()[False] - by_el.mean()[True] >= 0.15


def test_tests_are_in_spring_for_the_tested_grades(tables):
    tests = tables["assessments"].merge(
        tables["enrollments"][["student_id", "school_year", "grade"]].drop_duplicates(
            ["student_id", "school_year"], keep="last"
        ),
        on=["student_id", "school_year"],
    )
    assert set(tests["date"].dt.month) <= {4, 5}
    grades = tests.groupby("subject")["grade"].unique().map(lambda g: sorted(g))
    assert grades["ela"] == grades["math"] == [3, 4, 5, 6, 7, 8, 11]
    assert grades["science"] == [5, 8, 11]


def test_marks_fall_with_absence_and_failing_is_a_minority(tables, student_years):
    core = tables["grades"][tables["grades"]["subject"] != "other"]
    yearly = core.groupby(["student_id", "school_year", "subject"])["mark"].mean()
    failed = (yearly < 65).groupby(["student_id", "school_year"]).any()
    assert 0.08 <= failed.mean() <= 0.25
    marks = yearly.groupby(["student_id", "school_year"]).mean().rename("mean_mark")
    merged = student_years.merge(marks.reset_index(), on=["student_id", "school_year"])
    correlation = merged["mean_mark"].corr(merged["absence_rate"])
    assert correlation < -0.3


def test_discipline_is_rare_skewed_and_higher_after_elementary(tables):
    enrollments = tables["enrollments"].merge(tables["schools"], on="school_id")
    incidents = tables["discipline"].merge(
        enrollments, on=["student_id", "school_id"], how="inner"
    )
    incidents = incidents[
        incidents["date"].between(incidents["entry_date"], incidents["exit_date"])
    ]
    per_stay = incidents.groupby(["student_id", "school_year"]).size()
    student_years = enrollments.drop_duplicates(["student_id", "school_year"])
    none = 1 - len(per_stay) / len(student_years)
    assert 0.80 <= none <= 0.95
    assert per_stay.max() >= 5
    rate = (
        incidents.groupby("school_level").size()
        / enrollments.groupby("school_level").size()
    )
    assert rate["middle"] > 2 * rate["elementary"]
    assert rate["high"] > 2 * rate["elementary"]


def test_mobility_rates(tables, student_years):
    reasons = tables["enrollments"]["exit_reason"].value_counts()
    # Only the 4 elementary schools have a sister school to move to in this district.
    assert 0.01 <= reasons["transfer"] / len(student_years) <= 0.06
    left = reasons["left_district"] + reasons.get("dropped_out", 0)
    assert 0.02 <= left / len(student_years) <= 0.06
    starts = tables["enrollments"].groupby("school_year")["entry_date"]
    assert (starts.nunique() > 20).all()  # mid-year entrants and movers


def test_programs_go_to_students_who_struggled_last_year(tables, student_years):
    programs = tables["programs"]
    programs = programs.assign(school_year=programs["begin_date"].dt.year + 1)
    mentored = programs[programs["program"] == "mentoring"][
        ["student_id", "school_year"]
    ]
    last = student_years[["student_id", "school_year", "chronic"]].assign(
        school_year=student_years["school_year"] + 1
    )
    flagged = last.merge(mentored, how="left", indicator=True)
    flagged["mentored"] = flagged["_merge"] == "both"
    share = flagged.groupby("chronic")["mentored"].mean()
    assert share[True] > 4 * share[False]


def test_known_program_effects_are_in_the_summary(district):
    _, summary = district
    assert summary.program_effects["tutoring"].effect == pytest.approx(16.0)
    assert summary.program_effects["mentoring"].effect == pytest.approx(-0.2)
    assert summary.program_effects == demo_module.PROGRAM_EFFECTS


def test_describe_shows_counts_and_no_personal_field(district, tables):
    _, summary = district
    text = summary.describe()
    assert f"{len(tables['attendance']):,}" in text
    words = set(re.findall(r"[A-Za-z]+", text))
    names = set(demo_module.population.FIRST_NAMES) | set(
        demo_module.population.LAST_NAMES
    )
    assert not words & names
    birth_dates = set(tables["students"]["birth_date"].dt.strftime("%Y-%m-%d"))
    assert not set(re.findall(r"\d{4}-\d{2}-\d{2}", text)) & birth_dates


# --- reproducibility, files, arguments -------------------------------------------


@pytest.mark.slow
def test_same_seed_same_bytes_and_a_new_seed_replaces_an_old_district(
    district, tmp_path
):
    folder, _ = district
    other = tmp_path / "district"
    generate_demo_district(other, **{**SMALL, "seed": 8})
    other_hashes = _hashes(other)
    assert other_hashes.keys() == _hashes(folder).keys()
    assert other_hashes["attendance.csv"] != _hashes(folder)["attendance.csv"]

    generate_demo_district(other, **SMALL)
    assert _hashes(other) == _hashes(folder)
    assert [p.name for p in tmp_path.iterdir()] == ["district"]


@pytest.mark.slow
def test_parquet_holds_the_same_rows_as_csv(tables, tmp_path):
    folder = tmp_path / "district"
    generate_demo_district(folder, **SMALL, file_format="parquet")
    for name, expected in tables.items():
        frame = pd.read_parquet(folder / f"{name}.parquet")
        for column in DATE_COLUMNS:
            if column in frame:
                frame[column] = pd.to_datetime(frame[column])
        pd.testing.assert_frame_equal(frame, expected, check_dtype=False, obj=name)


def test_refuses_to_replace_a_folder_with_other_files(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError) as error:
        generate_demo_district(folder, **SMALL)
    assert str(error.value) == (
        f"demo district folder {folder} holds 1 entries that are not canonical "
        "tables (first: 'notes.txt'); refusing to replace it: choose a new or "
        "empty folder"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["exports"]
    assert (folder / "notes.txt").read_text() == "keep me"


def test_a_crash_leaves_the_previous_district_and_no_partial_folder(
    district, tmp_path, monkeypatch
):
    folder, _ = district
    target = tmp_path / "district"
    target.mkdir()
    earlier = (folder / "schools.csv").read_bytes()
    (target / "schools.csv").write_bytes(earlier)

    # The disk fills up while the second school year is written, after the
    # first year's rows are in the files.
    real_mark_rows = demo_module.outcomes.mark_rows
    school_years_done = []

    def mark_rows_then_disk_full(stays, *args, **kwargs):
        school_years_done.append(len(stays))
        if len(school_years_done) == 2:
            raise OSError("No space left on device")
        return real_mark_rows(stays, *args, **kwargs)

    monkeypatch.setattr(demo_module.outcomes, "mark_rows", mark_rows_then_disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        generate_demo_district(target, **SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["district"]
    assert [p.name for p in target.iterdir()] == ["schools.csv"]
    assert (target / "schools.csv").read_bytes() == earlier


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"n_students": 5}, ValueError, "n_students must be at least 10, got 5"),
        ({"n_schools": 2}, ValueError, "n_schools must be at least 3, got 2"),
        ({"n_years": 0}, ValueError, "n_years must be from 1 to 20, got 0"),
        ({"seed": -1}, ValueError, "seed must be at least 0, got -1"),
        ({"n_students": 12.5}, TypeError, "n_students must be an integer, got 12.5"),
        (
            {"file_format": "xlsx"},
            ValueError,
            "file_format must be 'csv' or 'parquet', got 'xlsx'",
        ),
    ],
)
def test_bad_arguments_fail_before_any_file_is_written(
    tmp_path, arguments, error, message
):
    with pytest.raises(error) as raised:
        generate_demo_district(tmp_path / "district", **{**SMALL, **arguments})
    assert str(raised.value) == message
    assert list(tmp_path.iterdir()) == []


def test_a_small_district_spans_every_grade_with_about_n_students_each_fall(tables):
    enrollments = tables["enrollments"]
    first_day = enrollments.groupby(["school_id", "school_year"])["entry_date"].min()
    fall = enrollments.merge(
        first_day.rename("first_day").reset_index(), on=["school_id", "school_year"]
    )
    fall = fall[fall["entry_date"] == fall["first_day"]]
    per_year = fall.groupby("school_year")["student_id"].nunique()
    assert (per_year == SMALL["n_students"]).all()
    assert sorted(enrollments["grade"].unique()) == list(range(13))
    assert np.ptp(fall.groupby("grade").size()) < 0.25 * len(fall) / 13
