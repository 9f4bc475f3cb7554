"""The audit log: one JSON line for every response that carried student-level data.

A line says who asked (token name and role), through which endpoint, about which
schools, for how many students and when (UTC). It never holds a student id, a name or
any other personal field, so the log itself can be read by whoever audits access::

    {"time": "2026-12-01T14:03:07.412Z", "token": "demo-counselor",
     "role": "counselor", "endpoint": "at_risk", "school_ids": ["0001"],
     "n_students": 25}
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from ._auth import Principal

logger = logging.getLogger(__name__)


class AuditLog:
    """Appends audit lines to one file; safe to share between request threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        principal: Principal,
        endpoint: str,
        school_ids: Iterable[str | None],
        n_students: int,
    ) -> None:
        """Append the line for one response; ``None`` school ids are left out."""
        now = dt.datetime.now(dt.UTC)
        line = {
            "time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "token": principal.name,
            "role": principal.role,
            "endpoint": endpoint,
            "school_ids": sorted({school for school in school_ids if school}),
            "n_students": n_students,
        }
        text = json.dumps(line) + "\n"
        # One write of a whole line in append mode: lines from several worker
        # processes interleave but never split.
        with self._lock, self.path.open("a", encoding="utf-8") as stream:
            stream.write(text)
        logger.debug(
            "audit %s %s %s n_students=%s",
            principal.name,
            endpoint,
            line["school_ids"],
            n_students,
        )
