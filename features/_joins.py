"""Joining indicator frames that share their keys."""

from __future__ import annotations

from collections.abc import Sequence

import ibis.expr.types as ir


def attach(base: ir.Table, extra: ir.Table, keys: Sequence[str]) -> ir.Table:
    """``base`` with the non-key columns of ``extra`` (a left join on ``keys``).

    Rows of ``base`` without a match get nulls; ``extra`` must have at most one row
    per key.
    """
    return attach_all(base, [extra], keys)


def attach_all(
    base: ir.Table, extras: Sequence[ir.Table], keys: Sequence[str]
) -> ir.Table:
    """``base`` with the non-key columns of every table of ``extras``, as
    :func:`attach` one after the other, in one chain of left joins.

    One chain and one selection: Ibis checks each selection against the whole
    chain, so joining part by part costs time that grows with every part.
    """
    joined = base
    for extra in extras:
        joined = joined.left_join(extra, [base[key] == extra[key] for key in keys])
    return joined.select(
        *[base[column] for column in base.columns],
        *[
            extra[column]
            for extra in extras
            for column in extra.columns
            if column not in keys
        ],
    )
