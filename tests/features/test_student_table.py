"""The flat student table: a small handwritten table with every fault, exact mapping
errors, and the UCI student-performance files with their published pass rates."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from features import StudentTableError, read_student_table

DATA = Path(__file__).parent / "data" / "student-table"
REPO = Path(__file__).resolve().parents[2]
UCI = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "uci-student-performance"
)

SMALL_HEADER = "student;school;sex;age;paid;Mjob;G1;G2;G3"


@pytest.fixture(scope="module")
def small():
    return read_student_table(DATA / "small.csv", DATA / "small.mapping.toml")


def test_valid_rows_become_features_labels_and_groups(small):
    expected_features = pd.DataFrame(
        {
            "student_id": ["007", "013"],
            "school_id": ["GP", "MS"],
            "school_year": pd.array([2024, 2024], dtype="Int64"),
            "age": [16.0, 18.0],
            "paid": [1.0, 1.0],
            "Mjob": pd.Categorical(["teacher", "services"]),
        }
    )
    pd.testing.assert_frame_equal(small.features, expected_features)
    assert small.feature_columns == ["age", "paid", "Mjob"]
    pd.testing.assert_frame_equal(
        small.labels,
        pd.DataFrame(
            {
                "student_id": ["007", "013"],
                "school_year": pd.array([2024, 2024], dtype="Int64"),
                "kpi": ["course_failure", "course_failure"],
                "missed": [False, True],
                "school_id": ["GP", "MS"],
            }
        ),
    )
    pd.testing.assert_frame_equal(
        small.groups,
        pd.DataFrame({"student_id": ["007", "013"], "gender": ["female", "male"]}),
    )


def test_rule_breaking_rows_are_quarantined_with_their_reasons(small):
    assert small.quarantine[["_row", "student", "_reason"]].values.tolist() == [
        [2, "008", "student_id '008' appears in more than one row"],
        [3, "008", "student_id '008' appears in more than one row"],
        [4, "", "student_id is missing"],
        [5, "010", "sex: 'X' is not mapped to a gender code (mapped: F, M)"],
        [6, "011", "school_id is missing"],
        [7, "012", "label course_failure cannot be computed: G3 missing"],
    ]
    # The rows are kept as read, every column.
    assert list(small.quarantine.columns) == [
        "_row",
        *SMALL_HEADER.split(";"),
        "_reason",
    ]


def test_notes_name_what_was_left_out_and_the_label_rate(small):
    assert small.notes == [
        "left out of the features: G1, G2",
        "label course_failure = 'G3 < 10': 1 of 2 missed (50.0%); columns G3 are "
        "not features",
        "6 rows quarantined",
    ]


def _write(tmp_path: Path, mapping: str) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(mapping)
    return path


BASE_MAPPING = """\
[table]
separator = ";"
id_column = "student"
school_column = "school"
"""


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            BASE_MAPPING.replace('"student"', '"pupil"')
            + '[labels]\ncourse_failure = "G3 < 10"\n',
            "[table] id_column = 'pupil': no such column; the table has "
            + SMALL_HEADER.replace(";", ", "),
        ),
        (
            BASE_MAPPING + '[labels]\ncourse_failure = "H3 < 10"\n',
            "[labels] course_failure = 'H3 < 10': names no column of the table; "
            "it has " + SMALL_HEADER.replace(";", ", "),
        ),
        (
            BASE_MAPPING + '[labels]\ncourse_failure = "G3 + 1"\n',
            "[labels] course_failure = 'G3 + 1': must give true or false per row "
            "(a comparison such as 'G3 < 10')",
        ),
        (
            BASE_MAPPING
            + '[labels]\ncourse_failure = "G3 < 10"\n'
            + '[features]\ncolumns = ["age", "G3"]\n',
            "[features] columns: 'G3' is the id, the school, a group or read by a "
            "label, so it cannot be a model input",
        ),
        (
            BASE_MAPPING
            + '[groups]\ngender = { column = "sex", values = { F = "woman" } }\n'
            + '[labels]\ncourse_failure = "G3 < 10"\n',
            "[groups.gender.values] 'F' = 'woman': must be one of female, male, "
            "nonbinary",
        ),
        (
            BASE_MAPPING
            + '[groups]\nage = { column = "age", values = { "16" = "young" } }\n'
            + '[labels]\ncourse_failure = "G3 < 10"\n',
            "[groups.age]: not a protected attribute; expected one of gender, "
            "race_ethnicity, economically_disadvantaged, english_learner, disability",
        ),
        (
            BASE_MAPPING + 'sheet = "x"\n[labels]\ncourse_failure = "G3 < 10"\n',
            "[table.sheet] = 'x': unknown key",
        ),
        (BASE_MAPPING, "[labels]: required, but missing"),
    ],
)
def test_a_bad_mapping_is_refused_naming_key_value_and_what_is_allowed(
    tmp_path, mapping, message
):
    path = _write(tmp_path, mapping)
    with pytest.raises(StudentTableError) as error:
        read_student_table(DATA / "small.csv", path)
    assert str(error.value) == f"{path}: {message}"


def test_a_missing_table_is_refused(tmp_path):
    missing = tmp_path / "nothing.csv"
    with pytest.raises(StudentTableError) as error:
        read_student_table(missing, DATA / "small.mapping.toml")
    assert str(error.value) == f"{missing}: no such student table"


needs_uci = pytest.mark.skipif(not UCI.is_dir(), reason=f"reference data not at {UCI}")


def _raw_rows(name: str) -> list[dict[str, str]]:
    with open(UCI / name, newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


@needs_uci
@pytest.mark.parametrize(
    ("course", "file", "prefix", "students", "passed"),
    [
        ("math", "student-mat.csv", "mat-", 395, 265),
        ("portuguese", "student-por.csv", "por-", 649, 549),
    ],
)
def test_uci_tables_read_with_the_data_pass_rate(
    course, file, prefix, students, passed
):
    table = read_student_table(UCI / file, REPO / f"configs/uci-{course}.mapping.toml")
    raw = _raw_rows(file)

    # The pass counts, counted straight from the file: G3 of 10 or more.
    assert sum(int(row["G3"]) >= 10 for row in raw) == passed
    assert (len(raw), len(table.features), len(table.quarantine)) == (
        students,
        students,
        0,
    )
    missed = table.labels.loc[table.labels["kpi"] == "course_failure", "missed"]
    assert int(missed.sum()) == students - passed
    assert missed.tolist() == [int(row["G3"]) < 10 for row in raw]

    # Early-warning setting: no period grade, no outcome, no protected attribute.
    for column in ("G1", "G2", "G3", "sex", "school"):
        assert column not in table.feature_columns
    assert len(table.feature_columns) == 28
    assert table.features["student_id"].iloc[[0, -1]].tolist() == [
        f"{prefix}001",
        f"{prefix}{students}",
    ]
    assert table.features["schoolsup"].tolist() == [
        1.0 if row["schoolsup"] == "yes" else 0.0 for row in raw
    ]
    assert set(table.features["Mjob"].cat.categories) == {
        "at_home",
        "health",
        "other",
        "services",
        "teacher",
    }
    assert table.groups["gender"].value_counts().to_dict() == {
        {"F": "female", "M": "male"}[sex]: count
        for sex, count in pd.Series([row["sex"] for row in raw]).value_counts().items()
    }


def _table(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "table.csv"
    path.write_text("\n".join([SMALL_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


COUNTS_MAPPING = (DATA / "small.mapping.toml").read_text(encoding="utf-8") + (
    'counts = ["age"]\n'
)


def test_a_text_value_in_a_number_column_quarantines_its_row(tmp_path):
    table = read_student_table(
        _table(
            tmp_path,
            "007;GP;F;16;yes;teacher;12;13;14",
            "008;GP;M;old;no;other;8;9;8",
            "009;MS;M;17;no;other;8;9;x",
        ),
        DATA / "small.mapping.toml",
    )

    # age stays a number column: 2 of its 3 values are numbers.
    assert table.features.to_dict("list")["age"] == [16.0]
    assert table.quarantine[["_row", "_reason"]].values.tolist() == [
        [2, "age: 'old' is not a number (2 of 3 values of the column are)"],
        [
            3,
            "G3: 'x' is not a number (2 of 3 values of the column are); "
            "label course_failure cannot be computed: G3 missing",
        ],
    ]


def test_a_column_mostly_of_text_stays_a_category(tmp_path):
    table = read_student_table(
        _table(
            tmp_path,
            "007;GP;F;16;yes;teacher;12;13;14",
            "008;GP;M;17;no;1;8;9;8",
            "009;MS;M;17;no;other;8;9;12",
        ),
        DATA / "small.mapping.toml",
    )

    assert table.features["Mjob"].tolist() == ["teacher", "1", "other"]
    assert table.quarantine.empty


def test_a_count_must_be_a_whole_number_of_at_least_0(tmp_path):
    table = read_student_table(
        _table(
            tmp_path,
            "007;GP;F;16;yes;teacher;12;13;14",
            "008;GP;M;-5;no;other;8;9;8",
            "009;MS;M;1.5;no;other;8;9;12",
            "010;MS;M;old;no;other;8;9;12",
        ),
        _write(tmp_path, COUNTS_MAPPING),
    )

    assert table.features["student_id"].tolist() == ["007"]
    assert table.quarantine[["_row", "_reason"]].values.tolist() == [
        [2, "age: '-5' is not a count (a whole number of at least 0)"],
        [3, "age: '1.5' is not a count (a whole number of at least 0)"],
        [4, "age: 'old' is not a number (3 of 4 values of the column are)"],
    ]


def test_a_table_with_no_row_to_keep_is_refused(tmp_path):
    header_only = _table(tmp_path)
    with pytest.raises(StudentTableError) as error:
        read_student_table(header_only, DATA / "small.mapping.toml")
    assert str(error.value) == (
        f"{header_only}: no student row to keep (0 rows read, 0 quarantined); "
        "refused as a whole"
    )

    bad = _table(
        tmp_path,
        *(f"00{n};;F;16;yes;teacher;12;13;14" for n in range(1, 6)),
    )
    with pytest.raises(StudentTableError) as error:
        read_student_table(bad, DATA / "small.mapping.toml")
    assert str(error.value) == (
        f"{bad}: no student row to keep (5 rows read, 5 quarantined; "
        "row 1: school_id is missing; row 2: school_id is missing; "
        "row 3: school_id is missing; 2 more); refused as a whole"
    )


def test_an_empty_file_is_refused_naming_it(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(StudentTableError) as error:
        read_student_table(empty, DATA / "small.mapping.toml")
    assert str(error.value) == (
        f"{empty}: the file is empty; expected a header line and one row per student"
    )
