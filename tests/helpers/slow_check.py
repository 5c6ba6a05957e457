"""pytest plugin: keep the `slow` marker honest.

Asked with `--check-slow` (limit 8 s, or `--slow-limit SECONDS`) or with `FINETUNE_CHECK_SLOW=SECONDS`, a test that
is not marked slow and whose call phase took longer than the limit fails, with one line naming the test and its
time. Without either, nothing changes. Setup is not counted: a module fixture is shared by the module's tests.
"""

from __future__ import annotations

import os

import pytest

DEFAULT_LIMIT = 8.0
ENV = "FINETUNE_CHECK_SLOW"
LIMIT = pytest.StashKey[float | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("finetune")
    group.addoption("--check-slow", action="store_true",
                    help=f"fail a test not marked slow whose call takes over --slow-limit (or set {ENV}=SECONDS)")
    group.addoption("--slow-limit", type=float, default=None, metavar="SECONDS",
                    help=f"the limit of --check-slow (default: ${ENV}, else {DEFAULT_LIMIT:g})")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[LIMIT] = slow_limit(config)


def slow_limit(config: pytest.Config) -> float | None:
    """The limit in seconds that --check-slow/--slow-limit or $FINETUNE_CHECK_SLOW ask for; None: no check."""
    text = os.environ.get(ENV, "").strip()
    if not config.getoption("--check-slow") and not text:
        return None
    if config.getoption("--slow-limit") is not None:
        return config.getoption("--slow-limit")
    try:
        return float(text) if text else DEFAULT_LIMIT
    except ValueError:
        raise pytest.UsageError(f"{ENV}={text!r} is not a number of seconds") from None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    limit = item.config.stash.get(LIMIT, None)
    if (limit is None or call.when != "call" or not report.passed
            or item.get_closest_marker("slow") is not None or call.duration <= limit):
        return
    report.outcome = "failed"
    report.longrepr = (f"{item.nodeid} took {call.duration:.1f} s, over the {limit:g} s allowed a test not marked "
                       f"slow: mark it @pytest.mark.slow or make it quicker")
