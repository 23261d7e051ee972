"""Test helper: a training run that dies right after its first checkpoint (a kill -9 at a
deterministic point), for the resume tests of every trainable kind."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tas_bench.runtime import runs


@contextlib.contextmanager
def dies_after_first_checkpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within the block, the first ``runs.save_checkpoint`` writes its checkpoint and then
    raises KeyboardInterrupt (expected by the block); afterwards checkpoints work again."""
    real = runs.save_checkpoint
    calls = {"n": 0}

    def dying(*a: Any, **k: Any) -> Any:
        out = real(*a, **k)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(runs, "save_checkpoint", dying)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(runs, "save_checkpoint", real)
