"""The `slow` marker is kept honest: under --check-slow (or FINETUNE_CHECK_SLOW=SECONDS) a test not marked slow
whose call takes over the limit fails with one line naming it and its time; marked slow, or unasked, it passes."""

import pytest

pytest_plugins = ["pytester"]

SLEEPY = """
import time
import pytest

def test_sleepy():
    time.sleep(0.5)

@pytest.mark.slow
def test_sleepy_marked():
    time.sleep(0.5)

def test_quick():
    pass
"""


@pytest.fixture
def sleepy(pytester: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    monkeypatch.delenv("FINETUNE_CHECK_SLOW", raising=False)
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    pytester.makepyfile(test_sleepy=SLEEPY)
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "helpers.slow_check", "-p", "no:cacheprovider", *args)


def test_an_unmarked_test_over_the_limit_fails_in_one_line(sleepy):
    result = _run(sleepy, "--check-slow", "--slow-limit", "0.2")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.re_match_lines([r"^test_sleepy\.py::test_sleepy took \d+\.\d s, over the 0\.2 s allowed a test not "
                                  r"marked slow: mark it @pytest.mark.slow or make it quicker$"])
    result.stdout.fnmatch_lines(["FAILED test_sleepy.py::test_sleepy*"])


def test_without_the_option_or_with_a_higher_limit_all_pass(sleepy):
    _run(sleepy).assert_outcomes(passed=3)
    _run(sleepy, "--slow-limit", "0.2").assert_outcomes(passed=3)  # a limit alone does not ask for the check
    _run(sleepy, "--check-slow").assert_outcomes(passed=3)  # the default limit, 8 s


def test_the_environment_variable_asks_too_and_must_be_a_number(sleepy, monkeypatch):
    monkeypatch.setenv("FINETUNE_CHECK_SLOW", "0.2")
    _run(sleepy).assert_outcomes(passed=2, failed=1)
    monkeypatch.setenv("FINETUNE_CHECK_SLOW", "soon")
    result = _run(sleepy)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*FINETUNE_CHECK_SLOW='soon' is not a number of seconds*"])
