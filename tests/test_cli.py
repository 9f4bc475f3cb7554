import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ontrack.cli import app

DEMO_CONFIG = Path(__file__).parents[1] / "configs" / "demo.toml"
HEAVY_LIBRARIES = (
    "pandas",
    "numpy",
    "lightgbm",
    "mlflow",
    "evidently",
    "bentoml",
    "shap",
    "sklearn",
    "duckdb",
    "ibis",
    "pandera",
)


def test_help_imports_no_heavy_library():
    # `ontrack --help` must answer at once: heavy imports belong inside commands.
    code = (
        "import sys, ontrack.cli; "
        f"print(','.join(m for m in {HEAVY_LIBRARIES!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert loaded == ""


def test_telemetry_is_off_once_ontrack_is_imported():
    import os

    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert os.environ["BENTOML_DO_NOT_TRACK"] == "true"
    assert os.environ["DO_NOT_TRACK"] == "true"


def test_bad_config_exits_2_with_the_message(tmp_path):
    bad = tmp_path / "district.toml"
    bad.write_text('[district]\nname = "x"\n[calendar]\ncheckpoints = ["10-01"]\n')

    result = CliRunner().invoke(app, ["train", "--config", str(bad)])

    assert result.exit_code == 2
    assert f"{bad}: [kpis]: required key is missing" in result.output


def test_token_prints_a_hash_that_matches_the_token():
    import hashlib

    result = CliRunner().invoke(app, ["token", "leader", "Dr Ada"])

    assert result.exit_code == 0
    token = result.output.split("it is not stored): ")[1].split()[0]
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert f'sha256 = "{digest}"' in result.output
    assert 'role = "leader"' in result.output


def test_counselor_token_needs_a_school():
    result = CliRunner().invoke(app, ["token", "counselor", "Sam"])

    assert result.exit_code == 1
    assert "a counselor token needs at least one --school" in result.output


def test_a_stage_run_out_of_order_ends_with_its_message_not_a_traceback(tmp_path):
    config = tmp_path / "district.toml"
    demo = (DEMO_CONFIG).read_text()
    config.write_text(demo.replace('"../state"', f'"{tmp_path / "state"}"'))

    result = subprocess.run(
        [sys.executable, "-m", "ontrack.cli", "features", "--config", str(config)],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "no warehouse at" in result.stdout
    assert "load the district first with `ontrack ingest`" in result.stdout


def test_token_entry_is_valid_toml_whatever_the_name():
    import tomllib

    result = CliRunner().invoke(
        app, ["token", "counselor", 'Ms "K" \\ O', "--school", "0001"]
    )

    entry = result.output[result.output.index("[[serving.tokens]]") :]
    token = tomllib.loads(entry)["serving"]["tokens"][0]
    assert token["name"] == 'Ms "K" \\ O'
    assert token["schools"] == ["0001"]


def test_blank_token_name_is_refused():
    result = CliRunner().invoke(app, ["token", "leader", " "])

    assert result.exit_code == 1
    assert "the token holder's name must not be blank" in result.output


def test_ingest_with_a_refused_table_exits_4_after_loading_the_rest(tmp_path):
    from features import generate_demo_district

    export = tmp_path / "export"
    generate_demo_district(export, n_students=40, n_schools=3, n_years=1, seed=3)
    attendance = (export / "attendance.csv").read_text().splitlines()
    header = attendance[0].split(",")
    keep = [i for i, name in enumerate(header) if name.strip('"') != "fraction_missed"]
    (export / "attendance.csv").write_text(
        "\n".join(",".join(line.split(",")[i] for i in keep) for line in attendance)
    )
    config = tmp_path / "district.toml"
    config.write_text(
        DEMO_CONFIG.read_text().replace('"../state"', f'"{tmp_path / "state"}"')
    )

    result = CliRunner().invoke(app, ["ingest", str(export), "--config", str(config)])

    assert result.exit_code == 4
    assert "refused tables: attendance" in result.output
    assert (tmp_path / "state" / "warehouse.duckdb").exists()
