"""What happens to the demo district's students during one school year.

Each step takes the year's stays (see ``_demo_population``), the students' traits,
the calendar and a random generator, and returns the rows of one table as numpy
arrays keyed by stay index and day index. Nothing here loops over students or days.

Order within a year: programs are assigned first (from what the district knew of
last year), then absences (mentoring lowers them), then course marks (from each
term's absences), state tests (from the year's absences and tutoring) and
discipline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features._demo_calendar import N_TERMS, YearCalendar
from features._demo_population import LEVEL_OF_GRADE, Schools, Stays, Students

# Absence. A stay's expected share of days absent is
#   exp(ABSENCE_INTERCEPT + trait + yearly shock + grade shift + school effect),
# capped at MAX_ABSENCE_RATE. With the traits' spread (SD 0.72 persistent, 0.38
# yearly) about 28% of student-years reach 10% of days absent.
ABSENCE_INTERCEPT = np.log(0.040)
ABSENCE_YEAR_SD = 0.38
GRADE_ABSENCE_SHIFT = np.array(
    [0.15, 0.05, 0.0, 0.0, 0.0, 0.0, 0.05, 0.10, 0.15, 0.25, 0.30, 0.35, 0.50]
)
MAX_ABSENCE_RATE = 0.9
# Absences come in spells of consecutive instructional days (geometric lengths,
# mean 1.6 days: 62% of spells are single days, 2% last five days or more).
MEAN_SPELL_DAYS = 1.6
HALF_DAY_SHARE = 0.08
TARDY_INTERCEPT = np.log(0.022)
CATEGORIES = ("excused", "unexcused", "tardy")
EXCUSED, UNEXCUSED, TARDY = range(3)

# Programs and their true effects (see PROGRAM_EFFECTS in _demo_district).
PROGRAMS = ("tutoring", "mentoring", "attendance_intervention", "other")
TUTORING, MENTORING = 0, 1
TUTORING_GRADES = (3, 8)
MENTORING_GRADES = (6, 12)
TUTORING_MATH_EFFECT_Z = 0.20
MENTORING_ABSENCE_FACTOR = 0.80

# Course marks (0-100): a base by level, plus latent achievement and school effect,
# minus the share of the term's days missed.
MARK_BASE_BY_LEVEL = np.array([90.0, 87.0, 85.0])
MARK_PER_ACHIEVEMENT = 7.0
MARK_PER_ABSENCE = 60.0
COURSE_SD, TERM_SD = 4.0, 5.0
LETTER_CUTS = ((90, "A"), (80, "B"), (70, "C"), (65, "D"), (0, "F"))
LETTERS = tuple(letter for _, letter in LETTER_CUTS)
PASSING_MARK = 65
HIGH_SCHOOL_TERM_CREDITS = 0.25
COURSES_BY_LEVEL = (
    (("ELA", "ela"), ("MATH", "math"), ("SCI", "science"), ("SOC", "social_studies")),
    (
        ("ELA", "ela"),
        ("MATH", "math"),
        ("SCI", "science"),
        ("SOC", "social_studies"),
        ("ART", "other"),
    ),
    (
        ("ELA", "ela"),
        ("MATH", "math"),
        ("SCI", "science"),
        ("SOC", "social_studies"),
        ("ART", "other"),
        ("CTE", "other"),
    ),
)
MAX_COURSES = max(len(courses) for courses in COURSES_BY_LEVEL)

# State tests in spring. The score in z units is latent achievement plus school
# effect, minus 2 points of z per share of the year's days missed above 8%, plus
# noise; the scale score is SCALE_MEAN(grade) + SCALE_UNIT * z, rounded.
TEST_SUBJECTS = ("ela", "math", "science")
TESTED_GRADES = ((3, 4, 5, 6, 7, 8, 11), (3, 4, 5, 6, 7, 8, 11), (5, 8, 11))
TEST_NOISE_SD = 0.5
TEST_PER_ABSENCE = 2.0
EL_EXTRA_ELA_GAP = -0.2
SCALE_UNIT = 80.0
# Cuts (in z) between performance levels 1|2, 2|3 and 3|4; level 3 and up is
# proficient, about 47% of test takers.
LEVEL_CUTS_Z = np.array([-1.05, -0.35, 0.60])

INCIDENTS_PER_YEAR = np.array([0.03, 0.19, 0.14])  # for a behaviour trait of 0
INCIDENT_SHAPE = 0.35  # gamma mixing: most students none, a few many
BEHAVIORS = (
    "minor",
    "disruption",
    "defiance",
    "fighting",
    "bullying",
    "substance",
    "weapon",
    "other",
)
BEHAVIOR_SHARE_BY_LEVEL = np.array(
    [
        [0.30, 0.30, 0.20, 0.10, 0.05, 0.00, 0.01, 0.04],
        [0.20, 0.25, 0.22, 0.15, 0.08, 0.04, 0.02, 0.04],
        [0.15, 0.20, 0.22, 0.13, 0.05, 0.15, 0.03, 0.07],
    ]
)
ACTIONS = ("none", "in_school_suspension", "out_of_school_suspension", "expulsion")
ACTION_SHARE_BY_BEHAVIOR = np.array(
    [
        [0.85, 0.13, 0.02, 0.00],
        [0.55, 0.35, 0.10, 0.00],
        [0.45, 0.40, 0.15, 0.00],
        [0.05, 0.30, 0.63, 0.02],
        [0.25, 0.40, 0.35, 0.00],
        [0.05, 0.30, 0.60, 0.05],
        [0.00, 0.05, 0.75, 0.20],
        [0.60, 0.30, 0.10, 0.00],
    ]
)
# Days removed: in-school 1-2, out-of-school 1-5, expulsion 10-30 (inclusive).
DAYS_REMOVED_RANGE = np.array([[0, 0], [1, 2], [1, 5], [10, 30]])


@dataclass(frozen=True)
class ProgramStays:
    """Program participations: ``begin`` and ``end`` are inclusive day indices."""

    stay: np.ndarray
    program: np.ndarray
    begin: np.ndarray
    end: np.ndarray

    def window(self, program: int, n_stays: int) -> tuple[np.ndarray, np.ndarray]:
        """Each stay's first and last day in ``program``; an empty window if none."""
        begin = np.full(n_stays, np.iinfo(np.int64).max)
        end = np.full(n_stays, -1)
        mask = self.program == program
        begin[self.stay[mask]] = self.begin[mask]
        end[self.stay[mask]] = self.end[mask]
        return begin, end


@dataclass(frozen=True)
class AttendanceRows:
    """Absences and tardies, sorted by stay and day; tardies miss 0 of the day."""

    stay: np.ndarray
    day: np.ndarray
    category: np.ndarray
    fraction: np.ndarray


@dataclass(frozen=True)
class MarkRows:
    """One mark per stay, term and course; ``course`` indexes ``COURSE_CATALOG``."""

    stay: np.ndarray
    term: np.ndarray
    course: np.ndarray
    mark: np.ndarray
    credits_attempted: np.ndarray
    credits_earned: np.ndarray


@dataclass(frozen=True)
class TestRows:
    """One state test result per stay and subject, on the school's test day."""

    stay: np.ndarray
    subject: np.ndarray
    day: np.ndarray
    scale_score: np.ndarray
    performance_level: np.ndarray


@dataclass(frozen=True)
class IncidentRows:
    """Discipline incidents, sorted by stay and day."""

    stay: np.ndarray
    day: np.ndarray
    behavior: np.ndarray
    action: np.ndarray
    days_removed: np.ndarray


def course_catalog() -> tuple[np.ndarray, np.ndarray]:
    """Course ids and subjects by ``grade * MAX_COURSES + k`` (``""`` if unused)."""
    course_id = np.full(13 * MAX_COURSES, "", dtype=object)
    subject = np.full(13 * MAX_COURSES, "", dtype=object)
    for grade in range(13):
        for k, (prefix, code) in enumerate(COURSES_BY_LEVEL[LEVEL_OF_GRADE[grade]]):
            course_id[grade * MAX_COURSES + k] = f"{prefix}-{grade:02d}"
            subject[grade * MAX_COURSES + k] = code
    return course_id, subject


def scale_mean(grade: np.ndarray) -> np.ndarray:
    """Mean scale score of a grade's test: 2400 in grade 3, 35 points a grade."""
    return 2400.0 + 35.0 * (np.asarray(grade) - 3)


def scale_cuts(grade: np.ndarray) -> np.ndarray:
    """Lowest scale scores of performance levels 2, 3 and 4, one row per grade."""
    return np.rint(scale_mean(grade)[..., None] + SCALE_UNIT * LEVEL_CUTS_Z)


def assign_programs(
    stays: Stays,
    students: Students,
    calendar: YearCalendar,
    rng: np.random.Generator,
) -> ProgramStays:
    """Tutoring and mentoring, given mostly to students who struggled last year.

    Tutoring (grades 3-8) starts on the 21st to 41st instructional day and goes to
    30% of students not proficient in math last year, 3% of the others. Mentoring
    (grades 6-12) starts on the 26th to 51st day and goes to 35% of students
    chronically absent last year, 3% of the others. A stay must hold the start day;
    both run to the end of the stay.
    """
    n = len(stays)
    first = calendar.first_day[stays.school]
    rows = []
    for program, grades, start_range, flagged, p_flagged in (
        (TUTORING, TUTORING_GRADES, (20, 41), students.prior_math_not_proficient, 0.30),
        (MENTORING, MENTORING_GRADES, (25, 51), students.prior_chronic, 0.35),
    ):
        begin = first + rng.integers(*start_range, n)
        chance = np.where(flagged[stays.student], p_flagged, 0.03)
        joins = (
            (stays.grade >= grades[0])
            & (stays.grade <= grades[1])
            & (stays.entry <= begin)
            & (begin <= stays.exit)
            & (rng.random(n) < chance)
        )
        stay = np.flatnonzero(joins)
        rows.append((stay, np.full(len(stay), program), begin[stay], stays.exit[stay]))
    stay, program, begin, end = (
        np.concatenate(parts) for parts in zip(*rows, strict=True)
    )
    order = np.lexsort((program, stay))
    return ProgramStays(stay[order], program[order], begin[order], end[order])


def absence_rates(
    stays: Stays, students: Students, schools: Schools, rng: np.random.Generator
) -> np.ndarray:
    """Each stay's expected share of days absent, before any mentoring.

    The yearly shock is drawn per student, so a mover keeps it at the new school.
    """
    shock = rng.normal(0.0, ABSENCE_YEAR_SD, len(students))
    log_rate = (
        ABSENCE_INTERCEPT
        + students.absence_trait[stays.student]
        + shock[stays.student]
        + GRADE_ABSENCE_SHIFT[stays.grade]
        + schools.absence_effect[stays.school]
    )
    return np.minimum(np.exp(log_rate), MAX_ABSENCE_RATE)


def attendance_rows(
    stays: Stays,
    absence_rate: np.ndarray,
    students: Students,
    programs: ProgramStays,
    calendar: YearCalendar,
    rng: np.random.Generator,
) -> AttendanceRows:
    """Absence spells and tardies on the days of each stay.

    Spell starts fall on a stay's days in proportion to the calendar's absence
    weights (winter, Mondays and Fridays, the day before a break); their number is
    Poisson with mean ``rate * weighted days / MEAN_SPELL_DAYS``. While a student is
    in mentoring, each spell that would start is kept with probability
    ``MENTORING_ABSENCE_FACTOR``. A spell runs over consecutive instructional days
    and stops at the stay's exit day; overlapping spells merge.
    """
    n = len(stays)
    key_base = len(calendar.dates)
    weighted_days = (
        calendar.cum_weight[stays.exit + 1] - calendar.cum_weight[stays.entry]
    )
    n_spells = rng.poisson(absence_rate * weighted_days / MEAN_SPELL_DAYS)
    spell_stay = np.repeat(np.arange(n), n_spells)
    target = (
        calendar.cum_weight[stays.entry[spell_stay]]
        + rng.random(len(spell_stay)) * weighted_days[spell_stay]
    )
    start = np.clip(
        np.searchsorted(calendar.cum_weight, target, side="right") - 1,
        stays.entry[spell_stay],
        stays.exit[spell_stay],
    )
    mentor_begin, mentor_end = programs.window(MENTORING, n)
    mentored = (start >= mentor_begin[spell_stay]) & (start <= mentor_end[spell_stay])
    kept = ~mentored | (rng.random(len(start)) < MENTORING_ABSENCE_FACTOR)
    spell_stay, start = spell_stay[kept], start[kept]

    length = rng.geometric(1 / MEAN_SPELL_DAYS, len(start))
    row_stay = np.repeat(spell_stay, length)
    offset = np.arange(len(row_stay)) - np.repeat(np.cumsum(length) - length, length)
    row_day = np.repeat(start, length) + offset
    inside = row_day <= stays.exit[row_stay]
    absence_key = np.unique(row_stay[inside] * key_base + row_day[inside])

    high_school = LEVEL_OF_GRADE[stays.grade] == 2
    tardy_rate = np.exp(
        TARDY_INTERCEPT + students.tardy_trait[stays.student] + 0.3 * high_school
    )
    n_tardies = rng.poisson(tardy_rate * stays.n_days)
    tardy_stay = np.repeat(np.arange(n), n_tardies)
    tardy_day = stays.entry[tardy_stay] + (
        rng.random(len(tardy_stay)) * stays.n_days[tardy_stay]
    ).astype(np.int64)
    tardy_key = np.setdiff1d(
        np.unique(tardy_stay * key_base + tardy_day), absence_key, assume_unique=True
    )

    absence_stay = absence_key // key_base
    half_day = rng.random(len(absence_key)) < HALF_DAY_SHARE
    logit = students.unexcused_trait[stays.student] + 0.4 * high_school
    p_unexcused = (1 / (1 + np.exp(-logit)))[absence_stay]
    # Half days are mostly appointments, excused.
    unexcused = rng.random(len(absence_key)) < np.where(
        half_day, 0.3 * p_unexcused, p_unexcused
    )
    key = np.concatenate([absence_key, tardy_key])
    category = np.concatenate(
        [np.where(unexcused, UNEXCUSED, EXCUSED), np.full(len(tardy_key), TARDY)]
    )
    fraction = np.concatenate([np.where(half_day, 0.5, 1.0), np.zeros(len(tardy_key))])
    order = np.argsort(key, kind="stable")
    return AttendanceRows(
        stay=key[order] // key_base,
        day=key[order] % key_base,
        category=category[order],
        fraction=fraction[order],
    )


def mark_rows(
    stays: Stays,
    attendance: AttendanceRows,
    students: Students,
    schools: Schools,
    calendar: YearCalendar,
    rng: np.random.Generator,
) -> MarkRows:
    """A mark in every course for each quarter that ends during a stay.

    The absence that lowers a mark is the share of the quarter's enrolled days
    missed at that school (half days count half).
    """
    n = len(stays)
    absent = np.bincount(
        attendance.stay * N_TERMS + calendar.term[attendance.day],
        weights=attendance.fraction,
        minlength=n * N_TERMS,
    ).reshape(n, N_TERMS)
    term_end = calendar.term_end[stays.school]
    term_start = np.column_stack(
        [calendar.first_day[stays.school], term_end[:, :-1] + 1]
    )
    marked = (term_end >= stays.entry[:, None]) & (term_end <= stays.exit[:, None])
    enrolled_days = term_end - np.maximum(term_start, stays.entry[:, None]) + 1
    stay, term = np.nonzero(marked)
    term_absence = absent[stay, term] / enrolled_days[stay, term]

    level = LEVEL_OF_GRADE[stays.grade]
    n_courses = np.array([len(c) for c in COURSES_BY_LEVEL])[level[stay]]
    row_stay = np.repeat(stay, n_courses)
    row_term = np.repeat(term, n_courses)
    k = np.arange(len(row_stay)) - np.repeat(
        np.cumsum(n_courses) - n_courses, n_courses
    )
    course_effect = rng.normal(0.0, COURSE_SD, (n, MAX_COURSES))
    student = stays.student[row_stay]
    mark = (
        MARK_BASE_BY_LEVEL[level[row_stay]]
        + MARK_PER_ACHIEVEMENT
        * (
            students.achievement[student]
            + schools.achievement_effect[stays.school[row_stay]]
        )
        - MARK_PER_ABSENCE * np.repeat(term_absence, n_courses)
        + course_effect[row_stay, k]
        + rng.normal(0.0, TERM_SD, len(row_stay))
    )
    mark = np.clip(np.rint(mark), 0, 100).astype(np.int64)
    credits = np.where(level[row_stay] == 2, HIGH_SCHOOL_TERM_CREDITS, 0.0)
    return MarkRows(
        stay=row_stay,
        term=row_term,
        course=stays.grade[row_stay] * MAX_COURSES + k,
        mark=mark,
        credits_attempted=credits,
        credits_earned=np.where(mark >= PASSING_MARK, credits, 0.0),
    )


def letters(mark: np.ndarray) -> np.ndarray:
    """Letter grade codes (index into ``LETTERS``) of marks."""
    lowest = np.array([cut for cut, _ in LETTER_CUTS])
    return np.searchsorted(-lowest, -mark, side="left")


def test_rows(
    stays: Stays,
    year_absence_rate: np.ndarray,
    students: Students,
    schools: Schools,
    programs: ProgramStays,
    calendar: YearCalendar,
    rng: np.random.Generator,
) -> TestRows:
    """Spring state tests for students enrolled on their school's test day.

    ``year_absence_rate`` is per student (all stays of the year together). A few
    students miss the test, more often those who miss school. Students in
    tutoring on the math test day score ``TUTORING_MATH_EFFECT_Z`` higher.
    """
    n = len(stays)
    tutoring_begin, tutoring_end = programs.window(TUTORING, n)
    rate = year_absence_rate[stays.student]
    parts = []
    for subject, grades in enumerate(TESTED_GRADES):
        day = calendar.test_day[stays.school, subject]
        tested = (
            np.isin(stays.grade, grades)
            & (stays.entry <= day)
            & (day <= stays.exit)
            & (rng.random(n) >= 0.01 + 0.15 * rate)
        )
        tutored = (tutoring_begin <= day) & (day <= tutoring_end)
        z = (
            students.achievement[stays.student]
            + schools.achievement_effect[stays.school]
            + EL_EXTRA_ELA_GAP
            * (subject == 0)
            * students.english_learner[stays.student]
            - TEST_PER_ABSENCE * (rate - 0.08)
            + TUTORING_MATH_EFFECT_Z * (subject == 1) * tutored
            + rng.normal(0.0, TEST_NOISE_SD, n)
        )
        stay = np.flatnonzero(tested)
        scale = np.rint(scale_mean(stays.grade[stay]) + SCALE_UNIT * z[stay])
        cuts = scale_cuts(stays.grade[stay])
        level = 1 + (scale[:, None] >= cuts).sum(axis=1)
        parts.append((stay, np.full(len(stay), subject), day[stay], scale, level))
    stay, subject, day, scale, level = (
        np.concatenate(p) for p in zip(*parts, strict=True)
    )
    order = np.lexsort((subject, stay))
    return TestRows(
        stay=stay[order],
        subject=subject[order],
        day=day[order],
        scale_score=scale[order].astype(np.int64),
        performance_level=level[order].astype(np.int64),
    )


def incident_rows(
    stays: Stays,
    students: Students,
    calendar: YearCalendar,
    rng: np.random.Generator,
) -> IncidentRows:
    """Discipline incidents: negative binomial counts, most students none.

    The behaviour and the action taken follow shares by school level and by
    behaviour; incidents fall on days of the stay uniformly.
    """
    level = LEVEL_OF_GRADE[stays.grade]
    mean = (
        INCIDENTS_PER_YEAR[level]
        * np.exp(students.behavior_trait[stays.student])
        * stays.n_days
        / 180
    )
    mixed = mean * rng.gamma(INCIDENT_SHAPE, 1 / INCIDENT_SHAPE, len(stays))
    count = rng.poisson(mixed)
    stay = np.repeat(np.arange(len(stays)), count)
    day = stays.entry[stay] + (rng.random(len(stay)) * stays.n_days[stay]).astype(
        np.int64
    )
    behavior = _draw_rows(BEHAVIOR_SHARE_BY_LEVEL[level[stay]], rng)
    action = _draw_rows(ACTION_SHARE_BY_BEHAVIOR[behavior], rng)
    low, high = DAYS_REMOVED_RANGE[action].T
    days_removed = low + (rng.random(len(stay)) * (high - low + 1)).astype(np.int64)
    order = np.lexsort((day, stay))
    return IncidentRows(
        stay=stay[order],
        day=day[order],
        behavior=behavior[order],
        action=action[order],
        days_removed=days_removed[order],
    )


def _draw_rows(shares: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row of a (rows, categories) matrix of shares."""
    cumulative = np.cumsum(shares, axis=1)
    draw = rng.random(len(shares))[:, None] * cumulative[:, -1:]
    return np.minimum((draw >= cumulative).sum(axis=1), shares.shape[1] - 1)


def next_achievement(
    students: Students, year_absence_rate: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Latent achievement a year on: some drift, and missed school sets it back.

    A student who missed 30% of days loses 0.22 SD more than one who missed 8%.
    Students not enrolled this year (nan rate) only drift.
    """
    missed = np.nan_to_num(year_absence_rate, nan=0.08)
    drift = rng.normal(0.0, 0.15, len(students))
    return students.achievement + drift - 1.0 * (missed - 0.08)
