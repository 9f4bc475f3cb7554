"""The district configuration: one TOML file, loaded into typed objects once.

Every stage reads its settings from a :class:`DistrictConfig`; nothing reads the file
again or looks at globals. The file is validated as a whole before any work starts, and
a bad key or value fails with a :class:`ConfigError` whose message names the section,
the key, the value received and what would be accepted, for example::

    configs/demo.toml: [privacy] min_n = 0: Input should be greater than or equal to 1

Numbers and booleans are strict: TOML's ``true`` is not the number 1, and the string
``"yes"`` is not a boolean, so a typo cannot turn small-cell suppression off.

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
from pydantic_core import PydanticCustomError

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
# The service refuses a /score call with more records than this whatever the config
# says (serving's MAX_RECORDS), so a larger [serving] max_records would only mislead.
MAX_RECORDS_CAP = 10_000


class ConfigError(ValueError):
    """The district configuration file is missing, unreadable or invalid."""


class _Section(BaseModel):
    # Strict: no coercion of TOML values (true to 1, "0.5" to 0.5, "yes" to True);
    # an int is still a valid float. Paths are the one field read from strings.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


Rate = Annotated[float, Field(ge=0.0, le=1.0)]
ConfigPath = Annotated[Path, Field(strict=False)]


def _rule(message: str, key: tuple = (), value: object = None) -> PydanticCustomError:
    """A broken rule that names the key it blames below the validator's location.

    ``key`` (a tuple of location parts) and ``value`` replace pydantic's location and
    input in the message, so a rule checked on a whole section or list can still say
    ``[serving.tokens] sha256 = '...'`` rather than print the whole list.
    """
    return PydanticCustomError(
        "config_rule", message, {"blamed_key": key, "blamed_value": value}
    )


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
    state_dir: ConfigPath = Path("state")
    mlruns_dir: ConfigPath = Path("mlruns")


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
    # 0 would make every student chronically absent, 1 none who ever attended.
    absence_threshold: float = Field(default=0.10, gt=0.0, lt=1.0)
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

    @field_validator("core_subjects")
    @classmethod
    def _some_core_subject(cls, subjects: list[str]) -> list[str]:
        # With none, no course counts and every course-failure label is withheld.
        if not subjects:
            raise ValueError(
                "name at least one of 'ela', 'math', 'science', 'social_studies'"
            )
        return subjects

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
    max_records: int = Field(default=MAX_RECORDS_CAP, ge=1, le=MAX_RECORDS_CAP)

    @field_validator("tokens")
    @classmethod
    def _distinct_tokens(cls, tokens: list[Token]) -> list[Token]:
        # The audit log names the holder, and a request's role and schools are
        # looked up by the token's digest: each must point at one entry.
        names = [entry.name for entry in tokens]
        for name in names:
            if names.count(name) > 1:
                numbers = [str(i) for i, other in enumerate(names, 1) if other == name]
                raise _rule(
                    f"token names must be distinct; entries {' and '.join(numbers)} "
                    "share it",
                    ("name",),
                    name,
                )
        digests = [entry.sha256 for entry in tokens]
        for digest in digests:
            if digests.count(digest) > 1:
                holders = [entry.name for entry in tokens if entry.sha256 == digest]
                raise _rule(
                    "each holder needs a token of their own; "
                    f"{' and '.join(map(repr, holders))} share this digest "
                    "(make another with `ontrack token`)",
                    ("sha256",),
                    digest,
                )
        return tokens


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

    @model_validator(mode="after")
    def _checkpoints_inside_the_school_year(self) -> DistrictConfig:
        # A checkpoint in August to December is dated in the autumn, one in January
        # to July in the spring (AUTUMN_MONTHS). With school_year_start "09-01", a
        # checkpoint "08-15" of school year 2024 would be 2023-08-15, which is in
        # school year 2023: refused, since the config alone shows it. A checkpoint
        # inside the year but in the summer break (07-15 with start 08-01) is not:
        # only the calendar knows the last school day, so `ontrack features` warns.
        start = self.district.school_year_start
        month, day = (int(part) for part in start.split("-"))
        # Any school year shows it (02-29 is refused, so every year has every day).
        first, after_last = dt.date(2023, month, day), dt.date(2024, month, day)
        for month_day in self.calendar.checkpoints:
            if not first <= checkpoint_date(month_day, 2024) < after_last:
                raise _rule(
                    f"checkpoint {month_day!r} falls outside the school year: with "
                    f"[district] school_year_start = {start!r} a year runs from "
                    f"{start} to the day before, and a checkpoint is dated in its "
                    "autumn in August to December, in its spring in January to July",
                    ("calendar", "checkpoints"),
                    list(self.calendar.checkpoints),
                )
        return self

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
    month_day = parsed.strftime("%m-%d")
    # Every school year must have the day: 02-29 would fail in three years of four.
    if month_day == "02-29":
        raise ValueError("02-29 is not in every year; use 02-28 or 03-01")
    return month_day


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
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; give the config file in it") from None
    except PermissionError:
        raise ConfigError(f"{path}: not readable (permission denied)") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} at "
            f"offset {error.start}); a config file must be UTF-8 TOML"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    raw.pop("base_dir", None)
    try:
        config = DistrictConfig(**raw, base_dir=path.parent.resolve())
    except ValidationError as error:
        raise ConfigError(_describe(path, error, raw)) from None
    _check_folders(path, config)
    return config


def _check_folders(path: Path, config: DistrictConfig) -> None:
    """Refuse a state or MLflow folder that is a file (later mkdirs would fail)."""
    for key, folder in (
        ("state_dir", config.state_dir),
        ("mlruns_dir", config.mlruns_dir),
    ):
        # A folder that does not exist yet is made by the first stage that writes,
        # so only the nearest part that exists must be a folder.
        existing = next(part for part in (folder, *folder.parents) if part.exists())
        if not existing.is_dir():
            raise ConfigError(
                f"{path}: [paths] {key} = {str(getattr(config.paths, key))!r}: "
                f"{existing} is a file, not a folder"
            )


def _describe(path: Path, error: ValidationError, raw: dict) -> str:
    """One line per broken rule: ``file: [section] key = value: what is allowed``."""
    lines = []
    for problem in error.errors():
        location = [
            part for part in problem["loc"] if not isinstance(part, str) or part
        ]
        shown = problem["input"]
        if problem["type"] == "config_rule":
            location += problem["ctx"]["blamed_key"]
            shown = problem["ctx"]["blamed_value"]
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
            lines.append(f"{path}: {where} = {_toml_value(shown)}: {message}")
    return "\n".join(lines)


def _toml_value(value: object) -> str:
    """A value as the message shows it: Python's repr, but booleans as TOML writes
    them (``min_n = true``, not ``True``)."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


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
