import datetime as dt
from pathlib import Path

import pytest

from ontrack.config import ConfigError, checkpoint_date, load_config

DEMO_CONFIG = Path(__file__).parents[1] / "configs" / "demo.toml"


def test_demo_config_loads_with_paths_beside_the_repo():
    config = load_config(DEMO_CONFIG)

    assert config.state_dir == DEMO_CONFIG.parents[1].resolve() / "state"
    assert config.mlflow_uri.endswith("/mlruns/mlflow.db")
    assert [kpi.name for kpi in config.kpis] == [
        "chronic_absence",
        "course_failure",
        "not_proficient_ela",
        "not_proficient_math",
    ]


def test_checkpoints_fall_in_autumn_or_spring_of_the_school_year():
    config = load_config(DEMO_CONFIG)

    assert config.checkpoint_dates(2024) == [
        dt.date(2023, 10, 1),
        dt.date(2023, 12, 1),
        dt.date(2024, 2, 1),
        dt.date(2024, 4, 1),
    ]
    assert checkpoint_date("08-15", 2024) == dt.date(2023, 8, 15)


def _write(tmp_path, text):
    path = tmp_path / "district.toml"
    path.write_text(text)
    return path


DIGEST_1, DIGEST_2 = "1" * 64, "2" * 64
# Two tokens: a leader's, then a counselor's whose name and digest a case picks.
TOKENS = f"""
[[serving.tokens]]
name = "a"
role = "leader"
sha256 = "{DIGEST_1}"
[[serving.tokens]]
name = "{{second}}"
role = "counselor"
schools = ["0001"]
sha256 = "{{digest}}"
"""

MINIMAL = """
[district]
name = "Tiny"
[calendar]
checkpoints = ["10-01"]
[[kpis]]
name = "chronic_absence"
label = "Chronically absent"
definition = "chronic_absence"
district_target = 0.2
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("[district]", '[district]\ncolour = "red"'),
            "[district] colour = 'red': unknown key; "
            "allowed keys: name, school_year_start",
        ),
        (
            ('checkpoints = ["10-01"]', 'checkpoints = ["13-01"]'),
            "[calendar] checkpoints = ['13-01']: "
            "expected a month-day like '10-01', got '13-01'",
        ),
        (
            ("district_target = 0.2", "district_target = 1.5"),
            "[kpis.chronic_absence] district_target = 1.5: "
            "Input should be less than or equal to 1",
        ),
        (
            ('definition = "chronic_absence"', 'definition = "chronic"'),
            "[kpis.chronic_absence] definition = 'chronic': Input should be "
            "'chronic_absence', 'course_failure' or 'not_proficient'",
        ),
        (
            ("[district]", "[privacy]\nmin_n = 0\n[district]"),
            "[privacy] min_n = 0: Input should be greater than or equal to 1",
        ),
        (
            ('name = "Tiny"\n', ""),
            "[district] name: required key is missing",
        ),
        # Strict numbers and booleans: true is not 1 (min_n 1 would show every
        # cell), and "yes" is not a boolean.
        (
            ("[district]", "[privacy]\nmin_n = true\n[district]"),
            "[privacy] min_n = true: Input should be a valid integer",
        ),
        (
            ("[district]", '[privacy]\nuse_protected_as_features = "yes"\n[district]'),
            "[privacy] use_protected_as_features = 'yes': Input should be a valid "
            "boolean",
        ),
        (
            ("district_target = 0.2", 'district_target = "0.2"'),
            "[kpis.chronic_absence] district_target = '0.2': Input should be a "
            "valid number",
        ),
        (
            ('checkpoints = ["10-01"]', 'checkpoints = ["02-29", "04-01"]'),
            "[calendar] checkpoints = ['02-29', '04-01']: "
            "02-29 is not in every year; use 02-28 or 03-01",
        ),
        (
            ('name = "Tiny"', 'name = "Tiny"\nschool_year_start = "02-29"'),
            "[district] school_year_start = '02-29': "
            "02-29 is not in every year; use 02-28 or 03-01",
        ),
        (
            (
                'name = "Tiny"\n[calendar]\ncheckpoints = ["10-01"]',
                'name = "Tiny"\nschool_year_start = "09-01"\n'
                '[calendar]\ncheckpoints = ["08-15", "04-01"]',
            ),
            "[calendar] checkpoints = ['08-15', '04-01']: checkpoint '08-15' falls "
            "outside the school year: with [district] school_year_start = '09-01' "
            "a year runs from 09-01 to the day before, and a checkpoint is dated in "
            "its autumn in August to December, in its spring in January to July",
        ),
        (
            ("district_target = 0.2", "district_target = 0.2\ncore_subjects = []"),
            "[kpis.chronic_absence] core_subjects = []: "
            "name at least one of 'ela', 'math', 'science', 'social_studies'",
        ),
        (
            ("district_target = 0.2", "district_target = 0.2\nabsence_threshold = 0"),
            "[kpis.chronic_absence] absence_threshold = 0: "
            "Input should be greater than 0",
        ),
        (
            ("district_target = 0.2", "district_target = 0.2\nabsence_threshold = 1"),
            "[kpis.chronic_absence] absence_threshold = 1: Input should be less than 1",
        ),
        (
            ("[district]", "[serving]\nmax_records = 20000\n[district]"),
            "[serving] max_records = 20000: "
            "Input should be less than or equal to 10000",
        ),
        (
            ("[district]", TOKENS.format(second="a", digest=DIGEST_2) + "[district]"),
            "[serving.tokens] name = 'a': token names must be distinct; "
            "entries 1 and 2 share it",
        ),
        (
            ("[district]", TOKENS.format(second="b", digest=DIGEST_1) + "[district]"),
            f"[serving.tokens] sha256 = '{DIGEST_1}': each holder needs a token of "
            "their own; 'a' and 'b' share this digest (make another with "
            "`ontrack token`)",
        ),
    ],
)
def test_bad_key_or_value_names_section_key_value_and_what_is_allowed(
    tmp_path, change, message
):
    path = _write(tmp_path, MINIMAL.replace(*change, 1))

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert str(raised.value) == f"{path}: {message}"


def test_missing_file_and_bad_toml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[district\nname="))


def test_not_proficient_kpi_needs_a_subject(tmp_path):
    text = MINIMAL.replace(
        'definition = "chronic_absence"', 'definition = "not_proficient"'
    )

    with pytest.raises(ConfigError) as raised:
        load_config(_write(tmp_path, text))

    assert "a not_proficient KPI needs subject = 'ela' or 'math'" in str(raised.value)


def test_a_config_that_is_not_utf8_names_the_file_and_the_byte(tmp_path):
    path = tmp_path / "district.toml"
    path.write_bytes(MINIMAL.replace("Tiny", "Ti\xf1y").encode("latin-1"))

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert str(raised.value) == (
        f"{path}: not UTF-8 text (byte 0xf1 at offset 22); "
        "a config file must be UTF-8 TOML"
    )


def test_a_folder_given_as_the_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path)

    assert str(raised.value) == f"{tmp_path}: is a folder; give the config file in it"


def test_a_state_dir_inside_a_file_is_a_config_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a folder")
    path = _write(tmp_path, MINIMAL + '[paths]\nstate_dir = "notes.txt/state"\n')

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert str(raised.value) == (
        f"{path}: [paths] state_dir = 'notes.txt/state': "
        f"{tmp_path / 'notes.txt'} is a file, not a folder"
    )


def test_a_checkpoint_in_the_summer_is_inside_the_school_year_and_accepted(tmp_path):
    # 07-15 with the school year starting 08-01 is 2024-07-15 in school year 2024:
    # the config cannot know the summer break; `ontrack features` warns about it.
    text = MINIMAL.replace('["10-01"]', '["07-15", "04-01"]')

    config = load_config(_write(tmp_path, text))

    assert config.checkpoint_dates(2024) == [dt.date(2024, 4, 1), dt.date(2024, 7, 15)]
