"""Counts of generated cases, shown at the end of the run (tests/fuzz/conftest.py prints them)."""
from collections import Counter

CASES: Counter = Counter()  # suite name → generated cases sent
FAILED_TESTS: Counter = Counter()  # suite name → failed tests
DETAILS: dict[str, Counter] = {}  # suite name → Counter of labels (operation, status…)


def count(suite: str, label: str = "") -> None:
    CASES[suite] += 1
    if label:
        DETAILS.setdefault(suite, Counter())[label] += 1
