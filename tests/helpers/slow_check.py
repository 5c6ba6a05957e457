"""pytest plugin: keep the `slow` marker honest.

Asked with `--check-slow[=SECONDS]` (default 8) or `FINETUNE_CHECK_SLOW=SECONDS`, a test that is not marked slow
and whose call phase took longer than SECONDS fails, with one line naming the test and its time. Without either,
nothing changes. Setup (a module fixture building a dataset) is not counted: it is shared by the module's tests.
"""

from __future__ import annotations

import os

import pytest

DEFAULT_LIMIT = 8.0
ENV = "FINETUNE_CHECK_SLOW"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("finetune").addoption(
        "--check-slow", type=float, nargs="?", const=DEFAULT_LIMIT, default=None, metavar="SECONDS",
        help=f"fail a test not marked slow whose call takes over SECONDS (default {DEFAULT_LIMIT:g}; "
             f"or set {ENV}=SECONDS)")


def slow_limit(config: pytest.Config) -> float | None:
    """The limit in seconds asked for by --check-slow or $FINETUNE_CHECK_SLOW (the option wins); None: no check."""
    limit = config.getoption("--check-slow")
    if limit is None and os.environ.get(ENV, "").strip():
        try:
            limit = float(os.environ[ENV])
        except ValueError:
            raise pytest.UsageError(f"{ENV}={os.environ[ENV]!r} is not a number of seconds") from None
    return limit


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    limit = slow_limit(item.config)
    if (limit is None or call.when != "call" or not report.passed
            or item.get_closest_marker("slow") is not None or call.duration <= limit):
        return
    report.outcome = "failed"
    report.longrepr = (f"{item.nodeid} took {call.duration:.1f} s, over the {limit:g} s allowed a test not marked "
                       f"slow: mark it @pytest.mark.slow or make it quicker")
