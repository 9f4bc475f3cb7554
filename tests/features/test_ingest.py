"""Ingest: each fault a real export holds, as a tiny handwritten input, exact result."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow
import pyarrow.parquet as pq
import pytest

from features import (
    AdapterTables,
    ExportRefused,
    IngestError,
    IngestReport,
    ingest_district,
    open_warehouse,
    write_warehouse,
)
from features._adapters import ADAPTERS
from features._schemas import parse
from ontrack.config import (
    KPI,
    Calendar,
    District,
    DistrictConfig,
    Paths,
    load_config,
)

SCHOOLS = (
    "school_id,school_name,school_level,lowest_grade,highest_grade\n"
    "0001,North Elementary,elementary,0,5\n"
    "0002,South High,high,9,12\n"
)
STUDENTS = (
    "student_id,birth_date,gender,race_ethnicity,economically_disadvantaged,"
    "english_learner,disability,first_name,last_name\n"
    "00123,2013-04-02,female,hispanic,yes,no,N,Ana,Diaz\n"
    "00456,2008-11-30,male,white,0,1,false,Ben,Okafor\n"
)
ENROLLMENTS = (
    "student_id,school_id,school_year,grade,entry_date,exit_date,exit_reason\n"
    "00123,0001,2023-2024,5,2023-08-21,,\n"
    "00456,0002,2024,10,2023-08-21,2024-01-31,transfer\n"
)
CALENDAR = "school_id,date\n0001,2024-03-15\n0002,2024-01-31\n"
ATTENDANCE_HEADER = "student_id,school_id,date,category,fraction_missed\n"
ATTENDANCE = ATTENDANCE_HEADER + "00123,0001,2024-03-15,excused,1\n"
BASE = {
    "schools.csv": SCHOOLS,
    "students.csv": STUDENTS,
    "enrollments.csv": ENROLLMENTS,
    "calendar.csv": CALENDAR,
    "attendance.csv": ATTENDANCE,
}


@pytest.fixture
def config(tmp_path: Path) -> DistrictConfig:
    return DistrictConfig(
        district=District(name="Tiny"),
        paths=Paths(state_dir=tmp_path / "state"),
        calendar=Calendar(checkpoints=["10-01"]),
        kpis=[
            KPI(
                name="chronic_absence",
                label="Chronically absent",
                definition="chronic_absence",
                district_target=0.2,
            )
        ],
    )


def write_export(folder: Path, **files: str | bytes | None) -> Path:
    """The base export, some files replaced (``attendance_csv="..."``) or removed."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = dict(BASE)
    contents.update(
        {name.replace("_csv", ".csv"): text for name, text in files.items()}
    )
    for name, text in contents.items():
        if text is None:
            continue
        data = text.encode() if isinstance(text, str) else text
        (folder / name).write_bytes(data)
    return folder


def ingest(config: DistrictConfig, tmp_path: Path, **files) -> IngestReport:
    return ingest_district(config, write_export(tmp_path / "export", **files))


def quarantine(report: IngestReport, table: str) -> list[dict[str, str]]:
    frame = pd.read_csv(
        report.quarantine_files[table], dtype=str, keep_default_na=False
    )
    return frame.to_dict("records")


def reasons(report: IngestReport, table: str) -> dict[int, str]:
    return {int(row["_row"]): row["_reason"] for row in quarantine(report, table)}


def table_rows(config: DistrictConfig, table: str) -> list[tuple]:
    with open_warehouse(config) as connection:
        return connection.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def counts(report: IngestReport, table: str) -> tuple[int, int, int, int, int]:
    c = report.tables[table]
    return (c.read, c.loaded, c.unchanged, c.quarantined, c.duplicates)


def test_clean_export_loads_every_row_with_identifiers_as_text(config, tmp_path):
    report = ingest(config, tmp_path)

    assert {t: counts(report, t) for t in BASE_TABLES} == {
        "schools": (2, 2, 0, 0, 0),
        "students": (2, 2, 0, 0, 0),
        "enrollments": (2, 2, 0, 0, 0),
        "calendar": (2, 2, 0, 0, 0),
        "attendance": (1, 1, 0, 0, 0),
    }
    assert report.quarantine_files == {}
    assert table_rows(config, "enrollments") == [
        ("00123", "0001", 2024, 5, dt.date(2023, 8, 21), None, None),
        ("00456", "0002", 2024, 10, dt.date(2023, 8, 21), dt.date(2024, 1, 31),
         "transfer"),
    ]  # fmt: skip
    assert table_rows(config, "students")[0][:7] == (
        "00123", dt.date(2013, 4, 2), "female", "hispanic", True, False, False,
    )  # fmt: skip
    assert table_rows(config, "discipline") == []


BASE_TABLES = ("schools", "students", "enrollments", "calendar", "attendance")


def test_bom_crlf_blank_lines_and_quoted_numbers(config, tmp_path):
    attendance = (
        b"\xef\xbb\xbfstudent_id,school_id,date,category,fraction_missed\r\n"
        b'"00123","0001",2024-03-15,excused,"0.5"\r\n'
        b"\r\n"
        b'00123,0001,2024-03-15,tardy,"0"\r\n'
    )
    report = ingest(config, tmp_path, attendance_csv=attendance)

    assert counts(report, "attendance") == (2, 2, 0, 0, 0)
    assert table_rows(config, "attendance") == [
        ("00123", "0001", dt.date(2024, 3, 15), "excused", 0.5),
        ("00123", "0001", dt.date(2024, 3, 15), "tardy", 0.0),
    ]


def test_exact_duplicate_rows_are_reported_and_loaded_once(config, tmp_path):
    row = "00123,0001,2024-03-15,excused,1\n"
    report = ingest(config, tmp_path, attendance_csv=ATTENDANCE_HEADER + row * 3)

    assert counts(report, "attendance") == (3, 1, 0, 0, 2)
    assert table_rows(config, "attendance") == [
        ("00123", "0001", dt.date(2024, 3, 15), "excused", 1.0)
    ]


def test_date_in_another_format_is_quarantined_with_value_and_format(config, tmp_path):
    attendance = ATTENDANCE + "00123,0001,03/15/2024,unexcused,1\n"
    report = ingest(config, tmp_path, attendance_csv=attendance)

    assert counts(report, "attendance") == (2, 1, 0, 1, 0)
    assert quarantine(report, "attendance") == [
        {
            "student_id": "00123",
            "school_id": "0001",
            "date": "03/15/2024",
            "category": "unexcused",
            "fraction_missed": "1",
            "_row": "2",
            "_reason": "date: '03/15/2024' is not a date in the expected format "
            "YYYY-MM-DD",
        }
    ]
    assert report.quarantine_files == {
        "attendance": config.state_dir / "quarantine" / "attendance.csv"
    }


def test_unknown_codes_and_bad_numbers_give_every_reason_in_column_order(
    config, tmp_path
):
    attendance = (
        ATTENDANCE
        + "00123,0001,2024-02-30,Sick,1.5\n"
        + "00123,0001,2024-03-15,unexcused,0\n"
        + "00123,,2024-03-15,Unexcused,x\n"
    )
    report = ingest(config, tmp_path, attendance_csv=attendance)

    assert counts(report, "attendance") == (4, 1, 0, 3, 0)
    assert reasons(report, "attendance") == {
        2: "date: '2024-02-30' is not a real calendar date; "
        "category: 'Sick' is not a known code (expected one of: excused, unexcused, "
        "tardy); fraction_missed: '1.5' is outside the allowed range 0 to 1",
        3: "fraction_missed may be 0 only for category tardy "
        "(category 'unexcused', fraction_missed '0')",
        4: "school_id: required value is missing; fraction_missed: 'x' is not a number",
    }


def test_codes_are_accepted_in_any_case_and_stored_in_lower_case(config, tmp_path):
    ingest(
        config,
        tmp_path,
        attendance_csv=ATTENDANCE_HEADER + "00123,0001,2024-03-15,EXCUSED,1\n",
    )

    assert table_rows(config, "attendance")[0][3] == "excused"


def test_row_for_a_student_not_enrolled_there_that_day_is_quarantined(config, tmp_path):
    attendance = (
        ATTENDANCE
        # before the stay began (entry_date 2023-08-21)
        + "00123,0001,2023-08-18,excused,1\n"
        # the exit date itself is still enrolled (inclusive) ...
        + "00456,0002,2024-01-31,excused,1\n"
        # ... the day after is not
        + "00456,0002,2024-02-01,excused,1\n"
        # enrolled that day, but at another school
        + "00123,0002,2024-03-15,excused,1\n"
        # a student and a school the export does not have
        + "00999,0003,2024-03-15,excused,1\n"
    )
    discipline = (
        "incident_id,student_id,school_id,date,behavior_category,action,days_removed\n"
        "I-1,00456,0002,2024-03-01,fighting,out_of_school_suspension,2\n"
    )
    report = ingest(
        config, tmp_path, attendance_csv=attendance, discipline_csv=discipline
    )

    assert counts(report, "attendance") == (6, 2, 0, 4, 0)
    assert reasons(report, "attendance") == {
        2: "student_id '00123' is not enrolled at school_id '0001' on 2023-08-18 "
        "(no enrollment with entry_date <= date <= exit_date)",
        4: "student_id '00456' is not enrolled at school_id '0002' on 2024-02-01 "
        "(no enrollment with entry_date <= date <= exit_date)",
        5: "student_id '00123' is not enrolled at school_id '0002' on 2024-03-15 "
        "(no enrollment with entry_date <= date <= exit_date)",
        6: "student_id '00999' is not in students; school_id '0003' is not in schools",
    }
    assert counts(report, "discipline") == (1, 0, 0, 1, 0)
    assert reasons(report, "discipline") == {
        1: "student_id '00456' is not enrolled at school_id '0002' on 2024-03-01 "
        "(no enrollment with entry_date <= date <= exit_date)"
    }


def test_attendance_on_a_day_missing_from_the_calendar_is_loaded(config, tmp_path):
    # The indicators count absences on instructional days only; ingest keeps it.
    attendance = ATTENDANCE_HEADER + "00123,0001,2024-03-16,excused,1\n"
    report = ingest(config, tmp_path, attendance_csv=attendance)

    assert counts(report, "attendance") == (1, 1, 0, 0, 0)


def test_enrollment_rules(config, tmp_path):
    enrollments = ENROLLMENTS + (
        "00123,0002,2024-25,9,2024-08-20,,\n"
        "00123,0002,2025,9,2024-09-01,2024-08-31,graduated\n"
        "00123,0002,2023-2025,9,2024-10-01,,\n"
        "00123,0001,2023-2024,5,2023-08-21,,other\n"
        "00123,0009,2025,9,2024-11-01,,\n"
    )
    report = ingest(config, tmp_path, enrollments_csv=enrollments)

    assert counts(report, "enrollments") == (7, 1, 0, 6, 0)
    expected_years = "the expected formats YYYY (spring year) or YYYY-YYYY"
    conflict = (
        "duplicate key (student_id, school_id, entry_date): rows 1, 6 have the same "
        "key with different values; none of them is loaded"
    )
    assert reasons(report, "enrollments") == {
        1: conflict,
        3: f"school_year: '2024-25' is not a school year in {expected_years}",
        4: "exit_date is before entry_date "
        "(entry_date '2024-09-01', exit_date '2024-08-31')",
        5: f"school_year: '2023-2025' is not a school year in {expected_years}",
        6: conflict,
        7: "school_id '0009' is not in schools",
    }


def test_personal_fields_are_never_quoted_in_a_reason(config, tmp_path):
    students = STUDENTS + "00789,05/06/2012,female,martian,maybe,no,no,Cleo,Ray\n"
    report = ingest(config, tmp_path, students_csv=students)

    assert reasons(report, "students") == {
        3: "birth_date: the value (withheld: personal field) is not a date in the "
        "expected format YYYY-MM-DD; race_ethnicity: 'martian' is not a known code "
        "(expected one of: hispanic, white, black, asian, two_or_more, "
        "american_indian, pacific_islander, not_reported); economically_disadvantaged: "
        "'maybe' is not a boolean (expected true/false, 1/0, yes/no or y/n)"
    }
    # The raw row stays in the internal quarantine file, under the state folder.
    assert quarantine(report, "students")[0]["birth_date"] == "05/06/2012"


def test_empty_gender_and_race_are_kept_as_not_reported(config, tmp_path):
    # Exports without demographics (Ed-Fi's Grand Bend sample has none) keep their
    # students; an empty flag is still a missing required value.
    students = STUDENTS + (
        "00789,2012-05-06,,,no,no,no,,\n"
        "00790,2012-05-07,NOT_REPORTED, ,no,no,no,,\n"
        "00791,2012-05-08,male,white,,no,no,,\n"
    )
    report = ingest(config, tmp_path, students_csv=students)

    assert counts(report, "students") == (5, 4, 0, 1, 0)
    assert [row[:4] for row in table_rows(config, "students")[2:]] == [
        ("00789", dt.date(2012, 5, 6), "not_reported", "not_reported"),
        ("00790", dt.date(2012, 5, 7), "not_reported", "not_reported"),
    ]
    assert reasons(report, "students") == {
        5: "economically_disadvantaged: required value is missing"
    }


def test_grades_without_credits_load_with_credits_missing(config, tmp_path):
    header = (
        "student_id,school_id,school_year,term,term_end_date,course_id,subject,mark"
    )
    without_columns = header + "\n00123,0001,2024,T1,2023-12-15,MATH5,math,71\n"
    empty_cells = (
        header
        + ",credits_attempted,credits_earned\n"
        + "00123,0001,2024,T1,2023-12-15,MATH5,math,71,,\n"
        + "00123,0001,2024,T1,2023-12-15,ELA5,ela,80,1,0.5\n"
    )

    # The second export replaces the first one's MATH5 row and adds ELA5.
    for grades, credits in (
        (without_columns, [(None, None)]),
        (empty_cells, [(1.0, 0.5), (None, None)]),
    ):
        report = ingest(config, tmp_path, grades_csv=grades)
        assert counts(report, "grades")[3] == 0
        assert [row[-2:] for row in table_rows(config, "grades")] == credits


def test_a_line_with_too_many_fields_is_quarantined_with_its_number(config, tmp_path):
    attendance = (
        ATTENDANCE
        + "00123,0001,2024-03-14,excused,1,extra\n"
        + "00123,0001,2024-03-13,excused,1\n"
        + "00123,0001,2024-03-12,bad,1\n"
    )
    report = ingest(config, tmp_path, attendance_csv=attendance)

    assert counts(report, "attendance") == (4, 2, 0, 2, 0)
    assert reasons(report, "attendance") == {
        2: "the row has 6 fields, the header has 5",
        4: "category: 'bad' is not a known code (expected one of: excused, "
        "unexcused, tardy)",
    }


def test_missing_required_column_refuses_the_run_and_keeps_the_warehouse(
    config, tmp_path
):
    ingest(config, tmp_path)
    warehouse = config.state_dir / "warehouse.duckdb"
    before = warehouse.read_bytes()
    enrollments = (
        "student_id,school_id,school_year,grade,exit_date,exit_reason\n"
        "00123,0001,2024,5,,\n"
    )

    with pytest.raises(ExportRefused) as error:
        ingest(config, tmp_path / "second", enrollments_csv=enrollments)

    assert str(error.value) == (
        "table enrollments (enrollments.csv): missing required column 'entry_date'; "
        "the header has: student_id, school_id, school_year, grade, exit_date, "
        "exit_reason"
    )
    assert warehouse.read_bytes() == before
    assert sorted(p.name for p in config.state_dir.iterdir()) == [
        "quarantine",
        "warehouse.duckdb",
    ]


def test_unreadable_required_table_fails_mid_run_and_keeps_the_warehouse(
    config, tmp_path
):
    ingest(config, tmp_path)
    warehouse = config.state_dir / "warehouse.duckdb"
    before = warehouse.read_bytes()
    latin1 = CALENDAR.encode() + "0001,2024-03-16\n0001,caf\xe9\n".encode("latin-1")

    with pytest.raises(IngestError) as error:
        ingest(config, tmp_path / "second", calendar_csv=latin1)

    # Line 5 as an editor counts it: the header is line 1.
    assert str(error.value) == (
        "table calendar (calendar.csv) cannot be read: line 5 is not UTF-8 text; "
        "the file must be UTF-8 (re-save it as UTF-8, in Excel as 'CSV UTF-8')"
    )
    assert warehouse.read_bytes() == before
    assert sorted(p.name for p in config.state_dir.iterdir()) == [
        "quarantine",
        "warehouse.duckdb",
    ]


def test_an_optional_table_not_in_utf8_is_refused_naming_its_line(config, tmp_path):
    attendance = (ATTENDANCE + "00123,0001,2024-03-15,excused,1\n").encode()
    attendance += "00456,0002,2024-01-31,excus\xe9,1\n".encode("latin-1")

    report = ingest(config, tmp_path, attendance_csv=attendance)

    assert report.refused_tables == {
        "attendance": "table attendance (attendance.csv) cannot be read: line 4 is "
        "not UTF-8 text; the file must be UTF-8 (re-save it as UTF-8, in Excel as "
        "'CSV UTF-8')"
    }


def test_clean_export_refuses_no_table(config, tmp_path):
    assert ingest(config, tmp_path).refused_tables == {}


def test_missing_required_table_names_it(config, tmp_path):
    export = write_export(tmp_path / "export", calendar_csv=None)

    with pytest.raises(IngestError) as error:
        ingest_district(config, export)

    assert str(error.value) == (
        f"required table calendar is missing from {export} "
        "(expected calendar.csv or calendar.parquet)"
    )
    assert not (config.state_dir / "warehouse.duckdb").exists()


def test_optional_table_with_missing_column_is_refused_and_the_rest_loads(
    config, tmp_path
):
    ingest(config, tmp_path)
    attendance = "student_id,school_id,date,category\n00123,0001,2024-03-14,excused\n"
    report = ingest(config, tmp_path / "second", attendance_csv=attendance)

    refusal = (
        "table attendance (attendance.csv): missing required column "
        "'fraction_missed'; the header has: student_id, school_id, date, category"
    )
    assert report.tables["attendance"].refused == refusal
    assert report.refused_tables == {"attendance": refusal}
    assert counts(report, "attendance") == (0, 0, 0, 0, 0)
    assert counts(report, "students") == (2, 0, 2, 0, 0)
    # What the warehouse held of the refused table stays.
    assert table_rows(config, "attendance") == [
        ("00123", "0001", dt.date(2024, 3, 15), "excused", 1.0)
    ]
    assert f"refused: {refusal}" in report.describe()


def test_running_twice_loads_nothing_twice(config, tmp_path):
    attendance = ATTENDANCE + ATTENDANCE.splitlines()[1] + "\n"
    attendance += "00123,0001,03/15/2024,unexcused,1\n"
    first = ingest(config, tmp_path, attendance_csv=attendance)
    held = {table: table_rows(config, table) for table in BASE_TABLES}
    second = ingest(config, tmp_path, attendance_csv=attendance)

    assert counts(first, "attendance") == (3, 1, 0, 1, 1)
    assert counts(second, "attendance") == (3, 0, 1, 1, 1)
    for table in ("schools", "students", "enrollments", "calendar"):
        assert counts(second, table) == (2, 0, 2, 0, 0)
    assert {table: table_rows(config, table) for table in BASE_TABLES} == held


def test_a_later_export_adds_and_corrects_rows_and_keeps_the_others(config, tmp_path):
    ingest(config, tmp_path)
    attendance = (
        ATTENDANCE_HEADER
        + "00123,0001,2024-03-15,excused,0.5\n"  # corrected fraction
        + "00123,0001,2024-03-18,tardy,0\n"  # new
    )
    report = ingest(config, tmp_path / "second", attendance_csv=attendance)

    assert counts(report, "attendance") == (2, 2, 0, 0, 0)
    assert table_rows(config, "attendance") == [
        ("00123", "0001", dt.date(2024, 3, 15), "excused", 0.5),
        ("00123", "0001", dt.date(2024, 3, 18), "tardy", 0.0),
    ]
    # A later run without rejects leaves no stale quarantine file behind.
    assert not (config.state_dir / "quarantine" / "attendance.csv").exists()


def test_every_row_read_is_counted_once(config, tmp_path):
    attendance = (
        ATTENDANCE * 1
        + "00123,0001,2024-03-15,excused,1\n"
        + "00123,0001,2024-03-15,excused,0.5\n"
        + "00123,0001,2024-13-01,excused,1\n"
        + "00456,0002,2024-03-15,excused,1\n"
    )
    report = ingest(config, tmp_path, attendance_csv=attendance)

    for table, c in report.tables.items():
        assert c.read == c.loaded + c.unchanged + c.quarantined + c.duplicates, table
    # Rows 1 and 2 are equal, row 3 has their key with another fraction: none of
    # the three is known to be right.
    assert counts(report, "attendance") == (5, 0, 0, 5, 0)


def test_parquet_export_with_typed_columns_loads_like_csv(config, tmp_path):
    export = write_export(tmp_path / "export", attendance_csv=None)
    attendance = pyarrow.table(
        {
            "student_id": pyarrow.array(["00123", "00123"]),
            "school_id": pyarrow.array(["0001", "0001"]),
            "date": pyarrow.array([dt.date(2024, 3, 15), dt.date(2024, 3, 1)]),
            "category": pyarrow.array(["excused", "tardy"]).dictionary_encode(),
            "fraction_missed": pyarrow.array([1.0, None]),
        }
    )
    pq.write_table(attendance, export / "attendance.parquet")

    report = ingest_district(config, export)

    assert report.tables["attendance"].origin == "attendance.parquet"
    assert counts(report, "attendance") == (2, 1, 0, 1, 0)
    assert reasons(report, "attendance") == {
        2: "fraction_missed: required value is missing"
    }


def test_adapter_frames_go_through_the_same_validation(config, tmp_path, monkeypatch):
    def read_frames(source: Path, mapping: Path | None) -> dict[str, pd.DataFrame]:
        export = write_export(tmp_path / "export")
        frames = {
            path.stem: pd.read_csv(path, dtype=str, keep_default_na=False)
            for path in export.glob("*.csv")
        }
        frames["attendance"].loc[0, "date"] = "15.03.2024"
        frames["attendance"]["_row"] = [17]
        return frames

    monkeypatch.setitem(ADAPTERS, "frames-for-test", read_frames)
    report = ingest_district(config, tmp_path, "frames-for-test")

    assert report.tables["students"].origin == "frames-for-test"
    assert counts(report, "students") == (2, 2, 0, 0, 0)
    assert reasons(report, "attendance") == {
        17: "date: '15.03.2024' is not a date in the expected format YYYY-MM-DD"
    }


def test_adapter_notes_are_printed_with_the_counts(config, tmp_path, monkeypatch):
    def read_frames(source: Path, mapping: Path | None) -> AdapterTables:
        export = write_export(tmp_path / "export")
        frames = {
            path.stem: pd.read_csv(path, dtype=str, keep_default_na=False)
            for path in export.glob("*.csv")
        }
        return AdapterTables(frames, ["calendar derived from weekdays"])

    monkeypatch.setitem(ADAPTERS, "notes-for-test", read_frames)
    report = ingest_district(config, tmp_path, "notes-for-test")

    assert report.notes == ("calendar derived from weekdays",)
    assert report.describe().endswith(
        "derived by the adapter (check before trusting the figures):\n"
        "- calendar derived from weekdays"
    )
    assert ingest(config, tmp_path).notes == ()


def test_unknown_format_names_the_allowed_ones(config, tmp_path):
    allowed = ", ".join(["canonical", *sorted(ADAPTERS)])

    with pytest.raises(IngestError) as error:
        ingest_district(config, tmp_path, "xlsx")

    assert str(error.value) == (
        f"unknown export format 'xlsx'; expected one of: {allowed}"
    )


def test_describe_is_a_plain_table(config, tmp_path):
    report = ingest(
        config, tmp_path, attendance_csv=ATTENDANCE + "x,0001,2024-03-15,excused,1\n"
    )
    state = config.state_dir

    quarantined = state / "quarantine" / "attendance.csv"

    assert report.describe() == textwrap.dedent(
        f"""\
        table        source           read  loaded  unchanged  quarantined  duplicates
        schools      schools.csv         2       2          0            0           0
        students     students.csv        2       2          0            0           0
        enrollments  enrollments.csv     2       2          0            0           0
        calendar     calendar.csv        2       2          0            0           0
        attendance   attendance.csv      2       1          0            1           0
        discipline   (not in export)     0       0          0            0           0
        grades       (not in export)     0       0          0            0           0
        assessments  (not in export)     0       0          0            0           0
        programs     (not in export)     0       0          0            0           0
        loaded: rows new to the warehouse (a new key or changed values)
        unchanged: rows the warehouse already held as they are
        warehouse: {state / "warehouse.duckdb"}
        quarantined rows of attendance: {quarantined} (1)"""
    )


def test_write_warehouse_builds_a_tiny_district_for_other_tests(config):
    path = write_warehouse(
        config.state_dir,
        {
            "schools": pd.DataFrame(
                {
                    "school_id": ["0001"],
                    "school_name": ["North"],
                    "school_level": ["elementary"],
                    "lowest_grade": [0],
                    "highest_grade": [5],
                }
            ),
            "calendar": pd.DataFrame(
                {"school_id": ["0001"], "date": [dt.date(2024, 3, 15)]}
            ),
        },
    )

    assert path == config.state_dir / "warehouse.duckdb"
    assert table_rows(config, "calendar") == [("0001", dt.date(2024, 3, 15))]
    assert table_rows(config, "students") == []
    with open_warehouse(config) as connection:
        column_types = connection.execute(
            "SELECT data_type FROM duckdb_columns() WHERE table_name = 'schools'"
        ).fetchall()
    assert [row[0] for row in column_types] == [
        "VARCHAR", "VARCHAR", "VARCHAR", "INTEGER", "INTEGER",
    ]  # fmt: skip


def test_write_warehouse_refuses_unknown_columns(config):
    calendar = pd.DataFrame({"school": ["0001"], "date": ["2024-03-15"]})

    with pytest.raises(IngestError) as error:
        write_warehouse(config.state_dir, {"calendar": calendar})

    assert str(error.value) == (
        "write_warehouse: table calendar: unknown column 'school'; "
        "missing required column 'school_id'"
    )


def test_open_warehouse_before_any_ingest(config):
    with pytest.raises(FileNotFoundError) as error:
        open_warehouse(config)

    assert str(error.value) == (
        f"no warehouse at {config.state_dir / 'warehouse.duckdb'}: "
        "run `ontrack ingest` on an export first"
    )


def test_warehouse_is_readable_while_ingest_replaces_it(config, tmp_path):
    ingest(config, tmp_path)
    reader = open_warehouse(config)
    ingest(
        config,
        tmp_path / "second",
        attendance_csv=ATTENDANCE_HEADER + "00123,0001,2024-03-18,tardy,0\n",
    )

    # The open connection still sees the warehouse it opened.
    assert reader.execute("SELECT count(*) FROM attendance").fetchone() == (1,)
    reader.close()
    assert len(table_rows(config, "attendance")) == 2


def test_text_becomes_values_only_in_the_accepted_spellings():
    def values(kind: str, texts: list[str | None]) -> list:
        return parse(kind, pyarrow.array(texts, pyarrow.string())).to_pylist()

    assert values("boolean", ["true", "1", "yes", "y", "false", "0", "no", "n"]) == [
        True, True, True, True, False, False, False, False,
    ]  # fmt: skip
    assert values("boolean", ["t", "2", None]) == [None, None, None]
    assert values("school_year", ["2024", "2023-2024", "2024-25", "2023-2025"]) == [
        2024, 2024, None, None,
    ]  # fmt: skip
    assert values("date", ["2024-02-29", "2023-02-29", "2024-3-5", "20240305"]) == [
        dt.date(2024, 2, 29), None, None, None,
    ]  # fmt: skip
    assert values("integer", ["12", "12.0", "-1", "1.5", "1e3", "x"]) == [
        12, 12, -1, None, None, None,
    ]  # fmt: skip
    assert values("number", ["0.5", ".5", "1e-3", "1,5", "nan"]) == [
        0.5, 0.5, 0.001, None, None,
    ]  # fmt: skip


def test_header_only_and_empty_optional_tables(config, tmp_path):
    report = ingest(config, tmp_path, attendance_csv=ATTENDANCE_HEADER, grades_csv="")

    assert counts(report, "attendance") == (0, 0, 0, 0, 0)
    assert report.tables["attendance"].refused is None
    assert report.tables["grades"].refused == (
        "table grades (grades.csv): the file has no header"
    )


ZEROS_LOST = (
    "{column} '{value}' matches existing '{known}' once zero-padded: identifiers "
    "must keep their leading zeros"
)


def test_an_identifier_that_lost_its_leading_zeros_is_quarantined(config, tmp_path):
    ingest(config, tmp_path)
    students = STUDENTS + "123,2013-04-02,female,hispanic,yes,no,N,Ana,Diaz\n"
    enrollments = ENROLLMENTS + "123,1,2024,5,2023-08-21,,\n"

    report = ingest(
        config, tmp_path / "second", students_csv=students, enrollments_csv=enrollments
    )

    assert counts(report, "students") == (3, 0, 2, 1, 0)
    assert reasons(report, "students") == {
        3: ZEROS_LOST.format(column="student_id", value="123", known="00123")
    }
    assert reasons(report, "enrollments") == {
        3: "student_id '123' is not in students; school_id '1' is not in schools; "
        + ZEROS_LOST.format(column="student_id", value="123", known="00123")
        + "; "
        + ZEROS_LOST.format(column="school_id", value="1", known="0001")
    }
    assert [row[0] for row in table_rows(config, "students")] == ["00123", "00456"]


def test_the_same_export_with_and_without_leading_zeros_keeps_the_longer(
    config, tmp_path
):
    students = STUDENTS + "456,2008-11-30,male,white,0,1,false,Ben,Okafor\n"

    report = ingest(config, tmp_path, students_csv=students)

    assert reasons(report, "students") == {
        3: ZEROS_LOST.format(column="student_id", value="456", known="00456")
    }


def test_a_parquet_identifier_stored_as_numbers_refuses_the_table(config, tmp_path):
    export = write_export(tmp_path / "export", attendance_csv=None)
    attendance = pyarrow.table(
        {
            "student_id": pyarrow.array([123], pyarrow.int64()),
            "school_id": pyarrow.array(["0001"]),
            "date": pyarrow.array([dt.date(2024, 3, 15)]),
            "category": pyarrow.array(["excused"]),
            "fraction_missed": pyarrow.array([1.0]),
        }
    )
    pq.write_table(attendance, export / "attendance.parquet")

    report = ingest_district(config, export)

    assert report.refused_tables == {
        "attendance": "table attendance (attendance.parquet): column student_id is "
        "stored as int64, which has lost any leading zeros ('0000006' would be 6); "
        "identifiers must be a string column: write it as text from the source "
        "system"
    }


def test_a_csv_file_named_parquet_is_refused_naming_the_file(config, tmp_path):
    export = write_export(tmp_path / "export")
    (export / "discipline.parquet").write_text(
        "incident_id,student_id,school_id,date,behavior_category,action,"
        "days_removed\nI1,00123,0001,2024-03-15,minor,none,0\n"
    )

    report = ingest_district(config, export)

    assert report.refused_tables == {
        "discipline": "table discipline (discipline.parquet) cannot be read: it is "
        "not a Parquet file; expected discipline.parquet to be Parquet or "
        "discipline.csv to be CSV"
    }
    assert counts(report, "attendance") == (1, 1, 0, 0, 0)


def test_a_required_table_that_is_not_parquet_refuses_the_run(config, tmp_path):
    export = write_export(tmp_path / "export", schools_csv=None)
    (export / "schools.parquet").write_text(SCHOOLS)

    with pytest.raises(ExportRefused) as error:
        ingest_district(config, export)

    assert str(error.value) == (
        "table schools (schools.parquet) cannot be read: it is not a Parquet file; "
        "expected schools.parquet to be Parquet or schools.csv to be CSV"
    )
    assert not (config.state_dir / "warehouse.duckdb").exists()


def test_rows_that_share_a_key_but_differ_keep_the_held_row(config, tmp_path):
    ingest(config, tmp_path)
    attendance = (
        ATTENDANCE_HEADER
        + "00123,0001,2024-03-15,excused,0.5\n"
        + "00123,0001,2024-03-15,excused,0.25\n"
    )
    report = ingest(config, tmp_path / "second", attendance_csv=attendance)

    conflict = (
        "duplicate key (student_id, school_id, date, category): rows 1, 2 have the "
        "same key with different values; none of them is loaded"
    )
    assert reasons(report, "attendance") == {1: conflict, 2: conflict}
    assert table_rows(config, "attendance") == [
        ("00123", "0001", dt.date(2024, 3, 15), "excused", 1.0)
    ]


def test_a_row_left_out_of_a_later_export_stays(config, tmp_path):
    ingest(config, tmp_path)
    report = ingest(config, tmp_path / "second", attendance_csv=ATTENDANCE_HEADER)

    assert counts(report, "attendance") == (0, 0, 0, 0, 0)
    assert table_rows(config, "attendance") == [
        ("00123", "0001", dt.date(2024, 3, 15), "excused", 1.0)
    ]


def test_implausible_values_are_quarantined_with_the_rule(config, tmp_path):
    students = STUDENTS + (
        "00789,9999-12-31,male,white,no,no,no,Cal,Ruiz\n"
        "00790,1850-01-01,male,white,no,no,no,Dee,Ruiz\n"
    )
    enrollments = ENROLLMENTS + "00456,0001,2024,4,2019-08-23,,\n"
    discipline = (
        "incident_id,student_id,school_id,date,behavior_category,action,"
        "days_removed\n"
        "I1,00123,0001,2024-03-15,fighting,out_of_school_suspension,3\n"
        "I2,00123,0001,2024-03-15,fighting,expulsion,999999999999\n"
    )
    grades = (
        "student_id,school_id,school_year,term,term_end_date,course_id,subject,mark\n"
        "00123,0001,2024,T1,2023-12-15,MATH5,math,81\n"
        "00123,0001,2024,T2,2030-10-25,MATH5,math,75\n"
    )
    assessments = (
        "student_id,school_year,date,subject,scale_score,performance_level,"
        "proficient\n"
        "00123,2024,2024-04-10,math,2450,3,yes\n"
        "00123,2024,2026-04-10,ela,2450,3,yes\n"
        "00456,2024,2024-04-10,math,1e23,3,yes\n"
        "00456,2024,2022-07-01,ela,2450,3,yes\n"
        "00456,2024,2022-06-30,math,2450,3,yes\n"
    )
    report = ingest(
        config,
        tmp_path,
        students_csv=students,
        enrollments_csv=enrollments,
        discipline_csv=discipline,
        grades_csv=grades,
        assessments_csv=assessments,
    )

    birth = (
        "birth_date: the value (withheld: personal field) is not a birth date from "
        "1900-01-01 to yesterday"
    )
    assert reasons(report, "students") == {3: birth, 4: birth}
    assert reasons(report, "enrollments") == {
        3: "entry_date is outside its school_year, 1 July of the year before to 31 "
        "August (school_year '2024', entry_date '2019-08-23')"
    }
    assert reasons(report, "discipline") == {
        2: "days_removed: '999999999999' is outside the allowed range 0 to 366"
    }
    assert reasons(report, "grades") == {
        2: "term_end_date is outside its school_year, 1 July of the year before to "
        "31 August (school_year '2024', term_end_date '2030-10-25')"
    }
    assert reasons(report, "assessments") == {
        2: "date is outside its school_year or the year before, 1 July two years "
        "before to 31 August (school_year '2024', date '2026-04-10')",
        3: "scale_score: '1e23' is outside the allowed range 0 to 10000",
        5: "date is outside its school_year or the year before, 1 July two years "
        "before to 31 August (school_year '2024', date '2022-06-30')",
    }
    for table in ("students", "enrollments", "discipline", "grades", "assessments"):
        assert report.tables[table].loaded == report.tables[table].read - len(
            reasons(report, table)
        ), table


def test_a_fresh_ingest_keeps_nothing_of_the_old_warehouse(config, tmp_path):
    ingest(config, tmp_path)
    students = STUDENTS.splitlines()[0] + "\n" + STUDENTS.splitlines()[1] + "\n"
    enrollments = ENROLLMENTS.splitlines()[0] + "\n" + ENROLLMENTS.splitlines()[1]
    export = write_export(
        tmp_path / "second",
        students_csv=students,
        enrollments_csv=enrollments + "\n",
        calendar_csv="school_id,date\n0001,2024-03-15\n",
    )

    report = ingest_district(config, export, fresh=True)

    assert counts(report, "students") == (1, 1, 0, 0, 0)
    assert [row[0] for row in table_rows(config, "students")] == ["00123"]
    assert len(table_rows(config, "calendar")) == 1


def _cli_config(tmp_path: Path) -> Path:
    path = tmp_path / "district.toml"
    demo = (Path(__file__).parents[2] / "configs" / "demo.toml").read_text()
    path.write_text(demo.replace('"../state"', f'"{tmp_path / "state"}"'))
    return path


def test_a_refused_required_table_exits_4_and_loads_nothing(tmp_path):
    from typer.testing import CliRunner

    from ontrack.cli import app

    students = STUDENTS.replace(",disability,", ",").replace(",N,", ",")
    students = students.replace(",false,Ben", ",Ben")
    export = write_export(tmp_path / "export", students_csv=students)

    result = CliRunner().invoke(
        app, ["ingest", str(export), "--config", str(_cli_config(tmp_path))]
    )

    assert result.exit_code == 4, result.output
    assert result.output.replace("\n", " ").startswith(
        "refused: table students (students.csv): missing required column 'disability'; "
    )
    assert not (tmp_path / "state" / "warehouse.duckdb").exists()


def test_the_demo_starts_from_a_fresh_warehouse(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import features
    from ontrack.cli import app

    config_path = _cli_config(tmp_path)
    config = load_config(config_path)
    ingest(config, tmp_path)

    def stop(district):
        raise RuntimeError("stopped after ingest")

    monkeypatch.setattr(features, "build_snapshots", stop)
    result = CliRunner().invoke(
        app,
        ["demo", "--config", str(config_path), "--students", "10", "--schools", "3",
         "--years", "2"],
    )  # fmt: skip

    assert str(result.exception) == "stopped after ingest"
    held = {row[0] for row in table_rows(config, "students")}
    assert "00123" not in held
    assert len(held) > 0


def test_a_required_table_with_a_header_and_no_rows_refuses_the_run(config, tmp_path):
    ingest(config, tmp_path)
    warehouse = config.state_dir / "warehouse.duckdb"
    before = warehouse.read_bytes()
    header_only = STUDENTS.splitlines(keepends=True)[0]

    with pytest.raises(ExportRefused) as error:
        ingest(config, tmp_path / "second", students_csv=header_only)

    assert str(error.value) == (
        "required table students (students.csv) has a header but no rows; an export "
        "lists every row of its required tables"
    )
    assert warehouse.read_bytes() == before


def test_an_empty_table_a_kpi_is_labelled_from_is_warned_about(config, tmp_path):
    report = ingest(config, tmp_path, attendance_csv=ATTENDANCE_HEADER)

    # The config's one KPI is chronic absence: grades and assessments are not read.
    assert report.empty_tables == ("attendance",)
    assert report.describe().splitlines()[-1] == (
        "warning: the warehouse holds no attendance rows: every enrolled day counts "
        "as attended and nobody is chronically absent"
    )
    assert ingest(config, tmp_path).empty_tables == ()
