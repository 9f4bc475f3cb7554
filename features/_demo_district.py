"""A made-up school district in the canonical shape, for demos, tests and benchmarks.

:func:`generate_demo_district` writes the nine canonical tables of
``docs/CONTRACTS.md`` for a district of elementary (K-5), middle (6-8) and high
(9-12) schools over several school years. The same arguments give the same bytes.
Nothing in it is real; first and last names come from short built-in lists so that
privacy guards downstream have something to catch.

Assumptions (each with the module and constant that sets it):

Students (``_demo_population``)
    Race/ethnicity at U.S. public-school shares (NCES, fall 2022: 44% White, 29%
    Hispanic, 15% Black, 5.5% Asian, 5% two or more, 1% American Indian, 0.5%
    Pacific Islander); about 49% economically disadvantaged (more among Black,
    Hispanic and American Indian students), 10.5% English learners (mostly
    Hispanic and Asian), 15% with a disability (boys twice as often as girls).
    Disadvantaged families live more often in the poorer attendance zones.
    ``n_students`` are enrolled on the first day of every school year, spread evenly
    over grades K-12. Each year 6.5% of students move to another school of the
    same level mid-year, 4% leave the district mid-year (high-school leavers with
    high absence are recorded as drop-outs), 5% do not come back after the summer,
    3% arrive mid-year, about 1-2% repeat a grade and most grade 12 students
    graduate; new entrants refill the grades each fall.
Attendance (``_demo_outcomes``, ``_demo_calendar``)
    178-180 instructional days per school, from late August to the turn of May
    and June, with the usual holidays and breaks. A student's absence rate is
    log-normal: a persistent trait (with gaps: higher for disadvantaged students,
    students with a disability, Black, Hispanic, American Indian and Pacific
    Islander students, lower for Asian students; lower achievers miss more) plus
    a yearly shock, a rise through high school and a school effect. About 28% of
    student-years are chronically absent (at least 10% of enrolled days, with at
    least 10 days enrolled; U.S. 2022-23: 28%), and about 60% of chronically
    absent students are chronically absent again the next year (15% of the
    others). Absences come in spells of
    consecutive days, more in December to February, on Mondays and Fridays and on
    the day before a break; 8% are half days (``fraction_missed`` 0.5). Tardies
    (``fraction_missed`` 0) come on top, a few a year for most students.
Course marks and tests (``_demo_outcomes``)
    Quarterly marks 0-100 in 4 to 6 courses (letters A >= 90, B >= 80, C >= 70,
    D >= 65, F below; high-school courses carry 0.25 credits a quarter, earned
    with a D or better). Marks depend on latent achievement, the school and the
    share of the quarter's days missed. Spring state tests in ELA and math
    (grades 3-8 and 11) and science (grades 5, 8 and 11) depend on achievement,
    the school and the year's absence; levels 1-4 with level 3 and up proficient,
    about 47% of takers. Achievement persists, with gaps for disadvantaged
    students, English learners, students with a disability and by race/ethnicity,
    and falls back after a year of missed school. No fall interim test: the
    assessments table has no column to tell it from the state test.
Discipline (``_demo_outcomes``)
    Negative binomial counts: 85-90% of students have no incident in a year, a
    few have many; more in middle and high school, and more for boys, students
    with a disability, disadvantaged and Black students (as in the U.S. civil
    rights data). Suspended students stay enrolled, and suspension days are not
    recorded as absences.
Programs (``_demo_outcomes``)
    Not assigned at random: tutoring goes mostly to students not proficient in
    math last year and mentoring to students chronically absent last year, as a
    district would assign them. Their true effects are :data:`PROGRAM_EFFECTS`;
    a naive comparison of participants with others shows the opposite sign.

Notes
-----
For students who enter the district, "last year" in program assignment is a
record the export does not hold (an earlier year, or another district). Marks are
given only for quarters that end during a stay, so a mover's marks for the quarter
of the move come from the new school. Every exit date is filled in: all school
years are complete.

Measured on a 2-core machine: the defaults (12,000 students, 20 schools, 4 years)
take about 6 s; 250,000 students a year in 60 schools over 4 years (1,000,000
student-years, 20 million attendance and 19 million mark rows, 2.2 GB of CSV)
took 107 s with a peak of 1.9 GB of memory.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from features import _demo_outcomes as outcomes
from features import _demo_population as population
from features import _demo_tables as tables
from features._demo_calendar import build_year_calendar

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgramEffect:
    """The true effect of a program in the demo district, on one outcome."""

    program: str
    outcome: str
    effect: float
    unit: str

    def describe(self) -> str:
        return f"{self.program}: {self.effect:+g} {self.unit} {self.outcome}"


PROGRAM_EFFECTS = {
    "tutoring": ProgramEffect(
        program="tutoring",
        outcome="the spring state math test, for students in tutoring on the test "
        "day (0.20 of the 80-point scale unit; observed scores have an SD of "
        "about 95 points)",
        effect=outcomes.TUTORING_MATH_EFFECT_Z * outcomes.SCALE_UNIT,
        unit="scale-score points on",
    ),
    "mentoring": ProgramEffect(
        program="mentoring",
        outcome="the rate at which absence spells start, while in mentoring",
        effect=outcomes.MENTORING_ABSENCE_FACTOR - 1,
        unit="relative change in",
    ),
}

_MIN_STUDENTS, _MIN_SCHOOLS, _MAX_YEARS = 10, 3, 20
# Independent random streams, so that a change in one table leaves the others'
# draws alone: default_rng([seed, school_year, stream]).
_SCHOOLS, _CALENDAR, _FALL, _ENTRANTS, _STAYS, _PROGRAMS = range(6)
_RATES, _ATTENDANCE, _MARKS, _TESTS, _INCIDENTS, _SUMMER, _GROWTH = range(6, 13)


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate_demo_district` wrote; no student-level data."""

    folder: Path
    file_format: str
    seed: int
    school_years: tuple[int, ...]
    n_schools: int
    row_counts: Mapping[str, int]
    rates: Mapping[str, float]
    seconds: float
    program_effects: Mapping[str, ProgramEffect] = field(
        default_factory=lambda: dict(PROGRAM_EFFECTS)
    )

    def describe(self) -> str:
        """Plain lines for the console."""
        first, last = self.school_years[0], self.school_years[-1]
        lines = [
            f"demo district written to {self.folder} ({self.file_format}, "
            f"seed {self.seed}, {self.seconds:.1f} s)",
            f"school years {first - 1}-{first} to {last - 1}-{last} "
            f"({len(self.school_years)}), {self.n_schools} schools",
            *(
                f"  {name:<12} {count:>12,} rows"
                for name, count in self.row_counts.items()
            ),
            "over all years:",
            *(f"  {name:<36} {rate:6.1%}" for name, rate in self.rates.items()),
            "true program effects:",
            *(f"  {effect.describe()}" for effect in self.program_effects.values()),
        ]
        return "\n".join(lines)


def generate_demo_district(
    out_dir: Path,
    *,
    n_students: int = 12_000,
    n_schools: int = 20,
    n_years: int = 4,
    seed: int = 42,
    last_school_year: int = 2025,
    file_format: str = "csv",
) -> DemoSummary:
    """Write a made-up district's canonical tables to ``out_dir``.

    Parameters
    ----------
    out_dir
        Folder for the tables, one ``<table>.<file_format>`` file each. It is
        written in a temporary sibling folder and renamed into place at the end,
        so a crash leaves no half district. An existing folder is replaced only if
        it holds nothing but canonical table files.
    n_students
        Students enrolled on the first day of each school year (at least 10).
    n_schools
        Schools, at least 3: about 60% elementary, 20% middle, 20% high.
    n_years
        School years (1 to 20), ending with ``last_school_year``.
    seed
        Random seed; the same arguments give the same bytes.
    last_school_year
        The spring year of the last school year (2025 is 2024-2025).
    file_format
        ``"csv"`` or ``"parquet"``.

    Returns
    -------
    DemoSummary
        Row counts, school years, headline rates and the true program effects.
    """
    _check_arguments(
        n_students, n_schools, n_years, seed, last_school_year, file_format
    )
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    started = time.perf_counter()
    school_years = tuple(range(last_school_year - n_years + 1, last_school_year + 1))

    partial = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        with tables.TableFiles(partial, file_format) as files:
            rates = _simulate(files, n_students, n_schools, school_years, seed)
        _replace_folder(partial, out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise

    summary = DemoSummary(
        folder=out_dir,
        file_format=file_format,
        seed=seed,
        school_years=school_years,
        n_schools=n_schools,
        row_counts=dict(files.row_counts),
        rates=rates,
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "demo district %s: %d school years, %d schools, %d students, %d attendance "
        "rows in %.1f s",
        out_dir,
        n_years,
        n_schools,
        summary.row_counts["students"],
        summary.row_counts["attendance"],
        summary.seconds,
    )
    return summary


def _simulate(
    files: tables.TableFiles,
    n_students: int,
    n_schools: int,
    school_years: tuple[int, ...],
    seed: int,
) -> dict[str, float]:
    """Run the district year by year, appending each year's rows to ``files``."""

    def rng(stream: int, school_year: int = 0) -> np.random.Generator:
        return np.random.default_rng([seed, school_year, stream])

    schools = population.build_schools(n_schools, rng(_SCHOOLS))
    school_ids = tables.zero_padded(np.arange(1, n_schools + 1), tables.SCHOOL_ID_WIDTH)
    files.write("schools", tables.schools_table(schools, school_ids))
    tally = _Tally()
    students = None
    stays = None
    for school_year in school_years:
        started = time.perf_counter()
        calendar = build_year_calendar(
            school_year, n_schools, rng(_CALENDAR, school_year)
        )
        if students is None:
            students = population.first_fall(
                n_students, school_year, schools, rng(_FALL, school_year)
            )
        else:
            students = population.next_fall(
                students, stays, schools, rng(_SUMMER, school_year)
            )
            students = population.fill_fall(
                students, n_students, school_year, schools, rng(_FALL, school_year)
            )
        students, entrants = population.add_mid_year_entrants(
            students, n_students, school_year, schools, rng(_ENTRANTS, school_year)
        )
        stays = population.build_stays(
            students, entrants, schools, calendar, rng(_STAYS, school_year)
        )

        # The year's events, in the order they feed each other.
        programs = outcomes.assign_programs(
            stays, students, calendar, rng(_PROGRAMS, school_year)
        )
        absence_rate = outcomes.absence_rates(
            stays, students, schools, rng(_RATES, school_year)
        )
        attendance = outcomes.attendance_rows(
            stays,
            absence_rate,
            students,
            programs,
            calendar,
            rng(_ATTENDANCE, school_year),
        )
        days_enrolled = np.bincount(
            stays.student, weights=stays.n_days, minlength=len(students)
        )
        days_absent = np.bincount(
            stays.student[attendance.stay],
            weights=attendance.fraction,
            minlength=len(students),
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            year_absence_rate = days_absent / days_enrolled
        marks = outcomes.mark_rows(
            stays, attendance, students, schools, calendar, rng(_MARKS, school_year)
        )
        tests = outcomes.test_rows(
            stays,
            year_absence_rate,
            students,
            schools,
            programs,
            calendar,
            rng(_TESTS, school_year),
        )
        incidents = outcomes.incident_rows(
            stays, students, calendar, rng(_INCIDENTS, school_year)
        )

        student_ids = tables.zero_padded(
            np.arange(1, len(students) + 1), tables.STUDENT_ID_WIDTH
        )
        year = tables.YearTables(calendar, stays, student_ids, school_ids)
        files.write("calendar", year.calendar_table())
        files.write("enrollments", year.enrollments())
        files.write("attendance", year.attendance(attendance))
        files.write(
            "discipline",
            year.discipline(
                incidents, first_incident=files.row_counts["discipline"] + 1
            ),
        )
        files.write("grades", year.grades(marks))
        files.write("assessments", year.assessments(tests))
        files.write("programs", year.programs(programs))
        tally.add(stays, days_enrolled, days_absent, tests)
        logger.info(
            "demo school year %d: %d students in %d enrollments, %d attendance "
            "rows, %d marks, %d tests, %d incidents, %d program stays in %.1f s",
            school_year,
            len(np.unique(stays.student)),
            len(stays),
            len(attendance.stay),
            len(marks.stay),
            len(tests.stay),
            len(incidents.stay),
            len(programs.stay),
            time.perf_counter() - started,
        )

        students = _after_year(
            students,
            stays,
            year_absence_rate,
            days_enrolled,
            tests,
            rng(_GROWTH, school_year),
        )
    student_ids = tables.zero_padded(
        np.arange(1, len(students) + 1), tables.STUDENT_ID_WIDTH
    )
    files.write("students", tables.students_table(students, student_ids))
    return tally.rates()


def _after_year(
    students: population.Students,
    stays: population.Stays,
    year_absence_rate: np.ndarray,
    days_enrolled: np.ndarray,
    tests: outcomes.TestRows,
    rng: np.random.Generator,
) -> population.Students:
    """What the district knows at the end of the year, and achievement a year on."""
    counted = days_enrolled >= 10
    chronic = np.where(
        counted, year_absence_rate >= 0.10, students.prior_chronic
    ).astype(bool)
    math = tests.subject == 1
    not_proficient = students.prior_math_not_proficient.copy()
    not_proficient[stays.student[tests.stay[math]]] = tests.performance_level[math] < 3
    return dataclasses.replace(
        students,
        achievement=outcomes.next_achievement(students, year_absence_rate, rng),
        prior_chronic=chronic,
        prior_math_not_proficient=not_proficient,
    )


class _Tally:
    """Headline rates over all school years, for the summary."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(
            (
                "student_years",
                "chronic",
                "moved",
                "left",
                "ela_tests",
                "ela_proficient",
                "math_tests",
                "math_proficient",
            ),
            0,
        )

    def add(
        self,
        stays: population.Stays,
        days_enrolled: np.ndarray,
        days_absent: np.ndarray,
        tests: outcomes.TestRows,
    ) -> None:
        counted = days_enrolled >= 10
        c = self.counts
        c["student_years"] += int(counted.sum())
        c["chronic"] += int(
            (days_absent[counted] >= 0.10 * days_enrolled[counted]).sum()
        )
        c["moved"] += int((stays.exit_reason == population.TRANSFER).sum())
        c["left"] += int(
            np.isin(
                stays.exit_reason, [population.LEFT_DISTRICT, population.DROPPED_OUT]
            ).sum()
        )
        for code, subject in ((0, "ela"), (1, "math")):
            taken = tests.subject == code
            c[f"{subject}_tests"] += int(taken.sum())
            c[f"{subject}_proficient"] += int(
                (tests.performance_level[taken] >= 3).sum()
            )

    def rates(self) -> dict[str, float]:
        c = self.counts
        years = max(c["student_years"], 1)
        return {
            "chronically absent (student-years)": c["chronic"] / years,
            "changed school mid-year": c["moved"] / years,
            "left the district mid-year": c["left"] / years,
            "proficient in ELA": c["ela_proficient"] / max(c["ela_tests"], 1),
            "proficient in math": c["math_proficient"] / max(c["math_tests"], 1),
        }


def _check_arguments(
    n_students: int,
    n_schools: int,
    n_years: int,
    seed: int,
    last_school_year: int,
    file_format: str,
) -> None:
    checks = (
        ("n_students", n_students, _MIN_STUDENTS, None),
        ("n_schools", n_schools, _MIN_SCHOOLS, None),
        ("n_years", n_years, 1, _MAX_YEARS),
        ("seed", seed, 0, None),
        ("last_school_year", last_school_year, 1990, 2100),
    )
    for name, value, low, high in checks:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if value < low or (high is not None and value > high):
            allowed = f"at least {low}" if high is None else f"from {low} to {high}"
            raise ValueError(f"{name} must be {allowed}, got {value}")
    if file_format not in tables.FILE_FORMATS:
        raise ValueError(f"file_format must be 'csv' or 'parquet', got {file_format!r}")


def _table_files() -> set[str]:
    return {f"{name}.{ext}" for name in tables.TABLES for ext in tables.FILE_FORMATS}


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a folder that holds anything but canonical table files."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(
            f"demo district folder {out_dir} is a file; expected a folder or nothing"
        )
    strangers = sorted(
        p.name for p in out_dir.iterdir() if p.name not in _table_files()
    )
    if strangers:
        raise FileExistsError(
            f"demo district folder {out_dir} holds {len(strangers)} entries that are "
            f"not canonical tables (first: {strangers[0]!r}); refusing to replace "
            "it: choose a new or empty folder"
        )


def _replace_folder(partial: Path, out_dir: Path) -> None:
    """Move the finished tables into place, replacing an earlier demo district."""
    _check_replaceable(out_dir)
    if not out_dir.exists():
        partial.rename(out_dir)
        return
    previous = out_dir.parent / f".{out_dir.name}.previous-{os.getpid()}"
    out_dir.rename(previous)
    partial.rename(out_dir)
    shutil.rmtree(previous)
