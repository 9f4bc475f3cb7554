import subprocess
import sys
from pathlib import Path

import pytest
from config_copies import config_in
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

    assert result.exit_code == 2
    assert result.output.endswith(
        "Error: Invalid value for '--school': a counselor token needs at least one\n"
    )


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

    assert result.exit_code == 2
    assert result.output.endswith(
        "Error: Invalid value for NAME: the token holder's name must not be blank\n"
    )


# Bad arguments are usage errors: exit 2 and click's one line, as for an unknown
# option; 1 is kept for a run that failed.
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["token", "admin", "x"],
            "Invalid value for 'role': Value error, 'admin' is not one of "
            "'counselor', 'leader', 'service'.",
        ),
        (
            ["ingest", "export", "--format", "xml"],
            "Invalid value for '--format': Value error, 'xml' is not one of "
            "'canonical', 'edfi-xml', 'student-table'.",
        ),
        (
            ["ingest", "table.csv", "--format", "student-table"],
            "Invalid value for '--mapping': --format student-table needs it: the "
            "TOML file naming the id, school, group and label columns",
        ),
        (
            [
                "ingest",
                "table.csv",
                "--format",
                "student-table",
                "--mapping",
                "map.toml",
                "--fresh",
            ],
            "Invalid value for '--fresh': a student table has no warehouse to "
            "replace: its rows are always written whole as the snapshots",
        ),
        (
            ["features", "--as-of", "2024-01-01", "--checkpoints"],
            "Invalid value for '--as-of' / '--checkpoints': give either --as-of or "
            "--checkpoints, not both",
        ),
        (
            ["demo-data", "--format", "xls"],
            "Invalid value for '--format': Value error, 'xls' is not one of 'csv', "
            "'parquet'.",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_argument(arguments, message):
    result = CliRunner().invoke(app, arguments)

    assert result.exit_code == 2
    assert result.output.endswith(f"Error: {message}\n")


def test_a_folder_as_config_exits_2_naming_it(tmp_path):
    result = CliRunner().invoke(app, ["features", "--config", str(tmp_path)])

    assert result.exit_code == 2
    assert result.output == (
        f"config error\n{tmp_path}: is a folder; give the config file in it\n"
    )


def test_a_bad_worker_count_stops_serve_before_it_starts(tmp_path):
    result = CliRunner().invoke(
        app,
        ["serve", "--config", str(config_in(DEMO_CONFIG, tmp_path))],
        env={"ONTRACK_SERVING_WORKERS": "abc"},
    )

    assert result.exit_code == 2
    assert result.output.endswith(
        "Error: Invalid value for ONTRACK_SERVING_WORKERS: 'abc': expected a whole "
        "number of worker processes, at least 1\n"
    )


def test_serve_on_a_port_in_use_says_so_without_a_traceback(tmp_path):
    import socket

    config = config_in(DEMO_CONFIG, tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = CliRunner().invoke(
            app, ["serve", "--config", str(config), "--port", str(port)]
        )

    assert result.exit_code == 1
    assert result.output == (
        f"error: port {port} on 127.0.0.1 is in use; pass --port\n"
    )


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


def test_ingest_fresh_replaces_what_an_earlier_export_held(tmp_path):
    import duckdb

    from features import generate_demo_district

    config = tmp_path / "district.toml"
    config.write_text(
        DEMO_CONFIG.read_text().replace('"../state"', f'"{tmp_path / "state"}"')
    )
    first, second = tmp_path / "first", tmp_path / "second"
    generate_demo_district(first, n_students=40, n_schools=3, n_years=1, seed=3)
    generate_demo_district(second, n_students=30, n_schools=3, n_years=1, seed=4)

    def students() -> int:
        path = tmp_path / "state" / "warehouse.duckdb"
        with duckdb.connect(str(path), read_only=True) as connection:
            return connection.execute("SELECT count(*) FROM students").fetchone()[0]

    runner = CliRunner()
    for export in (first, second):
        assert (
            runner.invoke(app, ["ingest", str(export), "-c", str(config)]).exit_code
            == 0
        )
    merged = students()
    result = runner.invoke(app, ["ingest", str(second), "-c", str(config), "--fresh"])
    assert result.exit_code == 0
    alone = students()

    # Demo ids are numbered from 1: the second export overlaps the first.
    assert alone < merged
    second_ids = {
        line.split(",")[0].strip('"')
        for line in (second / "students.csv").read_text().splitlines()[1:]
    }
    assert alone == len(second_ids)


def test_an_interrupted_query_ends_like_any_interrupt():
    import textwrap

    # A command interrupted while DuckDB runs a query (Ctrl-C during ingest).
    code = textwrap.dedent(
        """
        import sys
        import duckdb
        import ontrack.cli as cli

        @cli.app.command("stop")
        def stop():
            raise duckdb.InterruptException("Query interrupted")

        sys.argv = ["ontrack", "stop"]
        cli.run()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert (result.returncode, result.stdout, result.stderr) == (
        130,
        "interrupted\n",
        "",
    )
