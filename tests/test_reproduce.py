"""`tas-bench reproduce` end to end on a few simulated clips: every stage, then a rerun that
skips everything, then a changed dataset that invalidates stale predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tas_bench.pipeline.cli import main


@pytest.mark.slow
def test_reproduce_runs_then_skips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["reproduce", "--out", str(out), "--n-test", "4", "--systems", "mono-mono",
            "--evaluators", "signal", "--no-progress"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "leaderboard page:" in first
    res = json.loads((out / "results" / "mono-mono" / "results.json").read_text())
    assert res["system"]["name"] == "mono-mono" and res["system"]["revision"]
    assert res["system"]["generated"]["dataset_fingerprint"] == res["dataset"]["fingerprint"]
    assert res["dataset"]["n_clips"] == 4 and res["metrics"]["stft"]["n"] == 4
    page = (out / "board" / "index.html").read_text()
    assert "mono-mono" in page and "Mono-Mono" in page  # measured and published rows
    assert main(args) == 0
    second = capsys.readouterr().out
    for stage in ("simulate", "generate mono-mono"):
        line = next(ln for ln in second.splitlines() if ln.strip().startswith(stage))
        assert "skipped" in line, line
    assert "cache hits 4, misses 0" in second
    # a different dataset: predictions of the old one are removed and made again
    assert main(args[:4] + ["6"] + args[5:]) == 0
    third = capsys.readouterr().out
    assert "removed predictions of mono-mono" in third
    assert len(list((out / "predictions" / "mono-mono").glob("*.wav"))) == 6
    res = json.loads((out / "results" / "mono-mono" / "results.json").read_text())
    assert res["metrics"]["stft"]["n"] == 6


def test_reproduce_rejects_unknown_system(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--out", str(tmp_path), "--n-test", "4", "--systems", "nope",
                 "--no-progress"]) == 2
    assert "unknown system 'nope'" in capsys.readouterr().err


def test_reproduce_names_a_broken_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from baselines.registry import SYSTEMS

    monkeypatch.setattr(SYSTEMS, "_entries", dict(SYSTEMS._entries))
    monkeypatch.setattr(SYSTEMS, "_origins", dict(SYSTEMS._origins))
    SYSTEMS.register("half-installed", "no_such_package_xyz.system:load")
    assert main(["reproduce", "--out", str(tmp_path), "--n-test", "4", "--systems",
                 "half-installed", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "system 'half-installed' cannot be used" in err and "no_such_package_xyz" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
