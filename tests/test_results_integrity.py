"""A results folder is all of one run (issue 8, item 11): results.json records the sha256 of
per_clip.csv and of every other file of the run; read_results and the leaderboard refuse a
folder whose files differ (a run killed between per_clip.csv and results.json in a reused
--out), and writing removes a stale results.json first. Schema 1.0 files are read with a
warning. And every output follows the umask (item 21)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from datagen import make_dataset, write_predictions

from evaluators.base import ClipOutput, Evaluator, MetricSpec
from evaluators.registry import EVALUATORS
from leaderboard.collect import collect
from tas_bench.pipeline.scoring import ScoreOptions, score
from tas_bench.runtime import results as results_mod
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import sha256_file
from tas_bench.runtime.results import (
    PER_CLIP_NAME,
    RESULTS_NAME,
    SCHEMA_VERSION,
    ResultsWarning,
    folder_files,
    read_results,
)

EV = "test-results-integrity"


class Dot(Evaluator):
    """mean(pred * ref) per clip, with a small per-clip array (saved by --save-embeddings)."""

    name = EV
    version = "1"
    metrics = (MetricSpec("dot", True, "", "mean(pred * ref)"),)

    def __init__(self) -> None:
        pass

    def process_batch(self, batch):  # noqa: ANN001, ANN201
        return [ClipOutput({"dot": float(np.mean(b.pred * b.ref))}, {"emb": b.pred[:, :4].copy()})
                for b in batch]


if EV not in EVALUATORS:
    EVALUATORS.register(EV, Dot)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "data"
    recs = make_dataset(data, n=3, seconds=0.25)
    write_predictions(tmp_path / "pred-a", data, recs, mode="noisy")
    write_predictions(tmp_path / "pred-b", data, recs, mode="mono")
    return {"data": data, "a": tmp_path / "pred-a", "b": tmp_path / "pred-b", "root": tmp_path / "res",
            "cache": tmp_path / "cache"}


def _score(w: dict[str, Path], system: str, out: Path, **kw) -> None:  # noqa: ANN003
    score(ScoreOptions(data=w["data"], pred=w[system], out=out, evaluators=[EV], cache_dir=w["cache"],
                       system_name=f"sys-{system}", progress=False, **kw))


def _doc(folder: Path) -> dict:
    return json.loads((folder / RESULTS_NAME).read_text(encoding="utf-8"))


def _put_doc(folder: Path, doc: dict) -> None:
    (folder / RESULTS_NAME).write_text(json.dumps(doc), encoding="utf-8")


def _problems(root: Path) -> tuple[list[str], list[str], list[str]]:
    """(systems on the board, error texts, warning texts) of the leaderboard reader."""
    c = collect(root)
    return ([r.system for r in c.results], [str(p) for p in c.problems if p.severity == "error"],
            [str(p) for p in c.problems if p.severity == "warning"])


def test_results_json_records_every_file_of_the_run(world: dict[str, Path], recwarn) -> None:  # noqa: ANN001
    out = world["root"] / "a"
    _score(world, "a", out, save_embeddings=True)
    doc = read_results(out)
    assert not [w for w in recwarn if issubclass(w.category, ResultsWarning)]
    assert doc["schema_version"] == SCHEMA_VERSION == "1.1"
    names = {PER_CLIP_NAME, *(f"embeddings/{EV}/clip{i:03d}.npz" for i in range(3))}
    assert set(doc["files"]) == names
    assert all(doc["files"][n] == sha256_file(out / n) for n in names)
    systems, errors, warns = _problems(world["root"])
    assert systems == ["sys-a"] and errors == [] and warns == []


def test_killed_rerun_into_a_reused_out_leaves_no_results_json(world: dict[str, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = world["root"] / "a"
    _score(world, "a", out)
    first = (out / PER_CLIP_NAME).read_text()

    def killed(path, obj):  # noqa: ANN001, ANN202 - the process dies before results.json
        raise KeyboardInterrupt

    monkeypatch.setattr(results_mod, "write_json_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        _score(world, "b", out)
    assert (out / PER_CLIP_NAME).read_text() != first  # the new run's per_clip.csv ...
    assert not (out / RESULTS_NAME).exists()  # ... and no old results.json beside it
    with pytest.raises(TasBenchError, match="missing results.json"):
        read_results(out)
    systems, errors, _ = _problems(world["root"])
    assert systems == [] and any("missing results.json" in e for e in errors)


def _mixed(world: dict[str, Path]) -> Path:
    """What a SIGKILL between the two writes leaves when the stale results.json is not removed:
    the old run's results.json beside another run's per_clip.csv."""
    a, b = world["root"] / "a", world["root"] / "b"
    _score(world, "a", a)
    _score(world, "b", b)
    shutil.copy(b / PER_CLIP_NAME, a / PER_CLIP_NAME)
    return a


def test_mixed_folder_is_refused_with_its_path_and_reason(world: dict[str, Path]) -> None:
    a = _mixed(world)
    with pytest.raises(TasBenchError, match="mixes files of different runs") as ei:
        read_results(a)
    assert str(a / PER_CLIP_NAME) in str(ei.value)
    systems, errors, _ = _problems(world["root"])
    assert systems == ["sys-b"]
    assert any("res/a/per_clip.csv" in e and "differs from the" in e and "folder left out" in e
               for e in errors)


def test_leaderboard_strict_refuses_a_mixed_folder(world: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from tas_bench.pipeline.cli import main

    _mixed(world)
    rc = main(["leaderboard", "--results", str(world["root"]), "--out", str(tmp_path / "board"),
               "--strict", "--no-figures", "--no-published", "--bootstrap", "10"])
    err = capsys.readouterr().err
    assert rc == 1 and "res/a/per_clip.csv" in err and "mixes files of different runs" in err


def test_changed_missing_and_extra_files(world: dict[str, Path]) -> None:
    out = world["root"] / "a"
    _score(world, "a", out, save_embeddings=True)
    emb = out / "embeddings" / EV
    original = (emb / "clip001.npz").read_bytes()
    np.savez(emb / "clip001.npz", emb=np.zeros((2, 4)))  # another run's (or an edited) file
    with pytest.raises(TasBenchError, match="clip001.npz: sha256"):
        read_results(out)
    assert _problems(world["root"])[0] == []
    (emb / "clip001.npz").write_bytes(original)  # the run's own bytes again: consistent
    assert _problems(world["root"]) == (["sys-a"], [], [])
    (emb / "clip002.npz").unlink()  # removed to save space: nothing mixed, a warning
    (out / "notes.txt").write_text("by hand")  # not written by the run: a warning
    with pytest.warns(ResultsWarning) as rec:
        read_results(out)
    texts = " | ".join(str(w.message) for w in rec)
    assert "clip002.npz: listed in results.json but missing" in texts and "notes.txt" in texts
    systems, errors, warns = _problems(world["root"])
    assert systems == ["sys-a"] and errors == []
    assert any("clip002.npz" in t for t in warns) and any("notes.txt" in t for t in warns)


def test_schema_1_0_is_read_with_a_warning(world: dict[str, Path]) -> None:
    out = world["root"] / "a"
    _score(world, "a", out)
    doc = _doc(out)
    del doc["files"]
    doc["schema_version"] = "1.0"
    _put_doc(out, doc)
    with pytest.warns(ResultsWarning, match="schema 1.0 results.json records no file digests"):
        assert read_results(out)["system"]["name"] == "sys-a"
    systems, errors, warns = _problems(world["root"])
    assert systems == ["sys-a"] and errors == [] and any("schema 1.0" in t for t in warns)


@pytest.mark.parametrize("files, needle", [
    (None, "no 'files' map"),
    (["per_clip.csv"], "'files' must be an object"),
    ({"../a/per_clip.csv": "0" * 64}, "is not a relative path inside the folder"),
    ({"/etc/passwd": "0" * 64}, "is not a relative path inside the folder"),
    ({"./per_clip.csv": "0" * 64}, "is not a relative path inside the folder"),
    ({"results.json": "0" * 64}, "is not a relative path inside the folder"),
    ({"per_clip.csv": "not-a-sha"}, "expected a hex sha256"),
    ({"per_clip.csv": 5}, "expected a hex sha256"),
    ({}, "per_clip.csv: not listed in results.json files"),
    ({"per_clip.csv": "0" * 64}, "per_clip.csv: sha256"),
])
def test_bad_files_maps_are_refused(world: dict[str, Path], files: object, needle: str) -> None:
    out = world["root"] / "a"
    _score(world, "a", out)
    doc = _doc(out)
    if files is None:
        del doc["files"]
    else:
        doc["files"] = files
    _put_doc(out, doc)
    with pytest.raises(TasBenchError, match="(?s)" + needle.replace("(", r"\(").replace(")", r"\)")):
        read_results(out)
    systems, errors, _ = _problems(world["root"])
    assert systems == [] and any(needle in e and "folder left out" in e for e in errors)


def test_folder_in_place_of_a_listed_file(world: dict[str, Path]) -> None:
    out = world["root"] / "a"
    _score(world, "a", out)
    (out / PER_CLIP_NAME).unlink()
    (out / PER_CLIP_NAME).mkdir()
    with pytest.raises(TasBenchError, match="not a regular file"):
        read_results(out)


def test_nested_results_folder_is_its_own_run(world: dict[str, Path]) -> None:
    outer, inner = world["root"], world["root"] / "inner"
    _score(world, "b", inner)
    _score(world, "a", outer)
    assert folder_files(outer) == [PER_CLIP_NAME]
    assert set(_doc(outer)["files"]) == {PER_CLIP_NAME}
    _score(world, "a", inner)  # rescoring the inner folder does not break the outer one
    assert read_results(outer) and read_results(inner)


def test_stale_results_json_is_removed_before_per_clip_is_written(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r"
    results_mod.write_results(out, {"system": {"name": "old"}}, [{"id": "a"}], ["id"])
    seen = []

    def per_clip(path, rows, columns):  # noqa: ANN001, ANN202
        seen.append((out / RESULTS_NAME).exists())
        raise KeyboardInterrupt

    monkeypatch.setattr(results_mod, "write_per_clip", per_clip)
    with pytest.raises(KeyboardInterrupt):
        results_mod.write_results(out, {"system": {"name": "new"}}, [{"id": "a"}], ["id"])
    assert seen == [False]


# ---- item 21: outputs follow the umask ----------------------------------------------------

@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_follow_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    from tas_bench.pipeline.generate import generate_predictions

    old = os.umask(mask)
    try:
        data, pred, res, cache = tmp_path / "data", tmp_path / "pred", tmp_path / "res", tmp_path / "cache"
        make_dataset(data, n=2, seconds=0.25)
        generate_predictions("mono-mono", data, pred, split="test", batch_size=2, progress=False)
        score(ScoreOptions(data=data, pred=pred, out=res, evaluators=[EV], cache_dir=cache,
                           progress=False, save_embeddings=True))
    finally:
        os.umask(old)
    files = {
        "results.json": [res / RESULTS_NAME], "per_clip.csv": [res / PER_CLIP_NAME],
        "cache entries": sorted(cache.rglob("*.npz")), "prediction wavs": sorted(pred.glob("*.wav")),
        "system.json": [pred / "system.json"], "embeddings": sorted((res / "embeddings").rglob("*.npz")),
    }
    for what, paths in files.items():
        assert paths, what
        for p in paths:
            assert stat.S_IMODE(p.stat().st_mode) == mode, f"{what}: {p.name} is {oct(p.stat().st_mode)}"
