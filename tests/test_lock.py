"""The installed packages are exactly the ones in ``constraints.txt`` (the lock).

A benchmark must give the same numbers on every fresh install: `make demo`, `make test` and
`.ci/run` install under ``-c constraints.txt``; this test fails when the venv running it holds
another version of a locked package, or a package the lock does not name.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
PROJECT = "tas-bench"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, str]:
    """``{normalised name: exact version}`` from ``name==version`` lines (comments skipped)."""
    pins: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if not m:
            raise ValueError(f"constraints.txt line {n}: not an exact pin: {raw!r}")
        name = _norm(m.group(1))
        if name in pins:
            raise ValueError(f"constraints.txt line {n}: {m.group(1)} pinned twice")
        pins[name] = m.group(2)
    return pins


def installed() -> dict[str, str]:
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out[_norm(name)] = dist.version
    return out


def test_lock_file_is_exact_pins() -> None:
    pins = parse_lock(LOCK.read_text())
    for must in ("torch", "numpy", "scipy", "librosa", "pandas", "transformers", "diffusers",
                 "peft", "soundfile", "pip"):
        assert must in pins, f"{must} is not in the lock"
    assert pins["torch"].startswith("2.13.0"), "torch must stay on the 2.13.0 CPU build"


def test_installed_versions_equal_the_lock() -> None:
    pins = parse_lock(LOCK.read_text())
    have = installed()
    wrong = {n: (v, have[n]) for n, v in pins.items() if n in have and have[n] != v}
    missing = sorted(n for n in pins if n not in have)
    unlocked = sorted(n for n in have if n not in pins and n != PROJECT)
    assert not wrong, f"installed versions differ from constraints.txt (lock, installed): {wrong}"
    assert not missing, f"locked but not installed: {missing}"
    assert not unlocked, f"installed but not in constraints.txt (run `make lock`): {unlocked}"


@pytest.mark.parametrize("bad", ["numpy>=2", "numpy", "numpy==2.0\nnumpy==2.1"])
def test_parse_lock_refuses_loose_or_duplicate_pins(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_lock(bad)


def test_makefile_installs_under_the_lock() -> None:
    mk = (ROOT / "Makefile").read_text()
    installs = [ln for ln in mk.splitlines() if "$(PIP)" in ln and not ln.startswith("PIP")]
    assert installs and all("$(PIP)" in ln for ln in installs)
    assert "-c constraints.txt" in mk
    assert "constraints.txt" in mk.split("$(STAMP):", 1)[1].splitlines()[0]
