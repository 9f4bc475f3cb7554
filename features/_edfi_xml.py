"""Streaming access to Ed-Fi interchange XML.

An interchange file is a root element (``InterchangeStudentAttendance``, ...) with a
long, flat list of records under it. :func:`iter_records` parses one file
incrementally and yields each record (a direct child of the root) fully built, then
frees it, so memory holds one record at a time however large the file is.

Element names are matched by their local name inside the file's own namespace
(``http://ed-fi.org/5.2.0`` for the Grand Bend sample), so files of other Ed-Fi
versions read the same way as long as the element names agree.
"""

from __future__ import annotations

import functools
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


class EdfiFormatError(ValueError):
    """A file in an Ed-Fi export is not well-formed XML."""


@dataclass(frozen=True)
class Record:
    """One record of an interchange, with lookups by local element name.

    Paths are ``/``-separated local names relative to the record, for example
    ``"StudentReference/StudentIdentity/StudentUniqueId"``; a leading ``.//`` finds
    the first match at any depth.
    """

    element: ET.Element
    namespace: str

    @property
    def tag(self) -> str:
        return _local(self.element.tag)

    def text(self, path: str) -> str:
        """The stripped text at ``path``, or ``""`` when it is absent."""
        found = self.element.find(_qualified(self.namespace, path))
        if found is None or found.text is None:
            return ""
        return found.text.strip()

    def texts(self, path: str) -> list[str]:
        """Every non-empty stripped text at ``path``, in document order."""
        return [
            found.text.strip()
            for found in self.element.iterfind(_qualified(self.namespace, path))
            if found.text and found.text.strip()
        ]

    def child(self, path: str) -> Record | None:
        """The record-like sub-element at ``path``, or None."""
        found = self.element.find(_qualified(self.namespace, path))
        return None if found is None else Record(found, self.namespace)

    def children(self, path: str) -> list[Record]:
        return [
            Record(found, self.namespace)
            for found in self.element.iterfind(_qualified(self.namespace, path))
        ]

    def attribute(self, path: str, name: str) -> str:
        """An attribute of the element at ``path`` (``""`` when absent)."""
        found = self.element.find(_qualified(self.namespace, path))
        return "" if found is None else found.get(name, "").strip()


def iter_records(path: Path) -> Iterator[Record]:
    """Yield each record of one interchange file, freeing it after use.

    The caller must take what it needs from a record before asking for the next
    one: the element is cleared as soon as the generator resumes.

    Raises
    ------
    EdfiFormatError
        If the file is not well-formed XML; the message names the file, line and
        column.
    """
    depth = 0
    root: ET.Element | None = None
    namespace = ""
    try:
        for event, element in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                if root is None:
                    root = element
                    namespace = _namespace(element.tag)
                depth += 1
                continue
            depth -= 1
            if depth == 1 and root is not None:
                yield Record(element, namespace)
                # Dropping the finished record from the root is what keeps memory
                # flat: clearing only the record would leave an empty shell per
                # record attached to the root.
                root.clear()
    except ET.ParseError as error:
        line, column = error.position
        raise EdfiFormatError(
            f"{path}: not well-formed XML at line {line}, column {column}: "
            f"expected an Ed-Fi interchange file"
        ) from None


def interchange_name(path: Path) -> str:
    """The local name of a file's root element, read without parsing the rest."""
    try:
        for _event, element in ET.iterparse(path, events=("start",)):
            return _local(element.tag)
    except ET.ParseError as error:
        line, column = error.position
        raise EdfiFormatError(
            f"{path}: not well-formed XML at line {line}, column {column}: "
            f"expected an Ed-Fi interchange file"
        ) from None
    return ""


def descriptor_code(value: str) -> str:
    """The code of a descriptor value: the part after ``#`` of its URI.

    ``uri://ed-fi.org/AttendanceEventCategoryDescriptor#Excused Absence`` gives
    ``Excused Absence``; a bare code is returned as it is.
    """
    return value.rsplit("#", 1)[-1].strip()


def school_year_name(value: str) -> str:
    """An Ed-Fi school year (``2021-2022`` or ``2022``) as its spring year."""
    value = value.strip()
    if len(value) == 9 and value[4] == "-":
        return value[5:]
    return value


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


@functools.lru_cache(maxsize=1024)
def _qualified(namespace: str, path: str) -> str:
    if not namespace:
        return path
    prefix = ""
    if path.startswith(".//"):
        prefix, path = ".//", path[3:]
    parts = [f"{{{namespace}}}{part}" for part in path.split("/")]
    return prefix + "/".join(parts)
