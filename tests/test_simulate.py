"""The simulator end to end on tiny sets: manifest validity, geometry vs prompts/QA/audio,
determinism, split disjointness, output-folder safety, bad input; plus the source corpus."""

from __future__ import annotations

import argparse
import importlib
import json
import math
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from tas_bench.data.geometry import boundary_margin, direction_words
from tas_bench.data.hrtf import load_hrtf
from tas_bench.data.manifest import check_manifest, load_dataset
from tas_bench.data.prompts import check_prompt, relation_gap
from tas_bench.data.qa import check_qa
from tas_bench.data.simulate import (
    SIM_CATEGORIES,
    category_plan,
    clip_seed,
    simulate_clip,
    simulate_dataset,
)
from tas_bench.data.source_corpus import (
    TARGET_RMS,
    SourceCorpus,
    build_corpus,
    discover_sources,
    fit_to_length,
    label_for,
    licence_for,
    load_source,
    prepare_source,
    spec_from_file,
    split_for_group,
)
from tas_bench.data.validate import validate_dataset
from tas_bench.pipeline.commands import simulate as simcmd
from tas_bench.runtime.errors import TasBenchError

simmod = importlib.import_module("tas_bench.data.simulate")
SR = 16000


def _write(path: Path, x: np.ndarray, sr: int = 22050) -> Path:
    pad = np.zeros(int(0.3 * sr))
    sf.write(str(path), np.concatenate([pad, x, pad]), sr)
    return path


def _signals(sr: int = 22050) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    t = np.arange(int(0.8 * sr)) / sr
    clicks = np.zeros(int(0.5 * sr))
    clicks[:: sr // 10] = 0.9
    return {
        "tone": 0.3 * np.sin(2 * np.pi * 440 * t),
        "noise": 0.2 * rng.standard_normal(int(1.5 * sr)),
        "chirp": 0.3 * np.sin(2 * np.pi * (200 + 1500 * np.arange(int(2.5 * sr)) / sr / 2.5)
                              * np.arange(int(2.5 * sr)) / sr),
        "clicks": clicks,
    }


# (file stem, label, split): every split has at least two labels
_LAYOUT = [("tone_a", "tone", "train"), ("noise_a", "noise", "train"),
           ("chirp_a", "chirp", "train"), ("tone_b", "tone", "val"), ("noise_b", "noise", "val"),
           ("chirp_b", "chirp", "test"), ("clicks_b", "clicks", "test"), ("tone_c", "tone", "test")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> SourceCorpus:
    d = tmp_path_factory.mktemp("sources")
    sig = _signals()
    items = []
    for stem, label, split in _LAYOUT:
        x = sig[label] * (1.0 + 0.1 * len(stem) % 3)
        p = _write(d / f"{stem}.wav", x)
        items.append(load_source(spec_from_file(p, label, licence="CC0"), SR, d / "cache",
                                 split=split))
    return SourceCorpus(items=items, config={"test": True})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, corpus) -> Path:
    out = tmp_path_factory.mktemp("ds") / "data"
    s = simulate_dataset(out, n_train=8, n_val=4, n_test=8, duration=1.5, seed=3,
                         progress=False, corpus=corpus)
    assert s.n_clips == 20 and len(s.fingerprint) == 64
    return out


def _sources_by_split(root: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for c in load_dataset(root).clips:
        out.setdefault(c.split, set()).update(s.provenance.file for s in c.sources)
    return out


def test_manifest_and_audio_validate(dataset):
    clips, problems = check_manifest(dataset)
    assert problems == [] and len(clips) == 20
    n, problems = validate_dataset(dataset)
    assert n == 20 and problems == []
    info = json.loads((dataset / "dataset.json").read_text())
    assert info["generator"] == "tas-bench simulate" and info["seed"] == 3
    assert info["hrtf"]["name"] == "kemar" and len(info["hrtf"]["sha256"]) == 64
    assert info["counts"]["test"] == dict.fromkeys(SIM_CATEGORIES, 2)
    assert sum(info["counts"]["train"].values()) == 8
    for c in clips:
        assert c.id == f"{c.split}_{int(c.id.split('_')[1]):06d}"
        assert c.audio == f"audio/{c.split}/{c.id}.wav"
        assert c.seed == clip_seed(3, c.split, int(c.id.split("_")[1]))
        assert c.room and {"dims", "rt60", "absorption", "listener"} <= set(c.room)
        data, sr = sf.read(str(dataset / c.audio), dtype="int16")
        assert sr == SR and data.shape == (int(1.5 * SR), 2)
        assert sf.info(str(dataset / c.audio)).subtype == "PCM_16"


def test_prompts_qa_and_geometry_agree_for_every_clip(dataset):
    for c in load_dataset(dataset).clips:
        assert check_prompt(c.prompt, c.prompt_type, c.sources) == [], c.prompt
        assert c.qa, c.id
        for item in c.qa:
            assert check_qa(item, c.sources) == [], (item.question, item.answer)
        for s in c.sources:
            assert list(direction_words(s.azimuth, s.elevation)) == s.direction
            assert boundary_margin(s.azimuth, s.elevation) >= 10.0
            assert 0.5 <= s.distance <= 10.0 and (s.distance * 2).is_integer()
            assert s.provenance.package and s.provenance.file and s.provenance.licence
        n_expected = 1 if c.category == "single_doa_de" else 2
        assert len(c.sources) == n_expected
        if n_expected == 2:
            assert c.sources[0].label != c.sources[1].label
        if c.category == "relative_direction":
            assert c.prompt_type in "DEF"
            word = {"D": 1, "E": 0, "F": 2}[c.prompt_type]
            assert c.sources[0].direction[word] != c.sources[1].direction[word]
            assert relation_gap(c.prompt_type, c.sources) >= 1.0
        if c.category == "relative_distance":
            assert c.prompt_type in "CG"
            assert abs(c.sources[0].distance - c.sources[1].distance) >= 1.0


def test_lateral_words_agree_with_the_audio(dataset):
    """On the written wavs: the ILD of a single-source clip has the sign of its side."""
    for c in load_dataset(dataset).clips:
        if c.category != "single_doa_de":
            continue
        s = c.sources[0]
        if not 30.0 <= abs(s.azimuth) <= 150.0:
            continue
        x, _ = sf.read(str(dataset / c.audio), dtype="float64")
        ild = 10 * math.log10(np.sum(x[:, 0] ** 2) / np.sum(x[:, 1] ** 2))
        assert (ild > 0) == (s.direction[0] == "left"), (c.id, s.azimuth, ild)


def test_split_source_files_are_disjoint(dataset):
    by_split = _sources_by_split(dataset)
    assert set(by_split) == {"train", "val", "test"}
    assert not by_split["train"] & by_split["val"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["val"] & by_split["test"]


def write_sofa(path: Path, convention: str = "SimpleFreeFieldHRIR") -> Path:
    """A toy SOFA head: directions every 30 deg at +-20 deg elevation, near ear louder+earlier."""
    az = np.arange(15.0, 360.0, 30.0)
    pos = np.stack([np.concatenate([az, az]), np.repeat([20.0, -20.0], len(az)),
                    np.full(2 * len(az), 1.5)], axis=1)
    ir = np.zeros((len(pos), 2, 64))
    for i, a in enumerate(pos[:, 0]):
        lat = math.sin(math.radians(a))
        d = int(round(abs(lat) * 10))
        near, far = (0, 1) if lat > 0 else (1, 0)
        ir[i, near, 5] = 1.0 + 0.5 * abs(lat)
        ir[i, far, 5 + d] = 1.0 - 0.5 * abs(lat)
    with h5py.File(path, "w") as f:
        f.attrs["Conventions"] = np.bytes_(b"SOFA")
        f.attrs["SOFAConventions"] = np.bytes_(convention.encode())
        f.create_dataset("Data.IR", data=ir)
        f.create_dataset("Data.SamplingRate", data=np.array([32000.0]))
        ds = f.create_dataset("SourcePosition", data=pos)
        ds.attrs["Type"] = np.bytes_(b"spherical")
    return path


def _all_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path, corpus, dataset):
    a = simulate_dataset(tmp_path / "a", n_train=8, n_val=4, n_test=8, duration=1.5, seed=3,
                         progress=False, corpus=corpus, workers=2)
    assert _all_bytes(tmp_path / "a").keys() == _all_bytes(dataset).keys()
    assert _all_bytes(tmp_path / "a") == _all_bytes(dataset)
    assert a.fingerprint == simulate_dataset(tmp_path / "a", n_train=8, n_val=4, n_test=8,
                                             duration=1.5, seed=3, progress=False,
                                             corpus=corpus).fingerprint
    b = simulate_dataset(tmp_path / "b", n_train=8, n_val=4, n_test=8, duration=1.5, seed=4,
                         progress=False, corpus=corpus)
    assert b.fingerprint != a.fingerprint
    ma = (tmp_path / "a" / "manifest.jsonl").read_bytes()
    mb = (tmp_path / "b" / "manifest.jsonl").read_bytes()
    assert ma != mb
    wa = (tmp_path / "a" / "audio/test/test_000000.wav").read_bytes()
    wb = (tmp_path / "b" / "audio/test/test_000000.wav").read_bytes()
    assert wa != wb


def test_a_clip_reproduces_alone(dataset, corpus):
    clip = load_dataset(dataset).by_id()["test_000005"]
    ctx = simmod._Context(out=dataset, hrtf=load_hrtf("kemar", SR),
                          pools={s: corpus.split(s) for s in ("train", "val", "test")},
                          candidates=simmod.candidate_directions(load_hrtf("kemar", SR)),
                          duration=1.5, sample_rate=SR, seed=3)
    rec, mix = simulate_clip(ctx, "test", 5, clip.category)
    assert rec == json.loads([ln for ln in (dataset / "manifest.jsonl").read_text().splitlines()
                              if '"test_000005"' in ln][0])
    x, _ = sf.read(str(dataset / clip.audio), dtype="float64")
    assert np.max(np.abs(x.T - mix)) <= 1.0 / 32768 + 1e-9


def test_loud_mix_is_scaled_and_recorded(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(simmod, "GLOBAL_GAIN", 50.0)
    simulate_dataset(tmp_path / "loud", n_train=4, n_val=0, n_test=0, duration=1.0,
                     progress=False, corpus=corpus)
    for c in load_dataset(tmp_path / "loud").clips:
        assert c.extra["mix_scaled"] is True and c.extra["mix_gain"] < 50.0
        x, _ = sf.read(str(tmp_path / "loud" / c.audio))
        assert 0.95 < np.abs(x).max() <= 0.99 + 1e-4


def test_output_folder_safety(tmp_path, corpus):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(TasBenchError, match="--force") as err:
        simulate_dataset(foreign, n_train=2, n_val=0, n_test=0, duration=1.0, progress=False,
                         corpus=corpus)
    assert str(foreign) in str(err.value)
    simulate_dataset(foreign, n_train=2, n_val=0, n_test=0, duration=1.0, progress=False,
                     corpus=corpus, force=True)
    assert (foreign / "notes.txt").read_text() == "mine"
    # re-simulating a previous dataset replaces it; stale clips disappear
    out = tmp_path / "again"
    simulate_dataset(out, n_train=6, n_val=0, n_test=0, duration=1.0, progress=False, corpus=corpus)
    simulate_dataset(out, n_train=2, n_val=0, n_test=0, duration=1.0, progress=False, corpus=corpus)
    assert sorted(p.name for p in (out / "audio/train").iterdir()) == \
        ["train_000000.wav", "train_000001.wav"]
    assert len(load_dataset(out).clips) == 2


def test_bad_arguments(tmp_path, corpus):
    def sim(**kw):
        args = {"n_train": 2, "n_val": 0, "n_test": 0, "duration": 1.0, "progress": False,
                "corpus": corpus}
        args.update(kw)
        return simulate_dataset(tmp_path / "x", **args)

    with pytest.raises(TasBenchError, match="--preset"):
        sim(preset="huge")
    with pytest.raises(TasBenchError, match="--n-train"):
        sim(n_train=-1)
    with pytest.raises(TasBenchError, match="--duration"):
        sim(duration=0.0)
    with pytest.raises(TasBenchError, match="--sample-rate"):
        sim(sample_rate=100)
    with pytest.raises(TasBenchError, match="--seed"):
        sim(seed=-5)
    with pytest.raises(TasBenchError, match="all split sizes are 0"):
        sim(n_train=0)
    with pytest.raises(TasBenchError, match="not found") as err:
        sim(hrtf=str(tmp_path / "head.sofa"))
    assert "head.sofa" in str(err.value)
    wrong = write_sofa(tmp_path / "general.sofa", convention="GeneralFIR")
    with pytest.raises(TasBenchError, match="SOFAConventions") as err:
        sim(hrtf=str(wrong))
    assert "general.sofa" in str(err.value)
    # no folder was created or touched by the refused runs
    assert not (tmp_path / "x" / "manifest.jsonl").exists()


def test_other_head_simulates(tmp_path, corpus):
    head = write_sofa(tmp_path / "toyhead.sofa")
    s = simulate_dataset(tmp_path / "toy", n_train=0, n_val=0, n_test=4, duration=1.0,
                         hrtf=str(head), progress=False, corpus=corpus)
    ds = load_dataset(tmp_path / "toy")
    assert ds.info["hrtf"]["name"] == "toyhead" and s.n_clips == 4
    for c in ds.clips:
        assert c.hrtf["name"] == "toyhead"
        for src in c.sources:
            assert src.azimuth % 30 == 15 and abs(src.elevation) == 20


def test_bad_sources_are_named(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....not really a wav")
    with pytest.raises(TasBenchError, match="unreadable") as err:
        load_source(spec_from_file(junk, "junk"), SR, tmp_path / "c")
    assert "junk.wav" in str(err.value)
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(8000), 16000)
    with pytest.raises(TasBenchError, match="silent") as err:
        load_source(spec_from_file(silent, "silence"), SR, tmp_path / "c")
    assert "silent.wav" in str(err.value)
    with pytest.raises(TasBenchError, match="not found") as err:
        load_source(spec_from_file(tmp_path / "missing.wav", "x"), SR, tmp_path / "c")
    assert "missing.wav" in str(err.value)
    with pytest.raises(TasBenchError, match="no monaural source"):
        build_corpus(SR, specs=[], cache_dir=tmp_path / "c")


def test_source_processing_trims_normalises_and_caches(tmp_path):
    p = _write(tmp_path / "tone.wav", _signals()["tone"])
    y = prepare_source(p, SR)
    assert y.dtype == np.float32
    assert abs(len(y) / SR - 0.8) < 0.1  # the 0.3 s silences at both ends are gone
    assert np.sqrt(np.mean(y.astype(np.float64) ** 2)) == pytest.approx(TARGET_RMS, rel=1e-4)
    cache = tmp_path / "cache"
    a = load_source(spec_from_file(p, "tone"), SR, cache)
    entries = list((cache / "sources").glob("*.npy"))
    assert len(entries) == 1
    np.testing.assert_array_equal(load_source(spec_from_file(p, "tone"), SR, cache).audio, a.audio)
    # a changed file gets a new entry, never the stale one
    _write(p, _signals()["noise"])
    b = load_source(spec_from_file(p, "tone"), SR, cache)
    assert b.sha256 != a.sha256 and len(b.audio) != len(a.audio)
    assert len(list((cache / "sources").glob("*.npy"))) == 2
    # another rate is another entry
    assert load_source(spec_from_file(p, "tone"), 8000, cache).sample_rate == 8000


def test_fit_to_length():
    rng = np.random.default_rng(0)
    x = np.arange(1.0, 11.0)
    w = fit_to_length(x, 4, rng)
    assert len(w) == 4 and np.all(np.diff(w) == 1.0) and w[0] in x
    y = fit_to_length(x, 100, rng, gap_range=(0.001, 0.001), sample_rate=1000)
    assert len(y) == 100
    # whole copies of x separated by one zero
    runs = [r for r in np.split(y, np.where(y == 0)[0]) if r.size > 1]
    assert all(np.all(np.diff(r[r != 0]) == 1.0) for r in runs)
    assert np.count_nonzero(y) >= 80


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(["train", "val", "test"]), st.integers(0, 500), st.integers(0, 2**31))
def test_category_plan_shares(split, n, seed):
    plan = category_plan(split, n, seed)
    assert len(plan) == n and plan == category_plan(split, n, seed)
    counts = Counter(plan)
    shares = simmod.CATEGORY_SHARES[split]
    for c in SIM_CATEGORIES:
        assert abs(counts[c] - shares[c] * n) < 1.0
    if split == "test" and n % 4 == 0:
        assert set(counts.values()) <= {n // 4}


def test_debian_corpus_labels_licences_and_splits(tmp_path):
    specs = discover_sources(("sound-theme-freedesktop", "sonic-pi-samples",
                              "pocketsphinx-testdata"), tmp_path)
    by_key = {s.key: s for s in specs}
    assert not any("audio-channel" in k for k in by_key)
    bell = by_key["sound-theme-freedesktop/bell.oga"]
    assert (bell.label, bell.kind, bell.licence) == ("bell", "event", "CC-BY-3.0")
    choir = by_key["sonic-pi-samples/ambi_choir.flac"]
    assert (choir.label, choir.licence) == ("choir", "CC0")
    assert label_for("sonic-pi-samples", "/x/perc_bell2.flac") == ("bell", "event")
    assert label_for("sonic-pi-samples", "/x/bd_808.flac") == ("bass drum", "music")
    assert label_for("pocketsphinx-testdata", "/x/001.wav") == ("speech", "speech")
    assert licence_for("pocketsphinx-testdata", "/usr/share/pocketsphinx/test/data/cards/001.wav") \
        == "BSD-2"
    splits = Counter(split_for_group(s.group) for s in specs)
    assert all(splits[k] > 5 for k in ("train", "val", "test"))
    # a small real corpus decodes, every item traceable to a package file
    small = build_corpus(SR, packages=("sound-theme-freedesktop",), cache_dir=tmp_path)
    assert len(small.items) > 20
    for it in small.items:
        prov = it.provenance()
        assert prov.package == "sound-theme-freedesktop" and Path(prov.file).is_file()
        assert prov.extra["sha256"] == it.sha256 and it.audio.size > 0


def test_command_runs_and_reports(tmp_path, capsys, monkeypatch, corpus):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    simcmd.register(sub)
    monkeypatch.setattr(simmod, "build_corpus", lambda sample_rate: corpus)
    args = parser.parse_args(["simulate", "--out", str(tmp_path / "cli"), "--n-train", "2",
                              "--n-val", "0", "--n-test", "4", "--duration", "1", "--quiet",
                              "--workers", "1"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "simulated 6 clip(s)" in out and "fingerprint:" in out and "test: 4" in out
    bad = parser.parse_args(["simulate", "--out", str(tmp_path / "bad"), "--hrtf",
                             str(tmp_path / "nope.sofa")])
    with pytest.raises(TasBenchError, match="nope.sofa"):
        bad.func(bad)


def test_real_debian_corpus_small_set(tmp_path):
    """A few clips from the real Debian material: valid, consistent, traceable."""
    out = tmp_path / "real"
    simulate_dataset(out, n_train=4, n_val=4, n_test=8, duration=1.0, seed=11, progress=False)
    n, problems = validate_dataset(out)
    assert n == 16 and problems == []
    for c in load_dataset(out).clips:
        assert check_prompt(c.prompt, c.prompt_type, c.sources) == []
        assert all(check_qa(q, c.sources) == [] for q in c.qa)
        for s in c.sources:
            p = s.provenance
            assert p.package in ("sound-theme-freedesktop", "sonic-pi-samples",
                                 "pocketsphinx-testdata", "espeak-ng")
            assert Path(p.file).is_file() or (p.package == "espeak-ng" and p.extra["text"])
    assert not set.intersection(*_sources_by_split(out).values())


def test_cli_exit_status_on_bad_input(tmp_path, capsys):
    from tas_bench.pipeline.cli import main

    assert main(["simulate", "--out", str(tmp_path / "o"), "--hrtf",
                 str(tmp_path / "missing.sofa"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "missing.sofa" in err and "Traceback" not in err


def test_missing_packages_name_what_to_install(tmp_path, monkeypatch):
    import tas_bench.data.source_corpus as sc

    monkeypatch.setattr(sc, "PACKAGE_GLOBS", {k: (str(tmp_path / "none" / "*.wav"),)
                                              for k in sc.PACKAGE_GLOBS})
    monkeypatch.setattr(sc.shutil, "which", lambda name: None)
    with pytest.raises(TasBenchError, match="apt-get install") as err:
        sc.discover_sources(cache_dir=tmp_path)
    for pkg in sc.DEBIAN_PACKAGES:
        assert pkg in str(err.value)


def test_interrupted_simulation_is_replaced_without_force(tmp_path, corpus, monkeypatch):
    out = tmp_path / "partial"

    def boom(job):
        raise KeyboardInterrupt

    monkeypatch.setattr(simmod, "_work", boom)
    with pytest.raises(KeyboardInterrupt):
        simulate_dataset(out, n_train=2, n_val=0, n_test=0, duration=1.0, progress=False,
                         corpus=corpus)
    assert not (out / "manifest.jsonl").exists()
    monkeypatch.undo()
    simulate_dataset(out, n_train=2, n_val=0, n_test=0, duration=1.0, progress=False,
                     corpus=corpus)
    assert len(load_dataset(out).clips) == 2


def test_continuous_directions_use_interpolated_hrirs(tmp_path, corpus):
    out = tmp_path / "cont"
    simulate_dataset(out, n_train=0, n_val=0, n_test=8, duration=1.5, seed=5, progress=False,
                     corpus=corpus, directions="continuous")
    n, problems = validate_dataset(out)
    assert n == 8 and problems == []
    clips = load_dataset(out).clips
    azs = [s.azimuth for c in clips for s in c.sources]
    assert any(a % 5 for a in azs)  # off the KEMAR 5-degree grid
    for c in clips:
        assert c.hrtf["method"] == "interp"
        assert check_prompt(c.prompt, c.prompt_type, c.sources) == []
        assert all(check_qa(q, c.sources) == [] for q in c.qa)
        for s in c.sources:
            assert boundary_margin(s.azimuth, s.elevation) >= 10.0
            assert -40.0 <= s.elevation <= 50.0
        if c.category == "single_doa_de" and 30 <= abs(c.sources[0].azimuth) <= 150:
            x, _ = sf.read(str(out / c.audio), dtype="float64")
            ild = 10 * math.log10(np.sum(x[:, 0] ** 2) / np.sum(x[:, 1] ** 2))
            assert (ild > 0) == (c.sources[0].direction[0] == "left")
    with pytest.raises(TasBenchError, match="--directions"):
        simulate_dataset(tmp_path / "bad", n_test=4, n_train=0, n_val=0, duration=1.0,
                         progress=False, corpus=corpus, directions="random")
