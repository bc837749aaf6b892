"""When a test with real daemons fails, its report carries the tail of each daemon's log:
a failure on a CI machine can then be read, not guessed at."""

from __future__ import annotations

import os
import traceback

import pytest
from hypothesis import HealthCheck, settings

import daemons

# Property and fuzz tests (tests/test_fuzz_*.py): in CI a fixed number of examples,
# derandomized, so every run checks the same cases in a bounded time and a failure
# reproduces; HYPOTHESIS_PROFILE=murmurate-deep searches much longer, at random.
settings.register_profile("murmurate-ci", max_examples=100, derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("murmurate-deep", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "murmurate-ci"))

LOG_TAIL_LINES = 80


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    daemons.STARTED.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "teardown" or not report.failed:
        return
    # A failure inside nested trio nurseries shows as an ExceptionGroup whose innermost
    # error Python's traceback printing cuts off (max_group_depth): name each one here.
    if call.excinfo is not None and isinstance(call.excinfo.value, BaseExceptionGroup):
        for leaf in _leaves(call.excinfo.value):
            report.sections.append((f"innermost error: {type(leaf).__name__}",
                                    "".join(traceback.format_exception(leaf, limit=-12))))
    for node in daemons.STARTED:
        log = node.log_so_far()
        if log:
            report.sections.append((f"daemon {node.name} log (last {LOG_TAIL_LINES} lines)",
                                    "\n".join(log[-LOG_TAIL_LINES:])))


def _leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for inner in group.exceptions for leaf in _leaves(inner)]
    return [group]
