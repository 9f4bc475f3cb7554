"""The Ed-Fi XML adapter: an Ed-Fi interchange export as canonical tables.

``ontrack ingest --format edfi-xml DIR`` calls :func:`read_edfi_xml`, which streams
every ``*.xml`` file of ``DIR`` (whatever its name: the interchange is told by its
records), joins the records into the nine canonical tables of
``docs/CONTRACTS.md`` as raw strings, and hands them to ingest, which validates them
exactly as it validates a CSV export. Read are: EducationOrganization (schools,
courses), EducationOrgCalendar (sessions, calendar days), Student,
StudentEnrollment (school associations, demographics) where present,
StudentAttendance (school and section events), StudentDiscipline, StudentGradebook,
AssessmentMetadata and StudentAssessment, StudentProgram and StudentIntervention.
Other records are counted and skipped.

Descriptors are mapped to our codes through the explicit tables of
:mod:`features._edfi_codes`; an unknown one is left raw in its row so that ingest
quarantines the row and names the value. Identifiers stay strings; school years
are spring years (``2021-2022`` becomes ``2022``).

What had to be derived or approximated is returned with the tables as ``notes``
(and logged), for example that enrolments were derived because the export has no
StudentEnrollment interchange.

Notes
-----
- Grades come from the gradebook: a row per student, course and session whose mark
  is the mean of the student's numeric gradebook marks in that course. That is the
  average of the assignments, not the final mark the school gave, and the
  gradebook records no credits, so ``credits_attempted`` and ``credits_earned``
  are empty. The subject is the course's AcademicSubject, found by taking the
  section's LocalCourseCode as the CourseCode when no MasterSchedule says
  otherwise.
- One discipline row per student and incident. The behaviour is the most serious
  of the student's behaviours in it (a weapon makes it ``weapon``), the action the
  most serious action taken, ``days_removed`` the sum of the actions' actual
  lengths; an incident with no action recorded has action ``none`` and 0 days.
- Section attendance only adds tardies on days without a school-level event (a
  missed class is not a missed day). A school-level absence without an
  EventDuration is a full day; a tardy without one misses 0 of the day.
- Without StudentEducationOrganizationAssociation records, gender comes from the
  birth sex where recorded, race/ethnicity is missing, and the English learner,
  disability and economic flags come from the student's status programs
  (bilingual/ESL, special education/504, school food service) active at any time
  during the export's school years. Ingest stores a missing gender or
  race/ethnicity as ``not_reported``, so the student is kept.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

from features._edfi_codes import (
    FALSE,
    PRESENT,
    STATUS_ASSOCIATIONS,
    STATUS_PROGRAM_TYPES,
    TRUE,
    EdfiCodes,
    EdfiMappingError,
    load_codes,
)
from features._edfi_derive import (
    Reference,
    SchoolYears,
    build_calendars,
    derive_enrollments,
    grade_from_age,
)
from features._edfi_read import EdfiRecords, collect, group_marks
from features._edfi_xml import EdfiFormatError, descriptor_code
from features._schemas import TABLES, ExportRefused, IngestError

logger = logging.getLogger(__name__)

# The columns of each canonical table, in ingest's order.
CANONICAL_COLUMNS: dict[str, list[str]] = {
    name: list(spec.columns) for name, spec in TABLES.items()
}

# Most serious first: the order in which one student's several behaviours or
# actions in one incident are reduced to one.
_BEHAVIOR_SEVERITY = (
    "weapon",
    "substance",
    "fighting",
    "bullying",
    "defiance",
    "disruption",
    "minor",
    "other",
)
_ACTION_SEVERITY = (
    "expulsion",
    "out_of_school_suspension",
    "in_school_suspension",
    "none",
)
_ABSENCES = ("excused", "unexcused")


class AdapterTables(dict):
    """Raw string frames per canonical table, with the notes of what was derived.

    A plain ``dict[str, pd.DataFrame]`` for whoever only wants the tables; the
    ``notes`` list says, in sentences, what the adapter derived, approximated or
    left for quarantine.
    """

    def __init__(self, tables: dict[str, pd.DataFrame], notes: list[str]) -> None:
        super().__init__(tables)
        self.notes = notes


def read_edfi_xml(source: Path, mapping: Path | None = None) -> AdapterTables:
    """Read an Ed-Fi interchange export into the canonical tables.

    Parameters
    ----------
    source
        A folder of Ed-Fi interchange XML files (or one file).
    mapping
        Optional TOML file that adds descriptor codes of the district's own (see
        :mod:`features._edfi_codes`).

    Returns
    -------
    AdapterTables
        One frame of strings per canonical table (``""`` where a value is
        missing) and the notes of what was derived.

    Raises
    ------
    FileNotFoundError
        If ``source`` does not exist or holds no ``*.xml`` file.
    features._edfi_xml.EdfiFormatError
        If a file is not well-formed XML.
    features._edfi_codes.EdfiMappingError
        If the mapping file is invalid.
    features.ExportRefused
        If the export holds no Student record (no Student interchange).
    """
    source = Path(source)
    codes = load_codes(mapping)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such Ed-Fi export folder or file")
    if source.is_dir() and not any(source.glob("*.xml")):
        raise FileNotFoundError(
            f"{source}: no *.xml file; expected Ed-Fi interchange XML files"
        )
    attendance = codes.table("AttendanceEventCategoryDescriptor")
    found = collect(source, lambda category: attendance.lookup(category) == PRESENT)
    if not found.students:
        # Every other record refers to a student: loading them would only
        # quarantine them all, as a canonical export without students is refused.
        raise ExportRefused(
            f"{source}: no Student record: the Student interchange (Student.xml) is "
            f"missing from the export, and every enrolment, attendance, discipline, "
            f"grade, assessment and program record refers to a student"
        )
    tables, notes = assemble(found, codes)
    logger.info(
        "read Ed-Fi export %s: %s files, %s records, %s",
        source,
        found.files,
        found.records,
        ", ".join(f"{name} {len(frame)}" for name, frame in tables.items()),
    )
    for note in notes:
        logger.info("Ed-Fi: %s", note)
    return AdapterTables(tables, notes)


def assemble(
    found: EdfiRecords, codes: EdfiCodes
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Join and map the collected records into canonical frames, with notes."""
    mapper = _Mapper(codes)
    notes: list[str] = []
    years = SchoolYears(tuple(found.sessions))

    schools = _schools(found, mapper, notes)
    calendars = _calendars(found, mapper, notes)
    attendance = _attendance(found, mapper, years, notes)
    discipline = _discipline(found, mapper, notes)
    grades = _grades(found, mapper, notes)
    assessments = _assessments(found, mapper, years, notes)
    programs = _programs(found, mapper, notes)
    enrollments = _enrollments(found, mapper, years, calendars, assessments, notes)
    students = _students(found, mapper, calendars, notes)
    calendar = [
        {"school_id": school_id, "date": day}
        for (school_id, _year), days in sorted(calendars.items())
        for day in days
    ]
    rows = {
        "schools": schools,
        "students": students,
        "enrollments": enrollments,
        "calendar": calendar,
        "attendance": attendance,
        "discipline": discipline,
        "grades": grades,
        "assessments": [
            {key: row[key] for key in CANONICAL_COLUMNS["assessments"]}
            for row in assessments
        ],
        "programs": programs,
    }
    if found.skipped:
        skipped = ", ".join(f"{n} {tag}" for tag, n in sorted(found.skipped.items()))
        notes.append(f"records not used: {skipped}")
    notes.extend(mapper.unknown_notes())
    tables = {
        name: pd.DataFrame(table_rows, columns=CANONICAL_COLUMNS[name], dtype=str)
        for name, table_rows in rows.items()
    }
    return tables, notes


class _Mapper:
    """Maps descriptor values through the code tables and counts the unknown."""

    def __init__(self, codes: EdfiCodes) -> None:
        self.codes = codes
        self.unknown: Counter[tuple[str, str, str]] = Counter()

    def map(self, descriptor: str, value: str) -> str:
        """Our code for ``value``, or ``value`` itself (raw) when it is unknown."""
        table = self.codes.table(descriptor)
        code = table.lookup(value)
        if code is None:
            self.unknown[(table.column, descriptor, value)] += 1
            return value
        return code

    def known(self, descriptor: str, value: str) -> str | None:
        return self.codes.table(descriptor).lookup(value)

    def unknown_notes(self) -> list[str]:
        return [
            f"{count} value(s) of {column} left raw for quarantine: {value!r} is not "
            f"in the {descriptor} table (add it to the mapping file if its meaning "
            f"is known)"
            for (column, descriptor, value), count in sorted(self.unknown.items())
        ]


def _schools(found: EdfiRecords, mapper: _Mapper, notes: list[str]) -> list[dict]:
    rows = []
    for school in found.schools:
        grades = [
            int(grade)
            for value in found.school_grades.get(school["school_id"], [])
            if (grade := mapper.known("GradeLevelDescriptor", value)) is not None
        ]
        lowest = str(min(grades)) if grades else ""
        highest = str(max(grades)) if grades else ""
        category = school["school_category"]
        if category:
            level = mapper.map("SchoolCategoryDescriptor", category)
        elif grades:
            level = _level_from_grades(max(grades))
            notes.append(
                f"school {school['school_id']} has no SchoolCategory: level "
                f"{level!r} derived from its highest grade {highest}"
            )
        else:
            level = ""
        rows.append(
            {
                "school_id": school["school_id"],
                "school_name": school["school_name"],
                "school_level": level,
                "lowest_grade": lowest,
                "highest_grade": highest,
            }
        )
    return rows


def _level_from_grades(highest: int) -> str:
    if highest <= 5:
        return "elementary"
    return "middle" if highest <= 8 else "high"


def _calendars(
    found: EdfiRecords, mapper: _Mapper, notes: list[str]
) -> dict[tuple[str, str], list[str]]:
    instructional: dict[tuple[str, str], set[str]] = defaultdict(set)
    other_events: Counter[str] = Counter()
    for school_id, year, date, event in found.calendar_dates:
        kind = mapper.known("CalendarEventDescriptor", event)
        if kind == TRUE:
            instructional[(school_id, year)].add(date)
        elif kind is None:
            other_events[descriptor_code(event)] += 1
    if other_events:
        listed = ", ".join(
            f"{n} {event!r}" for event, n in sorted(other_events.items())
        )
        notes.append(
            f"calendar days with an unknown CalendarEvent are not counted as "
            f"instructional: {listed}"
        )
    result = build_calendars(found.sessions, instructional)
    notes.extend(result.notes)
    return result.days


def _attendance(
    found: EdfiRecords, mapper: _Mapper, years: SchoolYears, notes: list[str]
) -> list[dict]:
    rows = []
    full_days = 0
    recorded: set[tuple[str, str]] = set()
    for student_id, school_id, date, category, duration, _ in found.school_attendance:
        code = mapper.map("AttendanceEventCategoryDescriptor", category)
        if not duration and code in _ABSENCES:
            duration = "1"
            full_days += 1
        elif not duration and code == "tardy":
            duration = "0"
        recorded.add((student_id, date))
        rows.append(
            {
                "student_id": student_id,
                "school_id": school_id,
                "date": date,
                "category": code,
                "fraction_missed": duration,
            }
        )
    if found.present_events:
        notes.append(
            f"attendance: {found.present_events} events recording presence dropped "
            f"(presence is implied)"
        )
    if full_days:
        notes.append(
            f"attendance: {full_days} absence(s) without an EventDuration counted "
            f"as a full day"
        )
    rows += _section_tardies(found, mapper, recorded, notes)
    return rows


def _section_tardies(
    found: EdfiRecords,
    mapper: _Mapper,
    recorded: set[tuple[str, str]],
    notes: list[str],
) -> list[dict]:
    rows = []
    already, not_tardy = 0, 0
    tardies_seen: set[tuple[str, str]] = set()
    for student_id, school_id, date, category in found.section_attendance:
        if mapper.known("AttendanceEventCategoryDescriptor", category) != "tardy":
            not_tardy += 1
        elif (student_id, date) in recorded or (student_id, date) in tardies_seen:
            already += 1
        else:
            tardies_seen.add((student_id, date))
            rows.append(
                {
                    "student_id": student_id,
                    "school_id": school_id,
                    "date": date,
                    "category": "tardy",
                    "fraction_missed": "0",
                }
            )
    if found.section_attendance:
        notes.append(
            f"section attendance: {len(rows)} tardies added on days without a "
            f"school-level event; {already} already recorded for that day and "
            f"{not_tardy} section events other than tardies not used"
        )
    return rows


def _discipline(found: EdfiRecords, mapper: _Mapper, notes: list[str]) -> list[dict]:
    def resolve(key: tuple[str, str]) -> tuple[str, str]:
        return found.incident_refs.get(key[1], key) if key[0] == "#ref" else key

    behaviors: dict[tuple[tuple[str, str], str], list[str]] = defaultdict(list)
    for student_id, key, behavior, weapon in found.behaviors:
        behaviors[(resolve(key), student_id)].append(
            "weapon" if weapon else mapper.map("BehaviorDescriptor", behavior)
        )
    actions: dict[tuple[tuple[str, str], str], list[tuple[list[str], str]]] = (
        defaultdict(list)
    )
    for student_id, key, disciplines, length in found.actions:
        actions[(resolve(key), student_id)].append((disciplines, length))

    rows = []
    unmatched = 0
    for incident_key, student_id in sorted(set(behaviors) | set(actions)):
        incident = found.incidents.get(incident_key)
        if incident is None:
            unmatched += 1
            continue
        categories = behaviors.get((incident_key, student_id)) or [
            mapper.map("BehaviorDescriptor", behavior)
            for behavior in incident.behaviors
        ]
        taken = actions.get((incident_key, student_id), [])
        action_codes = [
            mapper.map("DisciplineDescriptor", value)
            for disciplines, _length in taken
            for value in disciplines
        ]
        days = sum(float(length) for _codes, length in taken if length)
        rows.append(
            {
                "incident_id": f"{incident_key[0]}-{incident_key[1]}",
                "student_id": student_id,
                "school_id": incident.school_id,
                "date": incident.date,
                "behavior_category": _most_serious(categories, _BEHAVIOR_SEVERITY),
                "action": _most_serious(action_codes or ["none"], _ACTION_SEVERITY),
                "days_removed": _number(days),
            }
        )
    no_action = sum(1 for key in behaviors if key not in actions)
    notes.append(
        f"discipline: {len(rows)} student incidents from {len(found.incidents)} "
        f"incidents; incident_id is SchoolId-IncidentIdentifier; {no_action} with no "
        f"action recorded have action 'none'; {found.non_offenders} victim or "
        f"witness records not used"
    )
    if unmatched:
        notes.append(
            f"discipline: {unmatched} behaviours or actions name an incident that is "
            f"not in the export and were not used"
        )
    return rows


def _most_serious(codes: list[str], order: tuple[str, ...]) -> str:
    """The most serious known code, or the first unknown (raw) one if any."""
    unknown = [code for code in codes if code not in order]
    if unknown:
        return unknown[0]
    return min(codes, key=order.index) if codes else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _grades(found: EdfiRecords, mapper: _Mapper, notes: list[str]) -> list[dict]:
    sessions = {(s.school_id, s.school_year, s.name): s for s in found.sessions}
    rows = []
    no_course = 0
    for (student_id, school_id, year, session_name, local_code), marks in sorted(
        group_marks(found).items()
    ):
        session = sessions.get((school_id, year, session_name))
        subject = _course_subject(found, local_code, school_id)
        if not subject:
            no_course += 1
        rows.append(
            {
                "student_id": student_id,
                "school_id": school_id,
                "school_year": year,
                "term": session.term if session else session_name,
                "term_end_date": session.end_date if session else "",
                "course_id": local_code,
                "subject": mapper.map("AcademicSubjectDescriptor", subject)
                if subject
                else "",
                "mark": f"{sum(marks) / len(marks):.2f}".rstrip("0").rstrip("."),
                "letter": "",
                "credits_attempted": "",
                "credits_earned": "",
            }
        )
    if rows or found.student_marks:
        notes.append(
            f"grades: {len(rows)} course marks derived as the mean of "
            f"{len(found.student_marks)} gradebook marks per student, course and "
            f"session (an average of assignments, not the final mark); credits are "
            f"not in the gradebook and are left empty, so the credit ratio is "
            f"missing"
        )
    if no_course:
        notes.append(
            f"grades: {no_course} course marks have no known course, so no subject"
        )
    return rows


def _course_subject(found: EdfiRecords, local_code: str, school_id: str) -> str:
    """The AcademicSubject of a section's course, by school first, then anywhere."""
    code = found.course_offerings.get((local_code, school_id), local_code)
    subject = found.course_subjects.get((code, school_id))
    if subject is not None:
        return subject
    for (course_code, _edorg), candidate in found.course_subjects.items():
        if course_code == code:
            return candidate
    return ""


def _assessments(
    found: EdfiRecords, mapper: _Mapper, years: SchoolYears, notes: list[str]
) -> list[dict]:
    rows = []
    not_tested = 0
    outside_year = 0
    for result in found.student_assessments:
        if result["not_tested"] and not (
            result["scale_score"] or result["performance_level"]
        ):
            not_tested += 1
            continue
        level = (
            mapper.map("PerformanceLevelDescriptor", result["performance_level"])
            if result["performance_level"]
            else ""
        )
        year = result["school_year"] or years.of("", result["date"])
        if result["date"] and years.of("", result["date"]) != year:
            outside_year += 1
        subject = found.assessment_subjects.get(result["assessment"], "")
        rows.append(
            {
                "student_id": result["student_id"],
                "school_year": year,
                "date": result["date"],
                "subject": mapper.map("AssessmentSubjectDescriptor", subject)
                if subject
                else result["assessment"],
                "scale_score": result["scale_score"],
                "performance_level": level,
                "proficient": (TRUE if int(level) >= 3 else FALSE)
                if level.isdigit()
                else "",
                "grade": result["grade"],
            }
        )
    if not_tested:
        notes.append(
            f"assessments: {not_tested} records of students not tested "
            f"(ReasonNotTested) not used"
        )
    if outside_year:
        notes.append(
            f"assessments: {outside_year} results are dated outside the school year "
            f"they are filed under; kept with the SchoolYear of the record"
        )
    return rows


def _programs(found: EdfiRecords, mapper: _Mapper, notes: list[str]) -> list[dict]:
    rows = []
    statuses = 0
    for tag, student_id, program_type, _edorg, begin, end in found.program_stays:
        if _status_flag(tag, program_type) is not False:
            statuses += 1
            continue
        rows.append(
            {
                "student_id": student_id,
                "program": mapper.map("ProgramTypeDescriptor", program_type),
                "begin_date": begin,
                "end_date": end,
            }
        )
    missing = 0
    for student_id, edorg, code in found.intervention_stays:
        intervention = found.interventions.get((edorg, code))
        if intervention is None:
            missing += 1
        rows.append(
            {
                "student_id": student_id,
                "program": mapper.codes.intervention_program(
                    code, *(intervention.content_ids if intervention else [])
                ),
                "begin_date": intervention.begin_date if intervention else "",
                "end_date": intervention.end_date if intervention else "",
            }
        )
    if statuses:
        notes.append(
            f"programs: {statuses} status program records (special education, "
            f"English learning, free meals, homeless, migrant and the like) are not "
            f"initiatives and are not in the programs table"
        )
    if found.intervention_stays:
        notes.append(
            f"programs: {len(found.intervention_stays)} intervention stays added, "
            f"dated by their intervention's BeginDate and EndDate; interventions "
            f"not named in the mapping file are 'other'"
        )
    if missing:
        notes.append(
            f"programs: {missing} intervention stays name an intervention that is "
            f"not in the export, so have no dates"
        )
    return rows


def _status_flag(tag: str, program_type: str) -> str | None | bool:
    """The flag a status program sets, None for a status without one, False else."""
    if tag in STATUS_ASSOCIATIONS:
        return STATUS_ASSOCIATIONS[tag]
    code = descriptor_code(program_type).casefold()
    if code in STATUS_PROGRAM_TYPES:
        return STATUS_PROGRAM_TYPES[code]
    return False


def _enrollments(
    found: EdfiRecords,
    mapper: _Mapper,
    years: SchoolYears,
    calendars: dict[tuple[str, str], list[str]],
    assessments: list[dict],
    notes: list[str],
) -> list[dict]:
    rows = []
    given: set[tuple[str, str]] = set()
    for stay in found.enrollments:
        year = stay["school_year"] or (
            years.of(stay["school_id"], stay["entry_date"])
            if stay["entry_date"]
            else ""
        )
        given.add((stay["student_id"], year))
        rows.append(
            {
                **stay,
                "school_year": year,
                "grade": mapper.map("GradeLevelDescriptor", stay["grade"])
                if stay["grade"]
                else "",
                "exit_reason": mapper.map(
                    "ExitWithdrawTypeDescriptor", stay["exit_reason"]
                )
                if stay["exit_reason"]
                else "",
            }
        )
    derived = [
        stay
        for stay in derive_enrollments(_references(found, years), calendars)
        if (stay["student_id"], stay["school_year"]) not in given
    ]
    if derived:
        rows += _with_grades(derived, found, mapper, assessments, notes)
    unplaced = len(set(found.students) - {row["student_id"] for row in rows})
    if unplaced:
        notes.append(
            f"enrollments: {unplaced} of {len(found.students)} students have no "
            f"record naming a school, so no enrolment, and are left out of snapshots"
        )
    return rows


def _references(found: EdfiRecords, years: SchoolYears) -> list[Reference]:
    """Every record that places a student at a school on a date."""
    schools = {school["school_id"] for school in found.schools}
    references = [
        Reference(student_id, school_id, year or years.of(school_id, date), date)
        for student_id, school_id, date, _c, _d, year in found.school_attendance
    ]
    for (student_id, school_id, year), span in found.presence_spans.items():
        references += [
            Reference(student_id, school_id, year or years.of(school_id, date), date)
            for date in span
        ]
    references += [
        Reference(student_id, school_id, years.of(school_id, date), date)
        for student_id, school_id, date, _category in found.section_attendance
    ]
    for student_id, key, _behavior, _weapon in found.behaviors:
        if key[0] == "#ref":
            key = found.incident_refs.get(key[1], key)
        incident = found.incidents.get(key)
        if incident is not None:
            references.append(
                Reference(
                    student_id,
                    incident.school_id,
                    years.of(incident.school_id, incident.date),
                    incident.date,
                )
            )
    for entry_id, student_id, _mark in found.student_marks:
        entry = found.gradebook_entries.get(entry_id)
        if entry is not None:
            references.append(
                Reference(student_id, entry.school_id, entry.school_year, entry.date)
            )
    for _tag, student_id, _type, edorg, begin, _end in found.program_stays:
        if edorg in schools and begin:
            references.append(
                Reference(student_id, edorg, years.of(edorg, begin), begin)
            )
    for student_id, edorg, code in found.intervention_stays:
        intervention = found.interventions.get((edorg, code))
        if edorg in schools and intervention is not None and intervention.begin_date:
            begin = intervention.begin_date
            references.append(
                Reference(student_id, edorg, years.of(edorg, begin), begin)
            )
    return references


def _with_grades(
    derived: list[dict],
    found: EdfiRecords,
    mapper: _Mapper,
    assessments: list[dict],
    notes: list[str],
) -> list[dict]:
    """Grades for derived stays: the tested grade that year, else from the age."""
    tested = {
        (row["student_id"], row["school_year"]): grade
        for row in assessments
        if (grade := mapper.known("GradeLevelDescriptor", row["grade"])) is not None
    }
    spans = {}
    for school in found.schools:
        grades = [
            int(grade)
            for value in found.school_grades.get(school["school_id"], [])
            if (grade := mapper.known("GradeLevelDescriptor", value)) is not None
        ]
        spans[school["school_id"]] = (
            (min(grades), max(grades)) if grades else (None, None)
        )
    from_test, from_age, unknown = 0, 0, 0
    for stay in derived:
        grade = tested.get((stay["student_id"], stay["school_year"]))
        if grade is not None:
            from_test += 1
        else:
            student = found.students.get(stay["student_id"])
            lowest, highest = spans.get(stay["school_id"], (None, None))
            age_grade = grade_from_age(
                student.birth_date if student else "",
                stay["school_year"],
                lowest,
                highest,
            )
            grade = "" if age_grade is None else str(age_grade)
            if age_grade is None:
                unknown += 1
            else:
                from_age += 1
        stay["grade"] = grade
    students = len({stay["student_id"] for stay in derived})
    notes.append(
        f"enrollments: {len(derived)} stays of {students} students derived from the "
        f"schools named by their attendance, discipline, gradebook, program and "
        f"intervention records (no StudentSchoolAssociation for them), from the "
        f"school's first to last instructional day; grade from the state test's "
        f"grade level for {from_test}, from age (kept within the school's grades) "
        f"for {from_age}, unknown for {unknown}"
    )
    return derived


def _students(
    found: EdfiRecords,
    mapper: _Mapper,
    calendars: dict[tuple[str, str], list[str]],
    notes: list[str],
) -> list[dict]:
    flags = _status_flags(found, calendars)
    rows = []
    with_demographics = 0
    for student_id, student in found.students.items():
        seen = found.demographics.get(student_id)
        derived = flags.get(student_id, set())
        row = {
            "student_id": student_id,
            "birth_date": student.birth_date,
            "gender": mapper.map("SexDescriptor", student.sex) if student.sex else "",
            "race_ethnicity": "",
            "economically_disadvantaged": _flag(
                "economically_disadvantaged" in derived
            ),
            "english_learner": _flag("english_learner" in derived),
            "disability": _flag("disability" in derived),
            "first_name": student.first_name,
            "last_name": student.last_name,
        }
        if seen is not None:
            with_demographics += 1
            row.update(_demographics(seen, mapper, row))
        rows.append(row)
    counts = {
        column: sum(1 for row in rows if row[column] == TRUE)
        for column in ("english_learner", "disability", "economically_disadvantaged")
    }
    gender_known = sum(1 for row in rows if row["gender"])
    race_known = sum(1 for row in rows if row["race_ethnicity"])
    without = len(rows) - with_demographics
    if without:
        notes.append(
            f"students: {without} of {len(rows)} have no "
            f"StudentEducationOrganizationAssociation: gender from birth sex where "
            f"recorded, race/ethnicity missing (a missing one is stored as "
            f"'not_reported'), flags from status programs active during the "
            f"export's school years"
        )
    notes.append(
        f"students: gender known for {gender_known} of {len(rows)}, race/ethnicity "
        f"for {race_known}; English learners {counts['english_learner']}, with a "
        f"disability {counts['disability']}, economically disadvantaged "
        f"{counts['economically_disadvantaged']}"
    )
    return rows


def _demographics(seen, mapper: _Mapper, row: dict) -> dict:
    update = {}
    if seen.sex:
        update["gender"] = mapper.map("SexDescriptor", seen.sex)
    if seen.hispanic.casefold() in ("true", "1"):
        # Federal reporting convention: Hispanic or Latino of any race.
        update["race_ethnicity"] = "hispanic"
    elif seen.races:
        races = {mapper.map("RaceDescriptor", race) for race in seen.races} - {""}
        update["race_ethnicity"] = (
            races.pop() if len(races) == 1 else ("two_or_more" if races else "")
        )
    if seen.limited_english:
        update["english_learner"] = mapper.map(
            "LimitedEnglishProficiencyDescriptor", seen.limited_english
        )
    codes = {descriptor_code(value).casefold() for value in seen.characteristics}
    if "economic disadvantaged" in codes:
        update["economically_disadvantaged"] = TRUE
    if seen.disabilities:
        update["disability"] = TRUE
    return update


def _status_flags(
    found: EdfiRecords, calendars: dict[tuple[str, str], list[str]]
) -> dict[str, set[str]]:
    """The flags each student's status programs set, if active in the years read.

    A stay counts when it overlaps the span from the first to the last
    instructional day of the export (both inclusive); with no calendar, any stay.
    """
    days = [day for school_days in calendars.values() for day in school_days]
    first, last = (min(days), max(days)) if days else ("", "9999-12-31")
    flags: dict[str, set[str]] = defaultdict(set)
    for tag, student_id, program_type, _edorg, begin, end in found.program_stays:
        flag = _status_flag(tag, program_type)
        if not flag:
            continue
        if (not begin or begin <= last) and (not end or end >= first):
            flags[student_id].add(flag)
    return flags


def _flag(value: bool) -> str:
    return TRUE if value else FALSE


def edfi_xml_adapter(source: Path, mapping: Path | None) -> AdapterTables:
    """The ``edfi-xml`` entry of the ingest registry: :func:`read_edfi_xml`, with
    problems of the export as a whole raised as ingest's own error."""
    try:
        return read_edfi_xml(source, mapping)
    except (FileNotFoundError, EdfiFormatError, EdfiMappingError) as error:
        raise IngestError(str(error)) from None
