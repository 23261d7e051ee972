"""benchmarks/assessor_fit.py through its main() on a tiny assessor and tiny data; bad inputs
are refused with one message and no report."""

from __future__ import annotations

import json
from pathlib import Path

from qa_tiny import make_qa_dataset, train_tiny
from scriptload import load_benchmark


def test_assessor_fit_script(tmp_path: Path, capsys) -> None:
    mod = load_benchmark("assessor_fit")
    data = make_qa_dataset(tmp_path / "data")
    train_tiny(data, tmp_path / "run")
    args = ["--assessor", str(tmp_path / "run"), "--data", str(data)]
    assert mod.main([*args, "--out", str(tmp_path / "a.json"), "--clips", "4"]) == 0
    rep = json.loads((tmp_path / "a.json").read_text())
    assert rep["data"]["clips"] == 4 and rep["data"]["split"] == "train"
    assert rep["accuracy"]["DOA"]["items"] == 4  # one DOA item per tiny clip
    assert 0.0 <= rep["accuracy"]["DOA"]["accuracy"] <= 1.0
    assert rep["assessor"]["sha256"] == json.loads((tmp_path / "run" / "run.json").read_text())[
        "checkpoint_sha256"]
    capsys.readouterr()
    for bad in (["--two-source"], ["--categories", "Direction"], ["--clips", "0"],
                ["--split", "nowhere"]):
        assert mod.main([*args, *bad, "--out", str(tmp_path / "b.json")]) == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("error:") and "Traceback" not in err
    assert not (tmp_path / "b.json").exists()
