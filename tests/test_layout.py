"""The repository's shape: what a reader and pytest rely on."""

from collections import Counter
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_test_modules_have_unique_names():
    # Test folders are not packages, so pytest imports each test module by its bare
    # name: two `test_x.py` in different folders collide at collection.
    names = Counter(path.name for path in (ROOT / "tests").rglob("test_*.py"))

    assert [name for name, count in names.items() if count > 1] == []


def test_no_package_imports_another_packages_private_modules():
    packages = ("features", "training", "serving", "monitoring", "ontrack")
    offenders = []
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for other in packages:
                if other != package and (
                    f"from {other}._" in text or f"import {other}._" in text
                ):
                    offenders.append(f"{path.relative_to(ROOT)} -> {other}")

    assert offenders == []
