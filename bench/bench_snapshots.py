"""How long the student snapshots take, against one DuckDB scan of the attendance table.

Builds (or reuses) two made-up districts under ``bench/out/`` (ignored by git): the
demo district of ``make demo`` and a large one of about 1,000,000 student-years
(250,000 students x 4 school years by default). Each is generated with
``features.generate_demo_district`` (parquet) and loaded with
``features.ingest_district``. Then, each in a fresh subprocess so that its peak
resident memory (``VmHWM``) is its own:

- the floor: ``SELECT student_id, sum(fraction_missed) FROM attendance GROUP BY 1``
  (the best of three runs);
- the demo district: ``build_snapshots`` for every checkpoint (all three files);
- the large district: the student snapshot of one checkpoint (the last school
  year's latest), built the way ``build_snapshots`` builds it, on a new
  connection each time; the best of three runs, like the floor (the first run's
  time is printed too).

Prints seconds, peak memory and the ratio to the floor of the same district. The
goal for the large district is under 10x the floor and under 4 GB. Not a test.

    .venv/bin/python bench/bench_snapshots.py                  # both districts
    .venv/bin/python bench/bench_snapshots.py --students 20000 # a smaller large one

A warehouse under ``bench/out/`` that lacks the tables ingest derives (one made
before they existed) is ingested again.

Measured here on 4 December 2026 (2 cores; other jobs moved timings by up to a
third between runs): the large district (250,000 students x 4 years, 20.4 million
attendance and 19.3 million grade rows) took 41 s to generate and 107 s to
ingest, of which 22-27 s build the derived tables (``features/_derived_tables.py``).
In twelve runs the floor took 0.19-0.21 s and the snapshot of 1 April 2025
(248,389 students) 1.69-1.94 s: 8.5x to 9.9x the floor of its run, median 9.2x,
at a 0.78-0.81 GB peak; the first of the three snapshot runs took 1.84-2.14 s.
Before the snapshot was timed as the best of three, 27 single runs against the
floor's best gave 8.2x to 14.1x (median 10.5x) with the code of two changes
earlier: the tests' grades were then found with a window over every matching stay
(0.1-0.15 s more). The demo district's 16 checkpoints, school snapshots and labels
took 2.2-2.3 s (0.65-0.67 GB).

The same bench before this work: 4.5-7.1 s, 19-31x the floor, 0.92-0.96 GB; and
before that 6.0-7.1 s (28-31x) at 1.8 GB; the demo district 3.9-4.4 s.

Notes
-----
What made the difference: ingest derives, once per export, what every snapshot
used to derive again: the enrolment stays, the instructional-day index, the
attendance rows grouped per student and day and placed in enrolment (with each
whole-day absence's streak so far, so the longest streak before a date is a
maximum rather than a window), and each student's whole-year attendance. Read
from there, this year's attendance fell from about 2.2 s to 0.4 s and last year's
totals from 1.0 s to 0.02 s. The stored days are ordered by school year and
student: grouping rows that arrive student by student took 0.26 s where the same
rows in date order took 0.38 s. Days and course marks are cut at the as-of dates
(a join with a handful of rows) before they meet the students, and the latest
term's lowest core mark is an arg-max in the one grouping per student instead of
a grouping per term (courses 0.5 s to 0.3 s). The parts are joined to the spine
in one chain, which saves Ibis about a tenth of a second of checking. A test's
grade is read from the stay covering its date (the stays keep the next stay's
entry) instead of a window over every matching stay.

Where the rest goes, in one quiet run before that last change (2.1 s): this
year's attendance 0.37, mobility 0.31, the final join of the parts 0.31, tests
0.29 (ordering their peer windows, for z-scores that are the same on every run,
cost nothing measurable), courses 0.26, last
year's failing marks 0.09, the spine and periods 0.10, behaviour 0.07; building
the Ibis expressions 0.24 and compiling them 0.16, whatever the size.

Tried and not kept: sharing one scan of the days between the totals and the
recent window (DuckDB then materialised 3.9 million rows: +0.2 s); the tests'
peer means as a grouping joined back null-safely and the latest result as an
arg-max (slower than the windows); not staging the parts (no change); not
preserving insertion order (no change).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DEMO_CONFIG = ROOT / "configs" / "demo.toml"
THREADS = 2
FLOOR_RUNS = 3
SNAPSHOT_RUNS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=250_000)
    parser.add_argument("--years", type=int, default=4)
    parser.add_argument("--schools", type=int, default=120)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(args.measure, Path(args.state))
        return

    districts = []
    if not args.skip_demo:
        districts.append(("demo", 12_000, 20, 4, "all"))
    districts.append(("large", args.students, args.schools, args.years, "one"))
    print(
        f"{'district':<8} {'student-years':>13} {'what':<28} {'seconds':>8} "
        f"{'peak MB':>8} {'x floor':>8}"
    )
    for name, students, schools, years, scope in districts:
        state = _prepare(name, students, schools, years)
        floor = _subprocess("floor", state)
        work = _subprocess(f"snapshots-{scope}", state)
        for label, result in (
            ("floor: GROUP BY attendance", floor),
            (
                "snapshots, "
                + ("all checkpoints" if scope == "all" else "1 checkpoint"),
                work,
            ),
        ):
            ratio = result["seconds"] / floor["seconds"]
            print(
                f"{name:<8} {students * years:>13,} {label:<28} "
                f"{result['seconds']:>8.2f} {result['peak_mb']:>8.0f} {ratio:>8.1f}"
            )
        print(f"{'':<8} {'':>13} {work['detail']}", flush=True)


def _prepare(name: str, students: int, schools: int, years: int) -> Path:
    """Generate and ingest a district once; later runs reuse its warehouse."""
    import features

    home = OUT / f"{name}-{students}x{years}"
    state = home / "state"
    if _has_derived_tables(state):
        return state
    config = _config(state)
    started = time.perf_counter()
    if not (home / "export").is_dir():
        features.generate_demo_district(
            home / "export",
            n_students=students,
            n_schools=schools,
            n_years=years,
            file_format="parquet",
        )
    generated = time.perf_counter()
    features.ingest_district(config, home / "export", fresh=True)
    print(
        f"{name}: generated in {generated - started:.0f} s (0: the export was "
        f"there), ingested in {time.perf_counter() - generated:.0f} s",
        file=sys.stderr,
    )
    return state


def _has_derived_tables(state: Path) -> bool:
    """Whether a warehouse exists and holds what this version of ingest derives
    (else it is ingested again)."""
    import ibis

    from features._derived_tables import stored_derived_tables

    if not (state / "warehouse.duckdb").is_file():
        return False
    con = ibis.duckdb.connect(state / "warehouse.duckdb", read_only=True)
    try:
        start = _config(state).district.school_year_start
        return bool(stored_derived_tables(con, start))
    finally:
        con.disconnect()


def _config(state: Path):
    from ontrack.config import Model, Paths, load_config

    config = load_config(DEMO_CONFIG)
    return config.model_copy(
        update={
            "paths": Paths(state_dir=state, mlruns_dir=state.parent / "mlruns"),
            "model": Model(n_jobs=THREADS),
        }
    )


def _subprocess(what: str, state: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, "--measure", what, "--state", str(state)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _measure(what: str, state: Path) -> None:
    """Run one measurement in this process and print it as one JSON line."""
    import ibis

    config = _config(state)
    detail = ""
    if what == "floor":
        con = ibis.duckdb.connect(
            state / "warehouse.duckdb", read_only=True, threads=THREADS
        )
        timings = []
        for _ in range(FLOOR_RUNS):
            started = time.perf_counter()
            con.raw_sql(
                "SELECT student_id, sum(fraction_missed) FROM attendance GROUP BY 1"
            ).fetchall()
            timings.append(time.perf_counter() - started)
        seconds = min(timings)
        detail = f"best of {FLOOR_RUNS}"
    elif what == "snapshots-all":
        import features

        started = time.perf_counter()
        summary = features.build_snapshots(config)
        seconds = time.perf_counter() - started
        detail = (
            f"{summary.student_rows:,} student rows, "
            f"{len(summary.rows_by_as_of)} as-of dates"
        )
    else:
        import features

        timings = []
        for _ in range(SNAPSHOT_RUNS):
            # A new connection each time, as a new `ontrack features` run has.
            con = ibis.duckdb.connect(
                state / "warehouse.duckdb", read_only=True, threads=THREADS
            )
            listed = con.raw_sql("SELECT table_name FROM duckdb_tables()").fetchall()
            tables = {name: con.table(name) for (name,) in listed}
            last_day = con.raw_sql("SELECT max(date) FROM calendar").fetchone()[0]
            # Calendars end in June, inside the school year named by their spring.
            as_of = config.checkpoint_dates(last_day.year)[-1]
            started = time.perf_counter()
            expr = features.student_snapshots(
                tables, [as_of], config, stage=features.duckdb_stage(con)
            )
            rows = con.to_pyarrow(expr).num_rows
            timings.append(time.perf_counter() - started)
            con.disconnect()
        seconds = min(timings)
        detail = (
            f"{rows:,} student rows as of {as_of.isoformat()}; best of "
            f"{SNAPSHOT_RUNS} like the floor (the first took {timings[0]:.2f} s)"
        )
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb(), "detail": detail}))


def _peak_mb() -> float:
    """Peak resident memory of this process, DuckDB's native allocations included.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` over from the
    parent across fork and exec, so a child of a big parent reports the parent's.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
