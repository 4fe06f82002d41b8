"""The fault suite's summary: each scenario adds its counts with `fault_summary(line)`; they are
printed at the end of the pytest run (also when the scenario failed: the counts say why)."""
import pytest

SUMMARY = pytest.StashKey[list]()


@pytest.fixture
def fault_summary(request):
    lines = request.config.stash.setdefault(SUMMARY, [])
    return lines.append


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.section("fault suite")
        for line in lines:
            terminalreporter.write_line(line)
