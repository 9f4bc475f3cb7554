"""Logging set up once, at the entry point; modules only call ``getLogger``."""

import logging
import sys


def configure_logging(verbose: bool = False) -> None:
    """Send INFO (or DEBUG) lines to standard error, one line per unit of work.

    Summaries go to standard output, so ``ontrack ... 2>/dev/null`` keeps only them.
    """
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Chatty libraries stay at WARNING unless asked for.
    for noisy in ("mlflow", "alembic", "bentoml", "httpx", "urllib3", "numba"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
