"""Copies of a shipped district config that write under a test's own folder."""

import re
from pathlib import Path


def config_in(config: Path, folder: Path) -> Path:
    """``config`` with its state and MLflow folders moved under ``folder``."""
    text = config.read_text(encoding="utf-8")
    for key, path in (("state_dir", "state"), ("mlruns_dir", "mlruns")):
        text, count = re.subn(
            rf"^{key} = .*$", f'{key} = "{folder / path}"', text, flags=re.M
        )
        assert count == 1, f"{config}: expected one {key} line in [paths]"
    copy = folder / config.name
    copy.write_text(text, encoding="utf-8")
    return copy
