"""Patterns that would let the suite pass while hiding a bug."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
OWN_PACKAGES = ("tas_bench", "evaluators", "baselines", "leaderboard")


def test_no_importorskip_on_the_projects_own_modules() -> None:
    """``pytest.importorskip`` of one of our own modules turns a broken import into a skip."""
    pattern = re.compile(r"importorskip\(\s*['\"](" + "|".join(OWN_PACKAGES) + r")\b")
    offenders = [f"{p.name}:{i}" for p in sorted(TESTS.glob("*.py"))
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []
