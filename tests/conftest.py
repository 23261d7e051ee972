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


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty score cache for one test."""
    d = tmp_path / "cache"
    monkeypatch.setenv("TAS_BENCH_CACHE", str(d))
    return d
