"""Joining indicator frames that share their keys."""

from __future__ import annotations

from collections.abc import Sequence

import ibis.expr.types as ir


def attach(base: ir.Table, extra: ir.Table, keys: Sequence[str]) -> ir.Table:
    """``base`` with the non-key columns of ``extra`` (a left join on ``keys``).

    Rows of ``base`` without a match get nulls; ``extra`` must have at most one row
    per key.
    """
    joined = base.left_join(extra, [base[key] == extra[key] for key in keys])
    return joined.select(
        *[base[column] for column in base.columns],
        *[extra[column] for column in extra.columns if column not in keys],
    )
