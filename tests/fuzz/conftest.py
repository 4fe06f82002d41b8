"""Shared by the fuzz tests: a one-line summary per fuzz suite in the terminal (also with -q)."""
import pytest

from . import stats

SUITES = {"test_api_schema.py": "schemathesis", "test_webhook_envelopes.py": "webhook fuzz"}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report):
    if report.failed:
        suite = SUITES.get(report.nodeid.split("::")[0].rsplit("/", 1)[-1])
        if suite:
            stats.FAILED_TESTS[suite] += 1


def pytest_terminal_summary(terminalreporter):
    for suite in SUITES.values():
        if suite not in stats.CASES and suite not in stats.FAILED_TESTS:
            continue
        line = f"{suite}: {stats.CASES[suite]} cases, {stats.FAILED_TESTS[suite]} failures"
        details = stats.DETAILS.get(suite)
        if details:
            line += " (" + ", ".join(f"{label} {n}" for label, n in sorted(details.items())) + ")"
        terminalreporter.write_line(line)
