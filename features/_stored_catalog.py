"""The feature catalog that goes with a state folder's snapshots.

Event-level snapshots (``ontrack features``) have the fixed columns of
:data:`FEATURE_CATALOG`. A flat student table brings its own columns, so its ingest
stores their catalog next to the snapshots, in ``snapshots/feature_catalog.json``;
training, serving and monitoring ask :func:`feature_catalog_for` which catalog the
snapshots of a state folder were built with, never assuming the event-level one.
``ontrack features`` removes a stored catalog when it writes event-level snapshots,
so a state folder never pairs one kind of snapshot with the other's catalog.

The file is a JSON object ``{"features": [entry, ...]}``, one entry per feature with
the fields of :class:`Feature` (``name``, ``domain``, ``template``, ``kind``,
``raises_risk``, ``protected``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from types import MappingProxyType

from features._catalog import FEATURE_CATALOG, Feature

CATALOG_FILE = Path("snapshots") / "feature_catalog.json"
_FIELDS = {feature_field.name for feature_field in fields(Feature)}


class CatalogFileError(ValueError):
    """A stored feature catalog cannot be read."""


def feature_catalog_for(state_dir: Path) -> Mapping[str, Feature]:
    """The catalog of the snapshots under ``state_dir``.

    The stored catalog of a flat student table if ``snapshots/feature_catalog.json``
    exists, else :data:`FEATURE_CATALOG`.

    Raises
    ------
    CatalogFileError
        If the stored file is not a catalog; the message names the file, the entry
        and what was expected.
    """
    path = Path(state_dir) / CATALOG_FILE
    if not path.is_file():
        return FEATURE_CATALOG
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = document["features"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise CatalogFileError(
            f"{path}: not a feature catalog ({error}); expected a JSON object with "
            "a 'features' list"
        ) from None
    catalog = {}
    for position, entry in enumerate(entries, start=1):
        unknown = set(entry) - _FIELDS if isinstance(entry, dict) else {"?"}
        if unknown or "name" not in entry:
            raise CatalogFileError(
                f"{path}: feature #{position} = {entry!r}: expected an object with "
                f"a name and only the keys {', '.join(sorted(_FIELDS))}"
            )
        catalog[entry["name"]] = Feature(**entry)
    return MappingProxyType(catalog)


def write_feature_catalog(catalog: Mapping[str, Feature], state_dir: Path) -> Path:
    """Store ``catalog`` as the state folder's catalog, atomically; its path."""
    path = Path(state_dir) / CATALOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    document = {"features": [asdict(feature) for feature in catalog.values()]}
    try:
        partial.write_text(json.dumps(document, indent=1), encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def remove_feature_catalog(state_dir: Path) -> None:
    """Forget a stored catalog: the snapshots are event-level again."""
    (Path(state_dir) / CATALOG_FILE).unlink(missing_ok=True)
