"""Read the records of an Ed-Fi export that the canonical tables are built from.

:func:`collect` streams every interchange file of a folder and keeps, per kind of
record, only the handful of fields we use, as small tuples and dicts; the XML itself
is freed record by record (see :mod:`features._edfi_xml`). Records are joined into
canonical rows later, once everything is read, because Ed-Fi spreads one fact over
several records and files (an incident, the student's behaviour in it, the action
taken) in no guaranteed order.

Descriptor values are kept raw here; mapping them is the next step's job.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from features._edfi_xml import (
    Record,
    descriptor_code,
    iter_records,
    school_year_name,
)

logger = logging.getLogger(__name__)

_STUDENT_ID = "StudentReference/StudentIdentity/StudentUniqueId"
_SCHOOL_ID = "SchoolReference/SchoolIdentity/SchoolId"
_EDORG_ID = "EducationOrganizationReference/EducationOrganizationIdentity/EducationOrganizationId"  # noqa: E501


@dataclass
class Session:
    school_id: str
    school_year: str
    name: str
    term: str
    begin_date: str
    end_date: str
    instructional_days: int | None


@dataclass
class Student:
    birth_date: str
    first_name: str
    last_name: str
    sex: str


@dataclass
class Demographics:
    """What a StudentEducationOrganizationAssociation says of a student."""

    sex: str = ""
    hispanic: str = ""
    races: list[str] = field(default_factory=list)
    limited_english: str = ""
    characteristics: list[str] = field(default_factory=list)
    disabilities: int = 0


@dataclass
class Incident:
    school_id: str
    date: str
    behaviors: list[str]


@dataclass
class GradebookEntry:
    school_id: str
    course_code: str
    session_name: str
    school_year: str
    date: str


@dataclass
class Intervention:
    begin_date: str
    end_date: str
    content_ids: list[str]


@dataclass
class EdfiRecords:
    """The fields of an Ed-Fi export we use, before any joining or mapping."""

    schools: list[dict[str, str]] = field(default_factory=list)
    school_grades: dict[str, list[str]] = field(default_factory=dict)
    # (CourseCode, EducationOrganizationId) -> AcademicSubject
    course_subjects: dict[tuple[str, str], str] = field(default_factory=dict)
    # (LocalCourseCode, SchoolId) -> CourseCode, from MasterSchedule when present
    course_offerings: dict[tuple[str, str], str] = field(default_factory=dict)
    sessions: list[Session] = field(default_factory=list)
    # (SchoolId, school year, date, CalendarEvent)
    calendar_dates: list[tuple[str, str, str, str]] = field(default_factory=list)
    students: dict[str, Student] = field(default_factory=dict)
    demographics: dict[str, Demographics] = field(default_factory=dict)
    enrollments: list[dict[str, str]] = field(default_factory=list)
    # (student, school, date, category, duration, school year)
    school_attendance: list[tuple[str, str, str, str, str, str]] = field(
        default_factory=list
    )
    # (student, school, date, category)
    section_attendance: list[tuple[str, str, str, str]] = field(default_factory=list)
    # keyed both by (SchoolId, IncidentIdentifier) and by the record's id attribute
    incidents: dict[tuple[str, str], Incident] = field(default_factory=dict)
    incident_refs: dict[str, tuple[str, str]] = field(default_factory=dict)
    # (student, incident key or ("#ref", id), behavior, weapon recorded)
    behaviors: list[tuple[str, tuple[str, str], str, bool]] = field(
        default_factory=list
    )
    non_offenders: int = 0
    # (student, incident key, [Discipline], length in days)
    actions: list[tuple[str, tuple[str, str], list[str], str]] = field(
        default_factory=list
    )
    gradebook_entries: dict[str, GradebookEntry] = field(default_factory=dict)
    # (GradebookEntryIdentifier, student, NumericGradeEarned)
    student_marks: list[tuple[str, str, str]] = field(default_factory=list)
    # AssessmentIdentifier -> AcademicSubject
    assessment_subjects: dict[str, str] = field(default_factory=dict)
    student_assessments: list[dict[str, str]] = field(default_factory=list)
    # (element tag, student, ProgramType, EducationOrganizationId, begin, end)
    program_stays: list[tuple[str, str, str, str, str, str]] = field(
        default_factory=list
    )
    interventions: dict[tuple[str, str], Intervention] = field(default_factory=dict)
    # (student, EducationOrganizationId, InterventionIdentificationCode)
    intervention_stays: list[tuple[str, str, str]] = field(default_factory=list)
    # School attendance events that record presence are dropped as they are read;
    # only their count and, per (student, school, year), the first and last date
    # are kept: they still place the student at the school.
    present_events: int = 0
    presence_spans: dict[tuple[str, str, str], tuple[str, str]] = field(
        default_factory=dict
    )
    files: int = 0
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def collect(source: Path, is_presence: Callable[[str], bool]) -> EdfiRecords:
    """Stream every ``*.xml`` interchange under ``source`` (a folder or one file).

    ``is_presence`` tells an attendance category that records presence; such events
    are counted and dropped at once, since an export that records every student's
    every day present is mostly made of them.
    """
    paths = [source] if source.is_file() else sorted(source.glob("*.xml"))
    found = EdfiRecords()
    readers = _readers(found, is_presence)
    for path in paths:
        records_before = found.records
        for record in iter_records(path):
            found.records += 1
            reader = readers.get(record.tag)
            if reader is None and record.tag.endswith("ProgramAssociation"):
                reader = readers["StudentProgramAssociation"]
            if reader is None:
                found.skipped[record.tag] += 1
            else:
                reader(record)
        found.files += 1
        logger.info(
            "read Ed-Fi file %s: %s records", path.name, found.records - records_before
        )
    return found


def _readers(
    found: EdfiRecords, is_presence: Callable[[str], bool]
) -> dict[str, Callable[[Record], None]]:
    """The function that keeps what we need of each kind of record."""

    def school(record: Record) -> None:
        school_id = record.text("SchoolId")
        found.schools.append(
            {
                "school_id": school_id,
                "school_name": record.text("NameOfInstitution"),
                "school_category": record.text("SchoolCategory"),
            }
        )
        found.school_grades[school_id] = record.texts("GradeLevel")

    def course(record: Record) -> None:
        key = (record.text("CourseCode"), record.text(_EDORG_ID))
        found.course_subjects[key] = record.text("AcademicSubject")

    def course_offering(record: Record) -> None:
        key = (record.text("LocalCourseCode"), record.text(_SCHOOL_ID))
        found.course_offerings[key] = record.text(
            "CourseReference/CourseIdentity/CourseCode"
        )

    def session(record: Record) -> None:
        days = record.text("TotalInstructionalDays")
        found.sessions.append(
            Session(
                school_id=record.text(_SCHOOL_ID),
                school_year=school_year_name(record.text("SchoolYear")),
                name=record.text("SessionName"),
                term=descriptor_code(record.text("Term")),
                begin_date=record.text("BeginDate"),
                end_date=record.text("EndDate"),
                instructional_days=int(days) if days.isdigit() else None,
            )
        )

    def calendar_date(record: Record) -> None:
        identity = "CalendarReference/CalendarIdentity/"
        school_id = record.text(identity + _SCHOOL_ID)
        year = school_year_name(record.text(identity + "SchoolYear"))
        date = record.text("Date")
        for event in record.texts("CalendarEvent") or [""]:
            found.calendar_dates.append((school_id, year, date, event))

    def student(record: Record) -> None:
        found.students[record.text("StudentUniqueId")] = Student(
            birth_date=record.text("BirthData/BirthDate"),
            first_name=record.text("Name/FirstName"),
            last_name=record.text("Name/LastSurname"),
            sex=record.text("BirthData/BirthSex") or record.text("Sex"),
        )

    def demographics(record: Record) -> None:
        seen = found.demographics.setdefault(record.text(_STUDENT_ID), Demographics())
        seen.sex = seen.sex or record.text("Sex")
        seen.hispanic = seen.hispanic or record.text("HispanicLatinoEthnicity")
        seen.races += [race for race in record.texts(".//Race") if "#" in race]
        seen.limited_english = seen.limited_english or record.text(
            "LimitedEnglishProficiency"
        )
        seen.characteristics += [
            value for value in record.texts(".//StudentCharacteristic") if "#" in value
        ]
        seen.disabilities += len(
            [value for value in record.texts(".//Disability") if "#" in value]
        )

    def school_association(record: Record) -> None:
        found.enrollments.append(
            {
                "student_id": record.text(_STUDENT_ID),
                "school_id": record.text(_SCHOOL_ID),
                "school_year": school_year_name(
                    record.text("SchoolYear")
                    or record.text("CalendarReference/CalendarIdentity/SchoolYear")
                ),
                "grade": record.text("EntryGradeLevel"),
                "entry_date": record.text("EntryDate"),
                "exit_date": record.text("ExitWithdrawDate"),
                "exit_reason": record.text("ExitWithdrawType"),
            }
        )

    def school_attendance(record: Record) -> None:
        category = record.text("AttendanceEvent/AttendanceEventCategory")
        # Schools, dates and categories repeat across events: one copy of each.
        student_id = record.text(_STUDENT_ID)
        school_id = sys.intern(record.text(_SCHOOL_ID))
        date = sys.intern(record.text("AttendanceEvent/EventDate"))
        year = sys.intern(
            school_year_name(record.text("SessionReference/SessionIdentity/SchoolYear"))
        )
        if is_presence(category):
            found.present_events += 1
            key = (student_id, school_id, year)
            first, last = found.presence_spans.get(key, (date, date))
            found.presence_spans[key] = (min(first, date), max(last, date))
            return
        found.school_attendance.append(
            (
                student_id,
                school_id,
                date,
                sys.intern(category),
                sys.intern(record.text("AttendanceEvent/EventDuration")),
                year,
            )
        )

    def section_attendance(record: Record) -> None:
        found.section_attendance.append(
            (
                record.text(_STUDENT_ID),
                record.text(".//SchoolId"),
                record.text("AttendanceEvent/EventDate"),
                record.text("AttendanceEvent/AttendanceEventCategory"),
            )
        )

    def incident(record: Record) -> None:
        key = (record.text(_SCHOOL_ID), record.text("IncidentIdentifier"))
        found.incidents[key] = Incident(
            school_id=key[0],
            date=record.text("IncidentDate"),
            behaviors=record.texts("Behavior/Behavior"),
        )
        if record.element.get("id"):
            found.incident_refs[record.element.get("id", "")] = key

    def behavior(record: Record) -> None:
        found.behaviors.append(
            (
                record.text(_STUDENT_ID),
                _incident_key(record, "DisciplineIncidentReference"),
                record.text("Behavior"),
                bool(record.texts("Weapon")),
            )
        )

    def non_offender(record: Record) -> None:
        found.non_offenders += 1

    def action(record: Record) -> None:
        reference = next(
            (
                child.tag
                for child in record.children("*")
                if child.tag.endswith("AssociationReference")
                or child.tag == "DisciplineIncidentReference"
            ),
            "",
        )
        found.actions.append(
            (
                record.text(_STUDENT_ID),
                _incident_key(record, reference) if reference else ("", ""),
                record.texts("Discipline"),
                record.text("ActualDisciplineActionLength")
                or record.text("DisciplineActionLength"),
            )
        )

    def gradebook_entry(record: Record) -> None:
        offering = "SectionReference/SectionIdentity/CourseOfferingReference/CourseOfferingIdentity/"  # noqa: E501
        session_identity = offering + "SessionReference/SessionIdentity/"
        found.gradebook_entries[record.text("GradebookEntryIdentifier")] = (
            GradebookEntry(
                school_id=record.text(offering + _SCHOOL_ID),
                course_code=record.text(offering + "LocalCourseCode"),
                session_name=record.text(session_identity + "SessionName"),
                school_year=school_year_name(
                    record.text(session_identity + "SchoolYear")
                ),
                date=record.text("DateAssigned"),
            )
        )

    def student_mark(record: Record) -> None:
        found.student_marks.append(
            (
                record.text(
                    "GradebookEntryReference/GradebookEntryIdentity/"
                    "GradebookEntryIdentifier"
                ),
                record.text(_STUDENT_ID),
                record.text("NumericGradeEarned"),
            )
        )

    def assessment(record: Record) -> None:
        found.assessment_subjects[record.text("AssessmentIdentifier")] = record.text(
            "AcademicSubject"
        )

    def student_assessment(record: Record) -> None:
        scores = {
            descriptor_code(score.text("AssessmentReportingMethod")).casefold(): (
                score.text("Result")
            )
            for score in record.children("ScoreResult")
        }
        found.student_assessments.append(
            {
                "student_id": record.text(_STUDENT_ID),
                "assessment": record.text(
                    "AssessmentReference/AssessmentIdentity/AssessmentIdentifier"
                ),
                "date": record.text("AdministrationDate")[:10],
                "school_year": school_year_name(record.text("SchoolYear")),
                "scale_score": scores.get("scale score")
                or scores.get("vertical score", ""),
                "performance_level": record.text("PerformanceLevel/PerformanceLevel"),
                "grade": record.text("WhenAssessedGradeLevel"),
                "not_tested": record.text("ReasonNotTested"),
            }
        )

    def program_stay(record: Record) -> None:
        found.program_stays.append(
            (
                record.tag,
                record.text(_STUDENT_ID),
                record.text("ProgramReference/ProgramIdentity/ProgramType"),
                record.text(_EDORG_ID),
                record.text("BeginDate"),
                record.text("EndDate"),
            )
        )

    def intervention(record: Record) -> None:
        key = (record.text(_EDORG_ID), record.text("InterventionIdentificationCode"))
        found.interventions[key] = Intervention(
            begin_date=record.text("BeginDate"),
            end_date=record.text("EndDate"),
            content_ids=record.texts(".//ContentIdentifier"),
        )

    def intervention_stay(record: Record) -> None:
        identity = "InterventionReference/InterventionIdentity/"
        found.intervention_stays.append(
            (
                record.text(_STUDENT_ID),
                record.text(identity + _EDORG_ID),
                record.text(identity + "InterventionIdentificationCode"),
            )
        )

    return {
        "School": school,
        "Course": course,
        "CourseOffering": course_offering,
        "Session": session,
        "CalendarDate": calendar_date,
        "Student": student,
        "StudentEducationOrganizationAssociation": demographics,
        "StudentSchoolAssociation": school_association,
        "StudentSchoolAttendanceEvent": school_attendance,
        "StudentSectionAttendanceEvent": section_attendance,
        "DisciplineIncident": incident,
        "StudentDisciplineIncidentBehaviorAssociation": behavior,
        "StudentDisciplineIncidentAssociation": behavior,
        "StudentDisciplineIncidentNonOffenderAssociation": non_offender,
        "DisciplineAction": action,
        "GradebookEntry": gradebook_entry,
        "StudentGradebookEntry": student_mark,
        "Assessment": assessment,
        "StudentAssessment": student_assessment,
        "StudentProgramAssociation": program_stay,
        "Intervention": intervention,
        "StudentInterventionAssociation": intervention_stay,
    }


def _incident_key(record: Record, reference: str) -> tuple[str, str]:
    """An incident's (SchoolId, IncidentIdentifier), or ("#ref", id) by reference.

    Ed-Fi refers to an incident either by its identity (nested at some depth
    inside the reference) or by an XML ``ref`` to the incident's ``id``.
    """
    ref = record.attribute(reference, "ref")
    if ref:
        return ("#ref", ref)
    inner = record.child(reference)
    if inner is None:
        return ("", "")
    return (inner.text(".//SchoolId"), inner.text(".//IncidentIdentifier"))


def group_marks(
    found: EdfiRecords,
) -> dict[tuple[str, str, str, str, str], list[float]]:
    """Numeric gradebook marks per (student, school, year, session, course)."""
    marks: dict[tuple[str, str, str, str, str], list[float]] = defaultdict(list)
    for entry_id, student_id, mark in found.student_marks:
        entry = found.gradebook_entries.get(entry_id)
        if entry is None or not mark:
            continue
        key = (
            student_id,
            entry.school_id,
            entry.school_year,
            entry.session_name,
            entry.course_code,
        )
        marks[key].append(float(mark))
    return marks
