"""A dataset made by ``tas-bench simulate`` loads with Hugging Face ``datasets``
(:func:`tas_bench.data.hf.load`): audio equal to the files, prompt/split/geometry columns equal
to the manifest; no network (offline mode, and every socket connection refused)."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

os.environ["HF_DATASETS_OFFLINE"] = "1"  # before `datasets` is imported: its config reads it
os.environ["HF_HUB_OFFLINE"] = "1"

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

from tas_bench.data import hf  # noqa: E402
from tas_bench.data.manifest import dataset_fingerprint, load_dataset  # noqa: E402
from tas_bench.pipeline.cli import main as cli_main  # noqa: E402
from tas_bench.runtime.errors import TasBenchError  # noqa: E402

SR = 16000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 clips (train 2, val 1, test 4 with a two-source clip) from 12 one-second sounds."""
    root = tmp_path_factory.mktemp("hf")
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    rows = ["file,label,licence,split"]
    for label in ("tone", "noise", "chirp"):
        (root / "src" / label).mkdir(parents=True)
        for i, split in enumerate(("train", "train", "val", "test")):
            x = {"tone": 0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t),
                 "noise": 0.2 * rng.standard_normal(SR),
                 "chirp": 0.3 * np.sin(2 * np.pi * (200 + 800 * t) * t)}[label]
            sf.write(root / "src" / label / f"{label}{i}.wav", x, SR)
            rows.append(f"{label}/{label}{i}.wav,{label},CC0,{split}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    out = root / "data"
    assert cli_main(["simulate", "--out", str(out), "--sources", str(root / "src"), "--labels",
                     str(root / "labels.csv"), "--n-train", "2", "--n-val", "1", "--n-test", "4",
                     "--duration", "0.5", "--seed", "31", "--workers", "1", "--quiet"]) == 0
    return out


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise AssertionError(f"network access attempted: {a!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def test_splits_audio_and_columns_equal_the_manifest(data: Path) -> None:
    before = dataset_fingerprint(data)
    dd = hf.load(data)
    manifest = load_dataset(data)
    assert isinstance(dd, datasets.DatasetDict) and list(dd) == ["train", "val", "test"]
    assert isinstance(dd["test"].features["audio"], datasets.Audio)
    for split, part in dd.items():
        clips = manifest.split(split)
        assert part.num_rows == len(clips) and part["id"] == [c.id for c in clips]
        for row, clip in zip(part, clips):
            x, sr = sf.read(manifest.audio_path(clip), dtype="float32", always_2d=True)
            a = row["audio"]
            assert a["array"].shape == (2, round(clip.duration * clip.sample_rate))
            np.testing.assert_array_equal(a["array"], x.T)  # both channels, 0 = left
            assert a["sampling_rate"] == sr == clip.sample_rate
            assert Path(a["path"]) == manifest.audio_path(clip)
            assert (row["split"], row["prompt"], row["prompt_type"], row["category"]) == (
                clip.split, clip.prompt, clip.prompt_type, clip.category)
            assert row["duration"] == clip.duration and row["n_sources"] == len(clip.sources)
            assert row["hrtf"] == clip.hrtf["name"] and row["room"] == clip.room["name"]
            assert row["sources"] == [
                {"label": s.label, "azimuth": s.azimuth, "elevation": s.elevation,
                 "distance": s.distance, "direction": s.direction} for s in clip.sources]
            for k in (1, 2):
                s = clip.sources[k - 1] if k <= len(clip.sources) else None
                assert row[f"source{k}_azimuth"] == (s.azimuth if s else None)
                assert row[f"source{k}_elevation"] == (s.elevation if s else None)
                assert row[f"source{k}_distance"] == (s.distance if s else None)
                assert row[f"source{k}_label"] == (s.label if s else None)
            assert [q["answer"] for q in row["qa"]] == [q.answer for q in clip.qa]
    # a two-source clip is in the test split, so the flat columns go to source2 everywhere
    assert max(dd["test"]["n_sources"]) == 2 and "source2_azimuth" in dd["train"].features
    assert dataset_fingerprint(data) == before  # nothing was written into the dataset
    assert sorted(p.name for p in data.iterdir() if not p.name.startswith(".")) == [
        "audio", "dataset.json", "manifest.jsonl"]


def test_columns_select_and_batches(data: Path) -> None:
    test = hf.load(data, splits=["test"])["test"]
    assert test["prompt"] == [c.prompt for c in load_dataset(data).split("test")]
    batch = test[:2]
    assert [a["array"].shape[0] for a in batch["audio"]] == [2, 2]
    sides = [math.sin(math.radians(s[0]["azimuth"])) > 0 for s in test["sources"]]
    assert len(sides) == test.num_rows


def test_undecoded_audio_is_the_path(data: Path) -> None:
    row = hf.load(data, decode=False)["val"][0]
    clip = load_dataset(data).split("val")[0]
    assert row["audio"] == {"bytes": None, "path": str(load_dataset(data).audio_path(clip))}


def test_bad_requests(data: Path, tmp_path: Path) -> None:
    with pytest.raises(TasBenchError, match="no clip of split 'validation'.*train, val, test"):
        hf.load(data, splits=["validation"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.jsonl").write_text(json.dumps({"id": "x"}) + "\n")
    with pytest.raises(TasBenchError, match="invalid manifest"):
        hf.load(bad)


def test_decode_audio_reads_bytes_of_any_soundfile_format(tmp_path: Path) -> None:
    x = np.stack([np.linspace(-0.5, 0.5, 800), np.linspace(0.25, -0.25, 800)], axis=1)
    p = tmp_path / "a.flac"
    sf.write(p, x, 8000, subtype="PCM_16")
    out = hf.decode_audio({"audio": [{"path": None, "bytes": p.read_bytes()}], "id": ["a"]})
    a = out["audio"][0]
    assert a["sampling_rate"] == 8000 and a["array"].shape == (2, 800) and out["id"] == ["a"]
    np.testing.assert_allclose(a["array"], x.T, atol=1 / 32768)
    assert hf.decode_audio({"id": ["a"]}) == {"id": ["a"]}  # a column selection without audio


def test_tas_bench_does_not_import_datasets_at_module_level() -> None:
    code = ("import sys, tas_bench, tas_bench.data.hf, tas_bench.pipeline.cli; "
            "assert 'datasets' not in sys.modules, 'datasets imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
