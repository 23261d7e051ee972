"""Sharded simulation and its merge (issue 11 item 5): a merge is byte-identical to one
process (every file), the rank comes from torchrun/accelerate or a Slurm array, FLAC datasets
read and validate, and every bad shard set is refused with one clear message."""

from __future__ import annotations

import importlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from simdata import tiny_corpus

from tas_bench.data.manifest import load_dataset
from tas_bench.data.shards import (
    SHARD_INFO_NAME,
    SHARD_MANIFEST_NAME,
    merge_shards,
    parse_shard,
    resolve_shard,
    shard_folder,
    shard_from_env,
    shard_range,
)
from tas_bench.data.simulate import simulate_dataset
from tas_bench.data.validate import validate_dataset
from tas_bench.pipeline import cli
from tas_bench.runtime.audio_io import read_audio, write_audio
from tas_bench.runtime.errors import AudioError, TasBenchError

simmod = importlib.import_module("tas_bench.data.simulate")
SIZES = {"n_train": 5, "n_val": 2, "n_test": 4}
KW = dict(SIZES, duration=0.5, seed=3, progress=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("src"))


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) by relative path -> bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _shards(tmp: Path, corpus, n: int, **kw) -> list[Path]:
    opts = dict(KW, **kw)
    return [simulate_dataset(tmp, corpus=corpus, shard=(i, n), **opts).out for i in range(n)]


@pytest.fixture(scope="module")
def single(tmp_path_factory, corpus) -> Path:
    out = tmp_path_factory.mktemp("one") / "data"
    simulate_dataset(out, corpus=corpus, **KW)
    return out


@pytest.fixture(scope="module")
def three(tmp_path_factory, corpus) -> list[Path]:
    return _shards(tmp_path_factory.mktemp("three"), corpus, 3)


# ------------------------------------------------------------------ byte-identical merge

def test_merge_is_byte_identical_to_one_process(tmp_path, single, three):
    one = _files(single)
    assert "manifest.jsonl" in one and "dataset.json" in one and ".tas-bench-simulate.json" in one
    s = merge_shards(list(reversed(three)), tmp_path / "merged")  # order of the folders is free
    assert _files(tmp_path / "merged") == one
    assert s.n_clips == 11 and s.shards == 3
    assert s.fingerprint == validate_fingerprint(single)


def validate_fingerprint(root: Path) -> str:
    from tas_bench.data.manifest import dataset_fingerprint

    return dataset_fingerprint(root)


def test_more_shards_than_clips_and_hard_links(tmp_path, corpus, single):
    """N = 13 > 11 clips (two shards are empty); hard links give the same bytes."""
    shards = _shards(tmp_path / "s", corpus, 13)
    assert json.loads((shards[0] / SHARD_INFO_NAME).read_text())["clips"] == 0
    merge_shards(shards, tmp_path / "m", link=True)
    assert _files(tmp_path / "m") == _files(single)


def test_cli_shard_auto_from_torchrun_env_and_merge(tmp_path, monkeypatch, capsys, corpus,
                                                    single):
    monkeypatch.setattr(simmod, "build_corpus", lambda sample_rate: corpus)
    base = ["simulate", "--out", str(tmp_path / "sim"), "--n-train", "5", "--n-val", "2",
            "--n-test", "4", "--duration", "0.5", "--seed", "3", "--quiet", "--workers", "1"]
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert cli.main([*base, "--shard", "auto"]) == 0
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    folders = sorted((tmp_path / "sim").iterdir())
    assert [f.name for f in folders] == ["shard-00000-of-00002", "shard-00001-of-00002"]
    for f in folders:  # a shard is not a dataset: validate and score refuse it
        assert not (f / "manifest.jsonl").exists()
        assert cli.main(["validate", str(f)]) == 2
        assert "one shard of `tas-bench simulate --shard`" in capsys.readouterr().err
    assert cli.main(["simulate-merge", *map(str, folders), "--out", str(tmp_path / "m"),
                     "--quiet"]) == 0
    assert _files(tmp_path / "m") == _files(single)


def test_flac_shards_merge_like_one_flac_process(tmp_path, corpus):
    one = simulate_dataset(tmp_path / "one", corpus=corpus, audio_format="flac", **KW)
    merge_shards(_shards(tmp_path / "s", corpus, 2, audio_format="flac"), tmp_path / "m")
    assert _files(tmp_path / "m") == _files(one.out)


# ------------------------------------------------------------------ which shard

def test_shard_ranges_tile_the_clips():
    for total in (0, 1, 11, 100):
        for n in (1, 2, 3, 7, 13):
            ranges = [shard_range(total, (i, n)) for i in range(n)]
            assert ranges[0][0] == 0 and ranges[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
            assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1
    assert shard_range(11, (1, 3)) == (3, 7)  # floor(11/3) .. floor(22/3)
    assert shard_folder("x", (3, 128)).name == "shard-00003-of-00128"


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None),
    ({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}, (3, 8)),
    ({"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}, (1, 4)),
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "10"},
     (4, 10)),
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "10",
      "SLURM_ARRAY_TASK_COUNT": "10"}, (0, 10)),
    ({"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "9",
      "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "5"}, (3, 5)),
    # a torchrun job of 4 ranks in each task of a 3-task array: 12 shards
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "3",
      "RANK": "1", "WORLD_SIZE": "4"}, (9, 12)),
])
def test_rank_from_environment(env, expected):
    assert shard_from_env(env) == expected
    if expected is not None:
        assert resolve_shard("auto", env) == expected


@pytest.mark.parametrize(("env", "match"), [
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "7",
      "SLURM_ARRAY_TASK_COUNT": "3"}, "list with gaps"),       # --array=1,5,7
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, "SLURM_ARRAY_TASK_MIN is not set"),
    ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x' is not an integer"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, "is not a rank"),
    ({"RANK": "0"}, "WORLD_SIZE is not set"),
])
def test_bad_rank_environment(env, match):
    with pytest.raises(TasBenchError, match=match):
        resolve_shard("auto", env)


def test_auto_without_a_launcher_and_world_without_shard():
    with pytest.raises(TasBenchError, match="found no rank in the environment"):
        resolve_shard("auto", {})
    with pytest.raises(TasBenchError, match="pass --shard auto"):
        resolve_shard(None, {"RANK": "0", "WORLD_SIZE": "2"})
    # a Slurm array without --shard is a plain run (each task may simulate its own seed)
    assert resolve_shard(None, {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2",
                                "SLURM_ARRAY_TASK_MIN": "0"}) is None
    assert resolve_shard(None, {"WORLD_SIZE": "1"}) is None


@pytest.mark.parametrize(("text", "match"), [
    ("3/3", "out of range: shards are 0-based, I must be in 0..2"),
    ("-1/2", "out of range"),
    ("0/0", "N must be >= 1"),
    ("a/b", "expects I/N"),
    ("1", "expects I/N"),
])
def test_shard_out_of_range(text, match):
    with pytest.raises(TasBenchError, match=match):
        parse_shard(text)
    assert parse_shard("2/3") == (2, 3)


def test_cli_shard_out_of_range_is_one_line(tmp_path, capsys):
    assert cli.main(["simulate", "--out", str(tmp_path / "x"), "--shard", "4/4", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--shard: 4/4 is out of range" in err
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ refused merges

def test_refuses_shards_of_another_seed_or_config(tmp_path, corpus, three):
    other_seed = simulate_dataset(tmp_path / "a", corpus=corpus, shard=(1, 3),
                                  **dict(KW, seed=4)).out
    with pytest.raises(TasBenchError, match="seed 4.*share one seed") as e:
        merge_shards([three[0], other_seed, three[2]], tmp_path / "m")
    assert str(other_seed) in str(e.value)
    other_cfg = simulate_dataset(tmp_path / "b", corpus=corpus, shard=(1, 3),
                                 **dict(KW, duration=0.6)).out
    with pytest.raises(TasBenchError, match=r"another configuration.*config\.duration") as e:
        merge_shards([three[0], other_cfg, three[2]], tmp_path / "m")
    assert str(other_cfg) in str(e.value)
    other_n = simulate_dataset(tmp_path / "c", corpus=corpus, shard=(1, 2), **KW).out
    with pytest.raises(TasBenchError, match="shard 1 of 2.*one of 3"):
        merge_shards([three[0], other_n], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_refuses_missing_and_duplicate_shards(tmp_path, three):
    with pytest.raises(TasBenchError, match=r"shard\(s\) 1 of 3 missing"):
        merge_shards([three[0], three[2]], tmp_path / "m")
    with pytest.raises(TasBenchError, match="shard 0 of 3 is given twice \\(the same folder\\)"):
        merge_shards([three[0], three[0], three[1], three[2]], tmp_path / "m")
    copy = tmp_path / "copy"
    shutil.copytree(three[2], copy)
    with pytest.raises(TasBenchError, match=f"shard 2 of 3 is given twice: .*{copy}"):
        merge_shards([*three, copy], tmp_path / "m")
    with pytest.raises(TasBenchError, match="no shard folders"):
        merge_shards([], tmp_path / "m")


def test_refuses_unfinished_foreign_or_modified_shards(tmp_path, three, single):
    killed = tmp_path / "killed"
    shutil.copytree(three[1], killed)
    (killed / SHARD_INFO_NAME).unlink()
    with pytest.raises(TasBenchError, match="not a finished shard: no shard.json"):
        merge_shards([three[0], killed, three[2]], tmp_path / "m")
    with pytest.raises(TasBenchError, match="is a finished dataset, not a shard"):
        merge_shards([single], tmp_path / "m")
    with pytest.raises(TasBenchError, match="shard folder not found"):
        merge_shards([tmp_path / "nope"], tmp_path / "m")
    edited = tmp_path / "edited"
    shutil.copytree(three[1], edited)
    part = edited / SHARD_MANIFEST_NAME
    part.write_text(part.read_text().replace('"prompt": "', '"prompt": "X'))
    with pytest.raises(TasBenchError, match="differs from shard.json"):
        merge_shards([three[0], edited, three[2]], tmp_path / "m")
    assert not (tmp_path / "m" / "manifest.jsonl").exists()  # nothing published
    lost = tmp_path / "lost"
    shutil.copytree(three[1], lost)
    next((lost / "audio").rglob("*.wav")).unlink()
    with pytest.raises(TasBenchError, match="is missing from the shard"):
        merge_shards([three[0], lost, three[2]], tmp_path / "m")
    with pytest.raises(TasBenchError, match="inside\\) the shard folder"):
        merge_shards(three, three[0] / "out")


def test_cli_merge_bad_input_is_one_line(tmp_path, capsys, three):
    assert cli.main(["simulate-merge", str(three[0]), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "shard(s) 1, 2 of 3 missing" in err


# ------------------------------------------------------------------ FLAC

@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 3000), st.floats(0.01, 1.0))
def test_flac_holds_exactly_the_wav_samples(tmp_path_factory, seed, n, scale):
    d = tmp_path_factory.mktemp("flac")
    x = np.clip(np.random.default_rng(seed).standard_normal((2, n)) * scale, -1, 1)
    write_audio(d / "a.wav", x, 16000)
    write_audio(d / "a.flac", x, 16000, audio_format="flac")
    w, _ = sf.read(d / "a.wav", dtype="int16")
    f, _ = sf.read(d / "a.flac", dtype="int16")
    assert np.array_equal(w, f)
    a, b = read_audio(d / "a.wav"), read_audio(d / "a.flac")
    assert np.array_equal(a.samples, b.samples) and (a.format, b.format) == ("WAV", "FLAC")


def test_flac_bytes_are_stable_and_smaller(tmp_path):
    x = 0.1 * np.sin(np.linspace(0, 2000, 32000))[None, :].repeat(2, 0)
    s1 = write_audio(tmp_path / "a.flac", x, 16000, audio_format="flac")
    s2 = write_audio(tmp_path / "b.flac", x, 16000, audio_format="flac")
    assert s1 == s2 and (tmp_path / "a.flac").read_bytes() == (tmp_path / "b.flac").read_bytes()
    write_audio(tmp_path / "a.wav", x, 16000)
    assert (tmp_path / "a.flac").stat().st_size < 0.7 * (tmp_path / "a.wav").stat().st_size
    with pytest.raises(AudioError, match="not one of"):
        write_audio(tmp_path / "a.ogg", x, 16000, audio_format="ogg")


def test_flac_dataset_validates_and_loads(tmp_path, corpus, single):
    out = simulate_dataset(tmp_path / "f", corpus=corpus, audio_format="flac", **KW).out
    n, problems = validate_dataset(out)
    assert n == 11 and problems == []
    info = json.loads((out / "dataset.json").read_text())
    assert info["config"]["audio_format"] == "flac"
    ds = load_dataset(out)
    assert all(c.audio.endswith(".flac") for c in ds.clips)
    for c in ds.clips:  # the same samples as the WAV dataset of the same seed
        wav = read_audio(single / c.audio.replace(".flac", ".wav")).samples
        assert np.array_equal(read_audio(out / c.audio).samples, wav)


def test_validate_catches_wrong_containers_and_truncated_flac(tmp_path, corpus):
    out = simulate_dataset(tmp_path / "f", corpus=corpus, audio_format="flac", **KW).out
    clips = load_dataset(out).clips
    # a WAV under a .flac name
    first = out / clips[0].audio
    a = read_audio(first)
    buf = io.BytesIO()
    sf.write(buf, a.samples.T, a.sample_rate, subtype="PCM_16", format="WAV")
    first.write_bytes(buf.getvalue())
    # a FLAC cut short
    second = out / clips[1].audio
    second.write_bytes(second.read_bytes()[: second.stat().st_size // 2])
    with pytest.raises(AudioError, match="unreadable or truncated|truncated"):
        read_audio(second)
    _, problems = validate_dataset(out)
    text = "\n".join(map(str, problems))
    assert "holds WAV audio, its name says FLAC" in text
    assert f"{clips[1].audio}: unreadable or truncated" in text
    # dataset.json says flac, a clip names a .wav
    info = json.loads((out / "dataset.json").read_text())
    info["config"]["audio_format"] = "wav"
    (out / "dataset.json").write_text(json.dumps(info))
    _, problems = validate_dataset(out)
    assert any("dataset.json says audio_format 'wav'" in str(p) for p in problems)


def test_cli_audio_format_flag(tmp_path, monkeypatch, corpus):
    monkeypatch.setattr(simmod, "build_corpus", lambda sample_rate: corpus)
    assert cli.main(["simulate", "--out", str(tmp_path / "d"), "--n-train", "1", "--n-val", "0",
                     "--n-test", "1", "--duration", "0.5", "--quiet", "--workers", "1",
                     "--audio-format", "flac"]) == 0
    assert sorted(p.suffix for p in (tmp_path / "d" / "audio").rglob("*.*")) == [".flac"] * 2
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["simulate", "--out", "x", "--audio-format", "mp3"])


def test_generate_and_score_read_flac_like_wav(tmp_path, corpus, single):
    """The readers downstream (a system's input, the scorer's references) give the same
    numbers on the FLAC and the WAV dataset of one seed."""
    import tas_bench

    flac = simulate_dataset(tmp_path / "f", corpus=corpus, audio_format="flac", **KW).out
    res = {}
    for name, data in (("wav", single), ("flac", flac)):
        pred = tas_bench.generate("mono-mono", data, out=tmp_path / f"pred-{name}")
        r = tas_bench.score(data, pred, evaluators=["signal", "cues"])
        res[name] = r.metrics["mean"]
    assert res["wav"].equals(res["flac"])


def test_python_api_audio_format(tmp_path, monkeypatch, corpus):
    import tas_bench

    monkeypatch.setattr(simmod, "build_corpus", lambda sample_rate: corpus)
    ds = tas_bench.simulate(tmp_path / "d", n_train=1, n_val=0, n_test=1, duration=0.5,
                            workers=1, audio_format="flac")
    assert list(ds.clips["audio"].str.endswith(".flac")) == [True, True]
