"""The end-of-run line that counts skipped tests by reason (conftest's `pytest_terminal_summary`)."""

from types import SimpleNamespace

from tests.conftest import pytest_terminal_summary


class FakeReporter:
    def __init__(self, skipped):
        self.stats = {"skipped": skipped}
        self.lines: list[str] = []

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def skipped(reason: str) -> SimpleNamespace:
    return SimpleNamespace(longrepr=("tests/test_x.py", 1, f"Skipped: {reason}"))


def test_skips_are_counted_and_grouped_by_reason():
    reporter = FakeReporter([skipped("no chromium"), skipped("torchgeo missing"), skipped("no chromium")])
    pytest_terminal_summary(reporter)
    assert reporter.lines == ["skipped 3: 2 × no chromium; 1 × torchgeo missing"]


def test_a_run_without_skips_says_zero():
    reporter = FakeReporter([])
    pytest_terminal_summary(reporter)
    assert reporter.lines == ["skipped 0"]
