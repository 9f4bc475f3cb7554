"""Logging set up once, at the entry point; modules only call ``getLogger``."""

import logging

from rich.console import Console
from rich.logging import RichHandler


def configure_logging(verbose: bool = False) -> None:
    """Send INFO (or DEBUG) lines to standard error, one line per unit of work."""
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        handlers=[
            RichHandler(
                console=Console(stderr=True),
                show_path=False,
                markup=False,
                rich_tracebacks=False,
            )
        ],
        force=True,
    )
    # Chatty libraries stay at WARNING unless asked for.
    for noisy in ("mlflow", "alembic", "bentoml", "httpx", "urllib3", "numba"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
