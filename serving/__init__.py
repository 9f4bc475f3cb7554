"""serving: see docs/CONTRACTS.md; filled in by its issue."""

__all__: list[str] = []
