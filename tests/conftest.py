"""Shared test set-up: every test run gets private cache/home folders (never the user's)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (a hash of the test seeds them): a failure
# is reproducible and never comes and goes. HYPOTHESIS_PROFILE=explore searches afresh.
settings.register_profile("tas-bench", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tas-bench"))

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="tas-bench-tests-"))
os.environ["TAS_BENCH_CACHE"] = str(_SESSION_TMP / "cache")
os.environ["TAS_BENCH_HOME"] = str(_SESSION_TMP / "home")
os.environ["TAS_BENCH_WEIGHTS"] = str(_SESSION_TMP / "weights")
os.environ.setdefault("OMP_NUM_THREADS", "2")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's private cache/home/weights folders (they can hold GBs)."""
    import shutil

    if os.environ.get("TAS_BENCH_KEEP_TEST_TMP") != "1":
        shutil.rmtree(_SESSION_TMP, ignore_errors=True)


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty score cache for one test."""
    d = tmp_path / "cache"
    monkeypatch.setenv("TAS_BENCH_CACHE", str(d))
    return d


# ---- plugin isolation ------------------------------------------------------------------------
# Test modules register test evaluators at import, and pytest imports every module before the
# first test runs: left visible, module A's test evaluator would join module B's default-set
# score runs (a stub that asserts on its input made B's tests depend on the test order). Each
# name registered from a test module is recorded with that module and hidden from the tests
# of every other module.
from evaluators.registry import EVALUATORS  # noqa: E402

_OWNER: dict[str, str] = {}
_register = EVALUATORS.register


def _recording_register(name, obj=None):  # noqa: ANN001, ANN202
    import inspect

    frame = inspect.currentframe()
    while frame is not None and not frame.f_globals.get("__name__", "").startswith("test_"):
        frame = frame.f_back
    if frame is not None:  # registered (directly or through exec'd plugin code) by a test module
        _OWNER.setdefault(name, frame.f_globals["__name__"])
    return _register(name, obj)


EVALUATORS.register = _recording_register  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _isolate_test_plugins(request: pytest.FixtureRequest):  # noqa: ANN202
    here = request.module.__name__
    hidden = {n: EVALUATORS._entries.pop(n) for n, owner in list(_OWNER.items())
              if owner != here and n in EVALUATORS._entries}
    try:
        yield
    finally:
        for n, obj in hidden.items():
            EVALUATORS._entries.setdefault(n, obj)
