"""Ed-Fi descriptors mapped to our codes, as explicit tables.

Each table maps the code of an Ed-Fi descriptor (the part after ``#`` of
``uri://ed-fi.org/AttendanceEventCategoryDescriptor#Excused Absence``, matched
without regard to case) to one of the codes of ``docs/CONTRACTS.md``. A code that is
not in its table is never guessed: the adapter keeps the raw descriptor value in the
row, so that ingest quarantines the row as an unknown code and says which.

Only values whose meaning is plain are mapped. Ed-Fi's ``Basic`` performance level,
the ``Partial`` and ``Early departure`` attendance categories, the ``Withdrawn``
exit type and the like mean different things in different districts; a district
says what they mean in its own mapping file (TOML)::

    [descriptors.AttendanceEventCategoryDescriptor]
    "Partial" = "unexcused"

    [descriptors.PerformanceLevelDescriptor]
    "Basic" = "2"

    # Interventions carry no descriptor of their kind: name them by their
    # InterventionIdentificationCode or ContentIdentifier.
    [interventions]
    "CheckAndConnect" = "mentoring"

A mapping entry adds to or replaces the built-in entry for that code; the target
must be one of the codes the table's column accepts.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from features._edfi_xml import descriptor_code
from features._schemas import (
    ABSENCE_CATEGORIES,
    ACTIONS,
    BEHAVIOR_CATEGORIES,
    EXIT_REASONS,
    GENDERS,
    RACES,
)

# The code an attendance category maps to when the event is not an absence or a
# tardy: such events are dropped (and counted), since presence is implied.
PRESENT = "present"

# Strings written into the boolean columns of the canonical tables.
TRUE, FALSE = "true", "false"


class EdfiMappingError(ValueError):
    """An Ed-Fi mapping file is missing, unreadable or names an unknown code."""


@dataclass(frozen=True)
class CodeTable:
    """One Ed-Fi descriptor and the codes of the column it fills."""

    descriptor: str
    column: str
    allowed: tuple[str, ...]
    codes: dict[str, str] = field(default_factory=dict)

    def lookup(self, value: str) -> str | None:
        """Our code for a descriptor value, or None when the code is unknown."""
        return self.codes.get(descriptor_code(value).casefold())

    def with_entries(self, entries: dict[str, str]) -> CodeTable:
        codes = dict(self.codes)
        codes.update({key.casefold(): target for key, target in entries.items()})
        return CodeTable(self.descriptor, self.column, self.allowed, codes)


def _table(descriptor: str, column: str, allowed, codes: dict[str, str]) -> CodeTable:
    return CodeTable(
        descriptor,
        column,
        tuple(allowed),
        {code.casefold(): target for code, target in codes.items()},
    )


_GRADES = [str(grade) for grade in range(-1, 13)]
_ORDINALS = (
    "First Second Third Fourth Fifth Sixth Seventh Eighth Ninth Tenth Eleventh Twelfth"
)

BUILT_IN: dict[str, CodeTable] = {
    table.descriptor: table
    for table in (
        _table(
            "AttendanceEventCategoryDescriptor",
            "attendance.category",
            (*ABSENCE_CATEGORIES, PRESENT),
            {
                "In Attendance": PRESENT,
                "Excused Absence": "excused",
                "Unexcused Absence": "unexcused",
                "Tardy": "tardy",
            },
        ),
        # Ed-Fi's default behaviours are legal classes (a state offence, a breach
        # of the school's code), not kinds of behaviour: they say nothing about
        # fighting or defiance, so all four are `other`. A weapon recorded on the
        # student's behaviour makes it `weapon` whatever the class.
        _table(
            "BehaviorDescriptor",
            "discipline.behavior_category",
            BEHAVIOR_CATEGORIES,
            {
                "State Offense": "other",
                "School Violation": "other",
                "School Code of Conduct": "other",
                "Other": "other",
            },
        ),
        _table(
            "DisciplineDescriptor",
            "discipline.action",
            ACTIONS,
            {
                "No action for incident": "none",
                "In School Suspension": "in_school_suspension",
                "Out of School Suspension": "out_of_school_suspension",
                "Expulsion": "expulsion",
                "Expulsion with Services": "expulsion",
                "Expulsion under Guns Free School Act": "expulsion",
                "Expulsion under Guns Free School Act with Services": "expulsion",
            },
        ),
        # "" means the value is missing (the student chose not to say), which is
        # different from a value we do not know how to read.
        _table(
            "SexDescriptor",
            "students.gender",
            (*GENDERS, ""),
            {
                "Female": "female",
                "Male": "male",
                "Non-binary": "nonbinary",
                "Nonbinary": "nonbinary",
                "Not Selected": "",
            },
        ),
        _table(
            "RaceDescriptor",
            "students.race_ethnicity",
            (*RACES, ""),
            {
                "American Indian - Alaska Native": "american_indian",
                "Asian": "asian",
                "Black - African American": "black",
                "Native Hawaiian - Pacific Islander": "pacific_islander",
                "White": "white",
                "Choose Not to Respond": "",
            },
        ),
        # Monitored former English learners are no longer English learners.
        _table(
            "LimitedEnglishProficiencyDescriptor",
            "students.english_learner",
            (TRUE, FALSE),
            {
                "Limited": TRUE,
                "NotLimited": FALSE,
                "Limited Monitored 1": FALSE,
                "Limited Monitored 2": FALSE,
            },
        ),
        _table(
            "GradeLevelDescriptor",
            "enrollments.grade",
            _GRADES,
            {
                "Preschool/Prekindergarten": "-1",
                "Kindergarten": "0",
                **{
                    f"{ordinal} grade": str(number)
                    for number, ordinal in enumerate(_ORDINALS.split(), start=1)
                },
            },
        ),
        _table(
            "SchoolCategoryDescriptor",
            "schools.school_level",
            ("elementary", "middle", "high"),
            {
                "Elementary School": "elementary",
                "Primary School": "elementary",
                "Middle School": "middle",
                "Junior High School": "middle",
                "High School": "high",
            },
        ),
        _table(
            "AcademicSubjectDescriptor",
            "grades.subject",
            ("ela", "math", "science", "social_studies", "other"),
            {
                "English Language Arts": "ela",
                "English": "ela",
                "Reading": "ela",
                "Writing": "ela",
                "Mathematics": "math",
                "Science": "science",
                "Life and Physical Sciences": "science",
                "Social Studies": "social_studies",
                "Social Sciences and History": "social_studies",
                "Career and Technical Education": "other",
                "Fine and Performing Arts": "other",
                "Foreign Language and Literature": "other",
                "Military Science": "other",
                "Physical, Health, and Safety Education": "other",
                "Religious Education and Theology": "other",
                "Other": "other",
            },
        ),
        # A state test counts for the ELA, maths or science KPI only when its subject
        # is plainly that one; a writing or composite test is left to the district.
        _table(
            "AssessmentSubjectDescriptor",
            "assessments.subject",
            ("ela", "math", "science"),
            {
                "English Language Arts": "ela",
                "English": "ela",
                "Reading": "ela",
                "Mathematics": "math",
                "Science": "science",
                "Life and Physical Sciences": "science",
            },
        ),
        # Levels on our 1-4 scale, proficient from 3 up. Texas-style three-level
        # results (Did Not Meet, Met, Advanced) use levels 1, 3 and 4.
        _table(
            "PerformanceLevelDescriptor",
            "assessments.performance_level",
            ("1", "2", "3", "4"),
            {
                "Did Not Meet Standard": "1",
                "Met Standard": "3",
                "Proficient": "3",
                "Advanced": "4",
            },
        ),
        _table(
            "ExitWithdrawTypeDescriptor",
            "enrollments.exit_reason",
            EXIT_REASONS,
            {
                "End of school year": "end_of_year",
                "Graduated": "graduated",
                "Transferred": "transfer",
                "Dropout": "dropped_out",
                "Died or is permanently incapacitated": "other",
                "Expelled": "other",
                "Incarcerated": "other",
                "Involuntarily Removed": "other",
                "No show": "other",
                "Reached maximum age": "other",
                "Other": "other",
            },
        ),
        # Programs a student takes part in as an initiative. Programs that record a
        # status instead (special education, English learning, free meals,
        # homelessness, migrancy) are not initiatives: they never enter the
        # programs table, and some of them set the student's flags.
        _table(
            "ProgramTypeDescriptor",
            "programs.program",
            ("tutoring", "mentoring", "attendance_intervention", "other"),
            {
                "Career and Technical Education": "other",
                "Gifted and Talented": "other",
                "Athletics": "other",
                "Cocurricular Programs": "other",
                "College Preparatory": "other",
                "Technical Preparatory": "other",
                "International Baccalaureate": "other",
                "Magnet/Special Program Emphasis": "other",
                "Service Learning": "other",
                "Other": "other",
            },
        ),
        # Days of an Ed-Fi calendar: instructional ("true") or not ("false").
        _table(
            "CalendarEventDescriptor",
            "calendar.date",
            (TRUE, FALSE),
            {
                "Instructional day": TRUE,
                "Make-up day": TRUE,
                "Student late arrival/early dismissal": TRUE,
                "Holiday": FALSE,
                "Teacher only day": FALSE,
                "Non-instructional day": FALSE,
                "Weather day": FALSE,
                "Emergency day": FALSE,
                "Strike": FALSE,
            },
        ),
    )
}

# Program types that record a status rather than an initiative, and the student
# flag each one sets (None: a status that sets no flag of ours).
STATUS_PROGRAM_TYPES: dict[str, str | None] = {
    "special education": "disability",
    "section 504 placement": "disability",
    "idea": "disability",
    "preschool special education": "disability",
    "bilingual": "english_learner",
    "bilingual summer": "english_learner",
    "english as a second language (esl)": "english_learner",
    "student school food service": "economically_disadvantaged",
    "compensatory services for disadvantaged students": None,
    "homeless": None,
    "migrant education": None,
    "neglected and delinquent program": None,
    "immigrant education": None,
    "title i part a": None,
}

# Program association elements that are a status whatever their program type.
STATUS_ASSOCIATIONS: dict[str, str | None] = {
    "StudentSpecialEducationProgramAssociation": "disability",
    "StudentSection504ProgramAssociation": "disability",
    "StudentLanguageInstructionProgramAssociation": "english_learner",
    "StudentSchoolFoodServiceProgramAssociation": "economically_disadvantaged",
    "StudentHomelessProgramAssociation": None,
    "StudentMigrantEducationProgramAssociation": None,
    "StudentNeglectedOrDelinquentProgramAssociation": None,
    "StudentTitleIPartAProgramAssociation": None,
}

# What an intervention becomes in the programs table when the mapping file does not
# name it: an intervention is an initiative by definition, but Ed-Fi records no
# descriptor of its kind (tutoring, mentoring), so it is `other` until named.
DEFAULT_INTERVENTION_PROGRAM = "other"
_PROGRAMS = ("tutoring", "mentoring", "attendance_intervention", "other")


@dataclass(frozen=True)
class EdfiCodes:
    """The code tables in force for one read: built-in plus the mapping file."""

    tables: dict[str, CodeTable]
    interventions: dict[str, str]

    def table(self, descriptor: str) -> CodeTable:
        return self.tables[descriptor]

    def intervention_program(self, *identifiers: str) -> str:
        """The program code of an intervention, by its first named identifier."""
        for identifier in identifiers:
            program = self.interventions.get(identifier.casefold())
            if program is not None:
                return program
        return DEFAULT_INTERVENTION_PROGRAM


def load_codes(mapping: Path | None) -> EdfiCodes:
    """The built-in tables, with a district's mapping file applied on top.

    Raises
    ------
    EdfiMappingError
        If the file is missing or not TOML, names a descriptor we do not read, or
        maps a code to a value its column does not accept.
    """
    if mapping is None:
        return EdfiCodes(dict(BUILT_IN), {})
    raw = _read_toml(mapping)
    unknown_sections = sorted(set(raw) - {"descriptors", "interventions"})
    if unknown_sections:
        raise EdfiMappingError(
            f"{mapping}: unknown section [{unknown_sections[0]}]; "
            "allowed sections: descriptors, interventions"
        )
    tables = dict(BUILT_IN)
    for descriptor, entries in raw.get("descriptors", {}).items():
        if descriptor not in tables:
            known = ", ".join(sorted(tables))
            raise EdfiMappingError(
                f"{mapping}: [descriptors.{descriptor}]: not a descriptor the Ed-Fi "
                f"adapter reads; known descriptors: {known}"
            )
        table = tables[descriptor]
        for code, target in entries.items():
            _check_target(mapping, f"descriptors.{descriptor}", code, target, table)
        tables[descriptor] = table.with_entries(entries)
    interventions = {}
    for identifier, program in raw.get("interventions", {}).items():
        if program not in _PROGRAMS:
            raise EdfiMappingError(
                f"{mapping}: [interventions] {identifier!r} = {program!r}: must be "
                f"one of {', '.join(_PROGRAMS)}"
            )
        interventions[identifier.casefold()] = program
    return EdfiCodes(tables, interventions)


def _check_target(
    mapping: Path, section: str, code: str, target: object, table: CodeTable
) -> None:
    if target not in table.allowed:
        allowed = ", ".join(repr(value) for value in table.allowed)
        raise EdfiMappingError(
            f"{mapping}: [{section}] {code!r} = {target!r}: {table.column} must be "
            f"one of {allowed}"
        )


def _read_toml(mapping: Path) -> dict:
    try:
        return tomllib.loads(Path(mapping).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdfiMappingError(f"{mapping}: no such mapping file") from None
    except tomllib.TOMLDecodeError as error:
        raise EdfiMappingError(f"{mapping}: not valid TOML: {error}") from None
