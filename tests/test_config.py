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
