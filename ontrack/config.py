"""The district configuration: one TOML file, loaded into typed objects once.

Every stage reads its settings from a :class:`DistrictConfig`; nothing reads the file
again or looks at globals. The file is validated as a whole before any work starts, and
a bad key or value fails with a :class:`ConfigError` whose message names the section,
the key, the value received and what would be accepted, for example::

    configs/demo.toml: [privacy] min_n = 0: must be at least 1

School years are named by their spring year (``2024`` is August 2023 to June 2024).
Checkpoints are month-day strings; a checkpoint in August to December falls in the
autumn of the school year, one in January to July in its spring.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "ABCThresholds",
    "ConfigError",
    "DistrictConfig",
    "KPI",
    "load_config",
]

PROTECTED_ATTRIBUTES = (
    "race_ethnicity",
    "gender",
    "disability",
    "english_learner",
    "economically_disadvantaged",
)
# The autumn months of a school year; a checkpoint in any other month is in spring.
AUTUMN_MONTHS = range(8, 13)


class ConfigError(ValueError):
    """The district configuration file is missing, unreadable or invalid."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class District(_Section):
    name: str = Field(min_length=1)
    # Month-day of the first day of a school year; days before it belong to the
    # previous school year.
    school_year_start: str = "08-01"

    @field_validator("school_year_start")
    @classmethod
    def _month_day(cls, value: str) -> str:
        return _check_month_day(value)


class Paths(_Section):
    state_dir: Path = Path("state")
    mlruns_dir: Path = Path("mlruns")


class Calendar(_Section):
    checkpoints: list[str] = Field(min_length=1)

    @field_validator("checkpoints")
    @classmethod
    def _month_days(cls, values: list[str]) -> list[str]:
        checked = [_check_month_day(value) for value in values]
        if len(set(checked)) != len(checked):
            raise ValueError("checkpoints must be distinct")
        return sorted(checked, key=_school_year_order)


class KPI(_Section):
    """A student-level standard and the targets for the share of students missing it.

    ``definition`` picks the rule: ``chronic_absence`` (absent at least
    ``absence_threshold`` of enrolled days, enrolled at least ``min_enrolled_days``),
    ``course_failure`` (a final mark below ``failing_mark`` in a core subject), or
    ``not_proficient`` (the year's state test in ``subject`` not proficient).
    Targets are rates of students *missing* the standard, so lower is better when
    ``direction`` is ``at_most``.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1)
    definition: Literal["chronic_absence", "course_failure", "not_proficient"]
    absence_threshold: Rate = 0.10
    min_enrolled_days: int = Field(default=10, ge=1)
    failing_mark: float = Field(default=65.0, ge=0, le=100)
    core_subjects: list[Literal["ela", "math", "science", "social_studies"]] = [
        "ela",
        "math",
        "science",
        "social_studies",
    ]
    subject: Literal["ela", "math", "science"] | None = None
    direction: Literal["at_most"] = "at_most"
    district_target: Rate
    school_targets: dict[str, Rate] = {}

    @model_validator(mode="after")
    def _subject_for_tests(self) -> KPI:
        if self.definition == "not_proficient" and self.subject is None:
            raise ValueError("a not_proficient KPI needs subject = 'ela' or 'math'")
        return self

    def target_for(self, school_id: str | None) -> float:
        """The target rate for a school, or the district's when none is set."""
        if school_id is None:
            return self.district_target
        return self.school_targets.get(school_id, self.district_target)


class ABCThresholds(_Section):
    """Attendance, behaviour and course-performance flags (Ed-Fi Analytics defaults).

    A flag is raised when the rate or mark is strictly below its threshold, or when
    the incident count is strictly above ``incidents_at_risk``.
    """

    attendance_early_warning: Rate = 0.88
    attendance_at_risk: Rate = 0.80
    incidents_at_risk: int = Field(default=2, ge=0)
    out_of_school_suspensions_at_risk: int = Field(default=1, ge=1)
    mark_early_warning: float = Field(default=72.0, ge=0, le=100)
    mark_at_risk: float = Field(default=65.0, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> ABCThresholds:
        if self.attendance_at_risk > self.attendance_early_warning:
            raise ValueError(
                "attendance_at_risk must not exceed attendance_early_warning"
            )
        if self.mark_at_risk > self.mark_early_warning:
            raise ValueError("mark_at_risk must not exceed mark_early_warning")
        return self


class Privacy(_Section):
    protected_attributes: list[
        Literal[
            "race_ethnicity",
            "gender",
            "disability",
            "english_learner",
            "economically_disadvantaged",
        ]
    ] = list(PROTECTED_ATTRIBUTES)
    use_protected_as_features: bool = False
    min_n: int = Field(default=10, ge=1)


class Model(_Section):
    seed: int = 42
    n_jobs: int = Field(default=2, ge=1)
    # Cut-offs on the calibrated risk: at or above ``high`` is high, at or above
    # ``moderate`` is moderate, the rest is low.
    tier_high: Rate = 0.5
    tier_moderate: Rate = 0.25
    top_drivers: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _tiers_ordered(self) -> Model:
        if self.tier_moderate > self.tier_high:
            raise ValueError("tier_moderate must not exceed tier_high")
        return self


class Monitoring(_Section):
    # Share of drifted columns at or above which `ontrack monitor` alerts.
    drift_alert_share: Rate = 0.5
    min_school_n: int = Field(default=30, ge=1)


class Token(_Section):
    name: str = Field(min_length=1)
    role: Literal["counselor", "leader", "service"]
    # SHA-256 hex digest of the bearer token; the token itself is never stored.
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    schools: list[str] = []

    @model_validator(mode="after")
    def _counselor_schools(self) -> Token:
        if self.role == "counselor" and not self.schools:
            raise ValueError("a counselor token needs at least one school")
        return self


class Serving(_Section):
    tokens: list[Token] = []
    max_records: int = Field(default=10_000, ge=1)


class DistrictConfig(_Section):
    """The whole configuration of one district, validated."""

    district: District
    paths: Paths = Paths()
    calendar: Calendar
    kpis: list[KPI] = Field(min_length=1)
    abc: ABCThresholds = ABCThresholds()
    privacy: Privacy = Privacy()
    model: Model = Model()
    monitoring: Monitoring = Monitoring()
    serving: Serving = Serving()
    # The folder the file was read from; relative paths are resolved against it.
    base_dir: Path = Path(".")

    @field_validator("kpis")
    @classmethod
    def _unique_kpis(cls, kpis: list[KPI]) -> list[KPI]:
        names = [kpi.name for kpi in kpis]
        if len(set(names)) != len(names):
            raise ValueError(f"KPI names must be distinct, got {names}")
        return kpis

    @property
    def state_dir(self) -> Path:
        return (self.base_dir / self.paths.state_dir).resolve()

    @property
    def mlruns_dir(self) -> Path:
        return (self.base_dir / self.paths.mlruns_dir).resolve()

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.mlruns_dir / 'mlflow.db'}"

    def kpi(self, name: str) -> KPI:
        """The KPI called ``name``; ``KeyError`` naming the known ones otherwise."""
        for kpi in self.kpis:
            if kpi.name == name:
                return kpi
        known = ", ".join(k.name for k in self.kpis)
        raise KeyError(f"unknown KPI {name!r}; the config defines: {known}")

    def checkpoint_dates(self, school_year: int) -> list[dt.date]:
        """The checkpoint dates inside ``school_year`` (named by its spring year)."""
        return [checkpoint_date(md, school_year) for md in self.calendar.checkpoints]


def checkpoint_date(month_day: str, school_year: int) -> dt.date:
    """The date of a ``MM-DD`` checkpoint in a school year named by its spring year.

    Example: ``checkpoint_date("10-01", 2024)`` is 2023-10-01 and
    ``checkpoint_date("02-01", 2024)`` is 2024-02-01.
    """
    month, day = (int(part) for part in month_day.split("-"))
    year = school_year - 1 if month in AUTUMN_MONTHS else school_year
    return dt.date(year, month, day)


def _check_month_day(value: str) -> str:
    try:
        parsed = dt.datetime.strptime(f"2000-{value}", "%Y-%m-%d")
    except ValueError:
        raise ValueError(f"expected a month-day like '10-01', got {value!r}") from None
    return parsed.strftime("%m-%d")


def _school_year_order(month_day: str) -> tuple[int, str]:
    return (0 if int(month_day[:2]) in AUTUMN_MONTHS else 1, month_day)


def load_config(path: str | Path) -> DistrictConfig:
    """Read and validate a district configuration file.

    Raises
    ------
    ConfigError
        If the file is missing, is not TOML, or breaks a rule; the message names
        the section, the key, the value and what is allowed.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    raw.pop("base_dir", None)
    try:
        return DistrictConfig(**raw, base_dir=path.parent.resolve())
    except ValidationError as error:
        raise ConfigError(_describe(path, error, raw)) from None


def _describe(path: Path, error: ValidationError, raw: dict) -> str:
    """One line per broken rule: ``file: [section] key = value: what is allowed``."""
    lines = []
    for problem in error.errors():
        location = [
            part for part in problem["loc"] if not isinstance(part, str) or part
        ]
        where = _where(location, raw)
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
            allowed = _allowed_keys(location[:-1])
            if allowed:
                message += f"; allowed keys: {', '.join(allowed)}"
        elif problem["type"] == "missing":
            message = "required key is missing"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if problem["type"] == "missing":
            lines.append(f"{path}: {where}: {message}")
        else:
            lines.append(f"{path}: {where} = {problem['input']!r}: {message}")
    return "\n".join(lines)


def _where(location: list, raw: dict) -> str:
    """``[kpis.chronic_absence] district_target`` from a pydantic error location."""
    if not location:
        return "[top level]"
    section = [str(location[0])]
    rest = list(location[1:])
    if section[0] in ("kpis", "tokens") or (
        section[0] == "serving" and rest[:1] == ["tokens"]
    ):
        if section[0] == "serving":
            section.append(str(rest.pop(0)))
        items = (
            raw.get("kpis")
            if section[0] == "kpis"
            else raw.get("serving", {}).get("tokens")
        )
        if rest and isinstance(rest[0], int):
            index = rest.pop(0)
            name = None
            if isinstance(items, list) and index < len(items):
                name = (
                    items[index].get("name") if isinstance(items[index], dict) else None
                )
            section.append(str(name) if name else f"#{index + 1}")
    if not rest:
        return f"[{'.'.join(section)}]"
    return f"[{'.'.join(section)}] {'.'.join(str(part) for part in rest)}"


def _allowed_keys(location: list) -> list[str]:
    model: type[BaseModel] = DistrictConfig
    for part in location:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        inner = getattr(annotation, "__args__", None)
        candidate = inner[0] if inner else annotation
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            model = candidate
        else:
            return []
    return sorted(name for name in model.model_fields if name != "base_dir")
