"""Who is enrolled where in the demo district: schools, students and their stays.

Schools come in three levels (elementary K-5, middle 6-8, high 9-12). Each
elementary school is the school of one attendance *zone*; zone ``z`` feeds middle
school ``z mod n_middle`` and high school ``z mod n_high``. Zones differ in size and
in poverty, and economically disadvantaged families are more likely to live in the
poorer zones, so schools differ in their mix of students.

A student is an index into the arrays of :class:`Students`; the arrays grow as new
students arrive and never shrink. Traits drawn at arrival (latent achievement,
absence, tardiness, unexcused share and behaviour) carry the group gaps and persist
from year to year. A *stay* is one row of the enrollments table: a student at a
school for part or all of one school year, from an entry day to an exit day, both
inclusive day indices into that year's calendar.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from features._demo_calendar import YearCalendar

LEVELS = ("elementary", "middle", "high")
LEVEL_GRADES = ((0, 5), (6, 8), (9, 12))
LEVEL_OF_GRADE = np.array([0] * 6 + [1] * 3 + [2] * 4)
N_GRADES = 13

GENDERS = ("female", "male", "nonbinary")
GENDER_SHARE = np.array([0.487, 0.503, 0.010])
RACES = (
    "hispanic",
    "white",
    "black",
    "asian",
    "two_or_more",
    "american_indian",
    "pacific_islander",
)
# NCES, fall 2022 public school enrollment by race/ethnicity.
RACE_SHARE = np.array([0.29, 0.44, 0.15, 0.055, 0.05, 0.01, 0.005])
# Chance of being economically disadvantaged or an English learner by race; with
# the shares above they give about 49% and 10.5% overall.
ED_BY_RACE = np.array([0.66, 0.33, 0.68, 0.30, 0.45, 0.66, 0.55])
EL_BY_RACE = np.array([0.28, 0.015, 0.04, 0.17, 0.03, 0.08, 0.12])
# Boys are identified about twice as often as girls; about 15% overall.
DISABILITY_BY_GENDER = np.array([0.105, 0.195, 0.15])

# Gaps in latent achievement (standard deviations) and in the log of the absence
# rate, by group. With the test noise they give score gaps of roughly half to
# three quarters of a standard deviation between the most and least advantaged
# groups, and chronic absence of about 20% for White and 35-40% for Black, Hispanic
# and American Indian students.
ACHIEVEMENT_GAP_BY_RACE = np.array([-0.25, 0.0, -0.45, 0.25, -0.05, -0.40, -0.20])
ACHIEVEMENT_GAP_ED = -0.35
ACHIEVEMENT_GAP_EL = -0.45
ACHIEVEMENT_GAP_DISABILITY = -0.65
ABSENCE_GAP_BY_RACE = np.array([0.20, 0.0, 0.30, -0.40, 0.10, 0.45, 0.35])
ABSENCE_GAP_ED = 0.45
ABSENCE_GAP_DISABILITY = 0.30
# Standard deviation of the persistent part of a student's log absence rate; a
# yearly shock adds the rest (see _demo_outcomes.ABSENCE_YEAR_SD).
ABSENCE_PERSISTENT_SD = 0.72
# Cuts on a newcomer's traits (plus noise) for the record of last year.
PRIOR_CHRONIC_CUT = 0.77
PRIOR_NOT_PROFICIENT_CUT = -0.2
# Suspensions fall more often on boys, students with disabilities and Black
# students (as in the U.S. civil rights data collection).
BEHAVIOR_GAP_BY_RACE = np.array([0.05, 0.0, 0.45, -0.50, 0.10, 0.30, 0.10])
BEHAVIOR_GAP_BY_GENDER = np.array([0.0, 0.45, 0.20])
BEHAVIOR_GAP_DISABILITY = 0.40
BEHAVIOR_GAP_ED = 0.25

# Mobility per school year: moving to another school of the district mid-year,
# leaving the district mid-year, and not coming back after the summer. Economically
# disadvantaged families move about twice as often as others.
MOVE_RATE = 0.065
LEAVE_RATE = 0.04
SUMMER_LEAVE_RATE = 0.05
MID_YEAR_ENTRANT_SHARE = 0.03
EXIT_REASONS = (
    "transfer",
    "left_district",
    "graduated",
    "dropped_out",
    "end_of_year",
    "other",
)
TRANSFER, LEFT_DISTRICT, GRADUATED, DROPPED_OUT, END_OF_YEAR = range(5)

FIRST_NAMES = (
    "Avery", "Blake", "Camila", "Dmitri", "Elena", "Farah", "Gabriel", "Hana",
    "Isaac", "Jada", "Kenji", "Layla", "Mateo", "Nia", "Omar", "Priya", "Quinn",
    "Rosa", "Samuel", "Tariq", "Uma", "Victor", "Wren", "Ximena", "Yusuf", "Zoe",
    "Aiden", "Beatriz", "Caleb", "Deja", "Emil", "Fiona", "Grace", "Hugo",
    "Imani", "Jonah", "Kai", "Luca", "Maya", "Noah",
)  # fmt: skip
LAST_NAMES = (
    "Abbott", "Baptiste", "Chen", "Delgado", "Eriksen", "Fofana", "Garcia",
    "Haddad", "Ibarra", "Jensen", "Kowalski", "Lopez", "Mensah", "Nguyen",
    "Okafor", "Patel", "Quintero", "Rossi", "Singh", "Tanaka", "Underwood",
    "Vasquez", "Williams", "Xu", "Yilmaz", "Zimmerman", "Brooks", "Castillo",
    "Dubois", "Evans", "Fischer", "Green", "Hughes", "Ito", "Johnson", "Kim",
)  # fmt: skip
SCHOOL_NAMES = (
    "Maple", "Cedar Ridge", "Lincoln", "Riverside", "Harriet Tubman", "Oak Grove",
    "Sequoia", "Jefferson", "Cesar Chavez", "Willow Creek", "Roosevelt",
    "Sojourner Truth", "Lakeview", "Franklin", "Mountain View", "Sunnyside",
    "Hillcrest", "Garfield", "Ellis Park", "Pinecrest", "Washington", "Kennedy",
)  # fmt: skip


@dataclass(frozen=True)
class Schools:
    """The schools of the district, by index ``0 .. n_schools - 1``.

    Elementary schools come first, then middle, then high schools.
    ``zone_school[z, level]`` is the school that serves zone ``z`` at that level.
    """

    level: np.ndarray
    name: tuple[str, ...]
    poverty: np.ndarray
    achievement_effect: np.ndarray
    absence_effect: np.ndarray
    zone_school: np.ndarray
    zone_weight: np.ndarray

    def __len__(self) -> int:
        return len(self.level)

    def of_level(self, level: int) -> np.ndarray:
        return np.flatnonzero(self.level == level)


@dataclass(frozen=True)
class Students:
    """Every student who has been enrolled so far, by index; ids are index + 1.

    The traits and the fields above ``achievement`` are fixed at arrival. The fields
    from ``achievement`` on describe the student at the start of the coming (or
    current) school year: latent achievement, grade, school, whether they are
    enrolled, and what the district knows of last year (chronically absent, not
    proficient in math) when it assigns programs.
    """

    gender: np.ndarray
    race: np.ndarray
    economically_disadvantaged: np.ndarray
    english_learner: np.ndarray
    disability: np.ndarray
    birth_date: np.ndarray
    first_name: np.ndarray
    last_name: np.ndarray
    zone: np.ndarray
    absence_trait: np.ndarray
    tardy_trait: np.ndarray
    unexcused_trait: np.ndarray
    behavior_trait: np.ndarray
    achievement: np.ndarray
    grade: np.ndarray
    school: np.ndarray
    enrolled: np.ndarray
    prior_chronic: np.ndarray
    prior_math_not_proficient: np.ndarray

    def __len__(self) -> int:
        return len(self.gender)

    def extend(self, other: Students) -> Students:
        """These students followed by ``other``'s (whose indices shift up)."""
        return Students(
            **{
                field.name: np.concatenate(
                    [getattr(self, field.name), getattr(other, field.name)]
                )
                for field in dataclasses.fields(self)
            }
        )


@dataclass(frozen=True)
class Stays:
    """One school year's enrollments, sorted by student and entry day.

    ``entry`` and ``exit`` are day indices into the year's calendar, inclusive at
    both ends, on the calendar of ``school``.
    """

    student: np.ndarray
    school: np.ndarray
    grade: np.ndarray
    entry: np.ndarray
    exit: np.ndarray
    exit_reason: np.ndarray

    def __len__(self) -> int:
        return len(self.student)

    @property
    def n_days(self) -> np.ndarray:
        """Instructional days enrolled in each stay."""
        return self.exit - self.entry + 1


def build_schools(n_schools: int, rng: np.random.Generator) -> Schools:
    """Split the schools into levels and draw their zones and effects."""
    n_middle = max(1, round(0.2 * n_schools))
    n_high = max(1, round(0.2 * n_schools))
    n_elementary = n_schools - n_middle - n_high
    level = np.repeat([0, 1, 2], [n_elementary, n_middle, n_high])

    zone_poverty = rng.normal(0.0, 1.0, n_elementary)
    zone_weight = np.exp(rng.normal(0.0, 0.25, n_elementary))
    zones = np.arange(n_elementary)
    zone_school = np.stack(
        [
            zones,
            n_elementary + zones % n_middle,
            n_elementary + n_middle + zones % n_high,
        ],
        axis=1,
    )
    # A middle or high school is as poor as the zones it serves.
    poverty = np.zeros(n_schools)
    for lvl in range(3):
        served = np.bincount(
            zone_school[:, lvl], weights=zone_poverty * zone_weight, minlength=n_schools
        )
        size = np.bincount(
            zone_school[:, lvl], weights=zone_weight, minlength=n_schools
        )
        mask = size > 0
        poverty[mask] = served[mask] / size[mask]

    # Schools in poorer zones score a little lower and miss a little more school,
    # beyond what their students' own backgrounds explain.
    achievement_effect = rng.normal(0.0, 0.15, n_schools) - 0.08 * poverty
    absence_effect = rng.normal(0.0, 0.10, n_schools) + 0.06 * poverty
    name = tuple(_school_name(s, level[s]) for s in range(n_schools))
    return Schools(
        level=level,
        name=name,
        poverty=poverty,
        achievement_effect=achievement_effect,
        absence_effect=absence_effect,
        zone_school=zone_school,
        zone_weight=zone_weight,
    )


def _school_name(school: int, level: int) -> str:
    base = SCHOOL_NAMES[school % len(SCHOOL_NAMES)]
    if school >= len(SCHOOL_NAMES):
        base = f"{base} {school // len(SCHOOL_NAMES) + 1}"
    return f"{base} {('Elementary', 'Middle', 'High')[level]} School"


def new_students(
    grade: np.ndarray,
    school_year: int,
    schools: Schools,
    rng: np.random.Generator,
    *,
    enrolled: bool,
) -> Students:
    """Students arriving in ``school_year`` at the given grades, with their traits."""
    n = len(grade)
    gender = rng.choice(3, size=n, p=GENDER_SHARE)
    race = rng.choice(len(RACES), size=n, p=RACE_SHARE)
    ed = rng.random(n) < ED_BY_RACE[race]
    el = rng.random(n) < EL_BY_RACE[race]
    disability = rng.random(n) < DISABILITY_BY_GENDER[gender]

    # Disadvantaged families live more often in the poorer zones.
    zone_poverty = schools.poverty[schools.zone_school[:, 0]]
    zone = np.where(
        ed,
        _weighted_choice(schools.zone_weight * np.exp(0.6 * zone_poverty), n, rng),
        _weighted_choice(schools.zone_weight * np.exp(-0.6 * zone_poverty), n, rng),
    )

    # Achievement and absence are negatively correlated (r = -0.3) before the gaps.
    z_achievement = rng.normal(size=n)
    z_absence = -0.3 * z_achievement + np.sqrt(1 - 0.09) * rng.normal(size=n)
    achievement = (
        0.9 * z_achievement
        + ACHIEVEMENT_GAP_BY_RACE[race]
        + ACHIEVEMENT_GAP_ED * ed
        + ACHIEVEMENT_GAP_EL * el
        + ACHIEVEMENT_GAP_DISABILITY * disability
    )
    absence_trait = (
        ABSENCE_PERSISTENT_SD * z_absence
        + ABSENCE_GAP_BY_RACE[race]
        + ABSENCE_GAP_ED * ed
        + ABSENCE_GAP_DISABILITY * disability
    )
    behavior_trait = (
        0.35 * z_absence
        - 0.25 * z_achievement
        + 0.5 * rng.normal(size=n)
        + BEHAVIOR_GAP_BY_RACE[race]
        + BEHAVIOR_GAP_BY_GENDER[gender]
        + BEHAVIOR_GAP_DISABILITY * disability
        + BEHAVIOR_GAP_ED * ed
    )
    # A kindergartner in school year 2025 turned 5 by 1 September 2024: born from
    # 2 September 2018 to 1 September 2019. One student in 25 is a year older.
    older = rng.random(n) < 0.04
    birth_date = _september_2nd(school_year - 7 - grade - older) + rng.integers(
        0, 365, n
    )
    school = schools.zone_school[zone, LEVEL_OF_GRADE[grade]]
    return Students(
        gender=gender,
        race=race,
        economically_disadvantaged=ed,
        english_learner=el,
        disability=disability,
        birth_date=birth_date,
        first_name=rng.integers(0, len(FIRST_NAMES), n),
        last_name=rng.integers(0, len(LAST_NAMES), n),
        zone=zone,
        absence_trait=absence_trait,
        tardy_trait=0.3 * z_absence + 0.6 * rng.normal(size=n),
        unexcused_trait=-0.6 + 0.7 * ed + 0.4 * z_absence + 0.7 * rng.normal(size=n),
        behavior_trait=behavior_trait,
        achievement=achievement,
        grade=grade.astype(np.int64),
        school=school,
        enrolled=np.full(n, enrolled),
        # What the district knows of a newcomer's last year: a record from before
        # the export window or from another district, which the export does not
        # hold. Drawn from the traits so that about as many are flagged as in the
        # years the export does hold (29% chronically absent, 52% not proficient).
        prior_chronic=absence_trait + rng.normal(0.0, 0.38, n) >= PRIOR_CHRONIC_CUT,
        prior_math_not_proficient=achievement + rng.normal(0.0, 0.5, n)
        < PRIOR_NOT_PROFICIENT_CUT,
    )


def _september_2nd(year: np.ndarray) -> np.ndarray:
    """2 September of each year, as datetime64[D]."""
    january_1st = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return january_1st + 244 + leap


def _weighted_choice(
    weight: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    return rng.choice(len(weight), size=n, p=weight / weight.sum())


def first_fall(
    n_students: int, school_year: int, schools: Schools, rng: np.random.Generator
) -> Students:
    """The district's students on the first day of its first school year."""
    grade = np.repeat(np.arange(N_GRADES), _split_evenly(n_students, N_GRADES))
    return new_students(grade, school_year, schools, rng, enrolled=True)


def fill_fall(
    students: Students,
    n_students: int,
    school_year: int,
    schools: Schools,
    rng: np.random.Generator,
) -> Students:
    """Add new entrants so that ``n_students`` are enrolled on the first day.

    New entrants fill the grades furthest below an even split of ``n_students``
    over the 13 grades: all of kindergarten, and the places left in other grades by
    graduates and leavers.
    """
    continuing = np.bincount(students.grade[students.enrolled], minlength=N_GRADES)
    n_new = n_students - continuing.sum()
    if n_new <= 0:
        return students
    shortfall = np.maximum(_split_evenly(n_students, N_GRADES) - continuing, 0)
    if shortfall.sum() == 0:
        shortfall = np.ones(N_GRADES, dtype=np.int64)
    per_grade = _split_proportionally(n_new, shortfall)
    grade = np.repeat(np.arange(N_GRADES), per_grade)
    return students.extend(
        new_students(grade, school_year, schools, rng, enrolled=True)
    )


def add_mid_year_entrants(
    students: Students,
    n_students: int,
    school_year: int,
    schools: Schools,
    rng: np.random.Generator,
) -> tuple[Students, np.ndarray]:
    """Students new to the district who arrive during the year, and their indices."""
    n_new = rng.binomial(n_students, MID_YEAR_ENTRANT_SHARE)
    grade = rng.integers(0, N_GRADES, n_new)
    arrivals = new_students(grade, school_year, schools, rng, enrolled=False)
    first = len(students)
    return students.extend(arrivals), np.arange(first, first + n_new)


def build_stays(
    students: Students,
    entrants: np.ndarray,
    schools: Schools,
    calendar: YearCalendar,
    rng: np.random.Generator,
) -> Stays:
    """One school year's enrollments: fall stays, mid-year moves, leavers, entrants.

    Every enrolled student starts on their school's first day. About 4% leave the
    district on a day between the 16th instructional day and the 16th before the
    end (high-school leavers with high absence are mostly drop-outs); about 6.5%
    move to another school of the same level on such a day and start there on the
    first instructional day at least 1 to 10 calendar days later. ``entrants`` start
    on a day from the 11th to the 21st before the end. Grade 12 students still
    there on the last day graduate, most of them.
    """
    roster = np.flatnonzero(students.enrolled)
    school = students.school[roster]
    grade = students.grade[roster]
    first = calendar.first_day[school]
    last = calendar.last_day[school]
    ed = students.economically_disadvantaged[roster]

    # One draw decides leave, move or stay, so the three are exclusive.
    mobility = np.where(ed, 1.3, 0.7)
    n_same_level = np.bincount(schools.level, minlength=3)[LEVEL_OF_GRADE[grade]]
    p_leave = LEAVE_RATE * mobility
    p_move = np.where(n_same_level > 1, MOVE_RATE * mobility, 0.0)
    draw = rng.random(len(roster))
    leaves = draw < p_leave
    moves = ~leaves & (draw < p_leave + p_move)
    event_day = first + rng.integers(15, last - first - 15)
    exit_day = np.where(leaves | moves, event_day, last)

    drop_chance = 1 / (1 + np.exp(-(2.0 * students.absence_trait[roster] - 0.8)))
    drops_out = leaves & (grade >= 9) & (rng.random(len(roster)) < drop_chance)
    reason = np.full(len(roster), END_OF_YEAR)
    reason[leaves] = LEFT_DISTRICT
    reason[drops_out] = DROPPED_OUT
    reason[moves] = TRANSFER

    # The second stay of each mover, at another school of the same level.
    movers = np.flatnonzero(moves)
    new_school = _other_school_of_level(school[movers], schools, rng)
    earliest = calendar.dates[exit_day[movers]] + rng.integers(1, 11, len(movers))
    move_entry = _first_day_on_or_after(new_school, earliest, calendar)

    entrant_school = students.school[entrants]
    entrant_first = calendar.first_day[entrant_school]
    entrant_last = calendar.last_day[entrant_school]
    entrant_entry = entrant_first + rng.integers(10, entrant_last - entrant_first - 20)

    stays = Stays(
        student=np.concatenate([roster, roster[movers], entrants]),
        school=np.concatenate([school, new_school, entrant_school]),
        grade=np.concatenate([grade, grade[movers], students.grade[entrants]]),
        entry=np.concatenate([first, move_entry, entrant_entry]),
        exit=np.concatenate([exit_day, calendar.last_day[new_school], entrant_last]),
        exit_reason=np.concatenate(
            [
                reason,
                np.full(len(movers), END_OF_YEAR),
                np.full(len(entrants), END_OF_YEAR),
            ]
        ),
    )
    # Grade 12 students who finish the year graduate, the weaker ones less often.
    finishing = (stays.grade == 12) & (stays.exit_reason == END_OF_YEAR)
    achievement = students.achievement[stays.student]
    graduates = rng.random(len(stays)) < 1 / (1 + np.exp(-(2.8 + achievement)))
    stays.exit_reason[finishing & graduates] = GRADUATED

    order = np.lexsort((stays.entry, stays.student))
    return Stays(
        **{f.name: getattr(stays, f.name)[order] for f in dataclasses.fields(stays)}
    )


def _other_school_of_level(
    school: np.ndarray, schools: Schools, rng: np.random.Generator
) -> np.ndarray:
    """A different school of the same level for each entry, chosen at random."""
    new_school = np.empty_like(school)
    for level in range(3):
        same = schools.of_level(level)
        mask = schools.level[school] == level
        position = np.searchsorted(same, school[mask])
        step = rng.integers(1, max(len(same), 2), mask.sum())
        new_school[mask] = same[(position + step) % len(same)]
    return new_school


def _first_day_on_or_after(
    school: np.ndarray, earliest: np.ndarray, calendar: YearCalendar
) -> np.ndarray:
    """Day index of each school's first instructional day on or after a date."""
    day = np.empty(len(school), dtype=np.int64)
    for s in np.unique(school):
        mask = school == s
        days = calendar.dates[calendar.starts[s] : calendar.starts[s + 1]]
        position = np.searchsorted(days, earliest[mask], side="left")
        day[mask] = calendar.starts[s] + np.minimum(position, len(days) - 1)
    return day


def next_fall(
    students: Students, stays: Stays, schools: Schools, rng: np.random.Generator
) -> Students:
    """The students as they stand on the first day of the next school year.

    Graduates, drop-outs and mid-year leavers are gone; about 5% of the others move
    away over the summer. The rest go up a grade, except a few who repeat it (more
    often the weakest, and more often in grade 9), and change school when they
    change level.
    """
    n = len(students)
    last_stay = np.r_[stays.student[1:] != stays.student[:-1], True]
    last_reason = np.full(n, -1)
    last_reason[stays.student[last_stay]] = stays.exit_reason[last_stay]
    school = students.school.copy()
    school[stays.student[last_stay]] = stays.school[last_stay]

    was_enrolled = last_reason >= 0
    gone = np.isin(last_reason, [LEFT_DISTRICT, DROPPED_OUT, GRADUATED])
    summer_leave = rng.random(n) < SUMMER_LEAVE_RATE * np.where(
        students.economically_disadvantaged, 1.3, 0.7
    )
    enrolled = was_enrolled & ~gone & ~summer_leave

    weak = students.achievement < -1.2
    repeat_chance = np.select(
        [students.grade <= 8, students.grade == 9, students.grade <= 11],
        [0.006 + 0.04 * weak, 0.02 + 0.08 * weak, 0.01],
        default=1.0,  # grade 12 students who did not graduate stay in grade 12
    )
    repeats = rng.random(n) < repeat_chance
    grade = np.where(repeats, students.grade, students.grade + 1)
    changes_level = LEVEL_OF_GRADE[grade] != LEVEL_OF_GRADE[students.grade]
    school = np.where(
        changes_level, schools.zone_school[students.zone, LEVEL_OF_GRADE[grade]], school
    )
    return dataclasses.replace(students, grade=grade, school=school, enrolled=enrolled)


def _split_evenly(total: int, parts: int) -> np.ndarray:
    """``total`` split into ``parts`` integers that differ by at most one."""
    return total // parts + (np.arange(parts) < total % parts)


def _split_proportionally(total: int, weight: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``weight`` (largest remainders round up)."""
    exact = total * weight / weight.sum()
    counts = np.floor(exact).astype(np.int64)
    remainder_order = np.argsort(-(exact - counts), kind="stable")
    counts[remainder_order[: total - counts.sum()]] += 1
    return counts
