"""`tas-bench simulate --sources DIR [--labels FILE.csv]` (issue 11, item 1): a dataset from a
folder of the user's own sounds in three formats (one stereo), labels from sub-folders and from
a CSV, sha256 provenance, `validate` passes, disjoint splits, the same bytes whatever order the
files were made and listed in; each bad file skipped by name; each bad folder / CSV one line,
exit 2, no traceback."""

from __future__ import annotations

import io
import json
import types
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_check import one_line_error as _one_line_error
from cli_check import run_cli as _cli
from hypothesis import given
from hypothesis import strategies as st
from scipy.signal import resample_poly

import tas_bench.data.user_sources as us
from tas_bench.data.manifest import load_dataset
from tas_bench.data.source_corpus import (
    MIN_SOURCE_SAMPLES,
    SourceCorpus,
    SourceItem,
    SourceSpec,
    split_for_group,
)
from tas_bench.data.validate import validate_dataset
from tas_bench.runtime.fileio import sha256_file

LABELS = {"dog": "WAV", "bell": "FLAC", "rain": "OGG"}
_EXT = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg"}
SIM = ["--n-train", "4", "--n-val", "2", "--n-test", "4", "--duration", "0.5", "--quiet",
       "--workers", "1"]


def _sound(seed: int, n: int = 6000, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    env = np.hanning(n)[:, None] if channels > 1 else np.hanning(n)
    shape = (n, channels) if channels > 1 else (n,)
    return 0.3 * rng.standard_normal(shape) * env


def _encode(x: np.ndarray, fmt: str, sr: int = 22050) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype="VORBIS" if fmt == "OGG" else None)
    return buf.getvalue()


def _names_covering_splits(label: str, ext: str) -> list[str]:
    """Three file names under ``label/`` whose hashed splits are train, val and test."""
    found: dict[str, str] = {}
    k = 0
    while len(found) < 3:
        rel = f"{label}/{label}_{k:02d}.{ext}"
        found.setdefault(split_for_group(f"user/{rel}"), rel)
        k += 1
    return [found[s] for s in ("train", "val", "test")]


def _folder_files() -> dict[str, bytes]:
    """Bytes of every file of the sub-folder layout (encoded once: an Ogg stream's serial
    number is random, so re-encoding would change the bytes)."""
    files: dict[str, bytes] = {}
    seed = 0
    for label, fmt in LABELS.items():
        for rel in _names_covering_splits(label, _EXT[fmt]):
            files[rel] = _encode(_sound(seed), fmt)
            seed += 1
    files["dog/stereo_dog.wav"] = _encode(_sound(99, channels=2), "WAV", 16000)
    return files


FILES = _folder_files()
FILES_BY_LABEL = {lab: [r.split("/", 1)[1] for r in FILES if r.startswith(lab + "/")]
                  for lab in LABELS}


def _write_files(root: Path, files: dict[str, bytes], order: Iterable[str] | None = None) -> Path:
    for rel in order if order is not None else files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(files[rel])
    return root


def _simulate(src: Path, out: Path, capsys, *extra: str) -> tuple[int, str, str]:  # noqa: ANN001
    return _cli(["simulate", "--sources", str(src), "--out", str(out), "--seed", "5", *SIM,
                 *extra], capsys)


# ---------------------------------------------------------------------------- good folders

def test_dataset_from_subfolders_in_three_formats(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    src = _write_files(tmp_path / "src", FILES)
    out = tmp_path / "data"
    rc, stdout, err = _simulate(src, out, capsys)
    assert rc == 0, err
    assert f"user sources: {len(FILES)} file(s) from {src.resolve()}" in stdout
    assert "mixed down to mono: 1 file(s): dog/stereo_dog.wav" in stdout
    n, problems = validate_dataset(out)
    assert n == 10 and problems == []
    rc, vout, _ = _cli(["validate", str(out)], capsys)
    assert rc == 0 and "no problems" in vout
    ds = load_dataset(out)
    seen = set()
    for clip in ds.clips:
        for s in clip.sources:
            p = s.provenance
            assert p.package == "user" and p.licence == "unknown"
            assert p.file in FILES and s.label == p.file.split("/")[0]
            assert p.extra["sha256"] == sha256_file(src / p.file)
            assert p.extra["label_from"] == "folder"
            assert p.extra["mixed_to_mono"] == (p.extra["channels"] == 2)
            seen.add(p.file.rsplit(".", 1)[1])
    assert seen >= {"wav"} and len(seen) >= 2
    info = json.loads((out / "dataset.json").read_text())
    user = info["config"]["corpus"]["user_sources"]
    assert user["dir"] == str(src.resolve()) and user["used"] == len(FILES)
    assert user["mixed_to_mono"] == ["dog/stereo_dog.wav"] and user["skipped"] == []
    assert info["config"]["corpus"]["packages"] == ["user"]


def test_every_format_and_the_stereo_file_decode_with_provenance(tmp_path: Path) -> None:
    src = _write_files(tmp_path / "src", FILES)
    items, report = us.load_user_sources(src, sample_rate=16000)
    by_file = {it.spec.origin: it for it in items}
    assert set(by_file) == set(FILES)
    for rel, it in by_file.items():
        prov = it.provenance()
        assert prov.file == rel and prov.extra["sha256"] == sha256_file(src / rel)
        assert it.audio.ndim == 1 and it.sample_rate == 16000 and it.audio.size > 1000
    st_prov = by_file["dog/stereo_dog.wav"].provenance().extra
    assert (st_prov["channels"], st_prov["mixed_to_mono"], st_prov["source_rate"]) == (2, True, 16000)
    assert by_file["rain/" + FILES_BY_LABEL["rain"][0]].provenance().extra["source_rate"] == 22050
    assert report.mixed_to_mono == ["dog/stereo_dog.wav"]


def test_labels_from_csv_with_licence_and_split(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    src = tmp_path / "flat"
    rows = []
    flat = {}
    for i, (label, fmt) in enumerate(LABELS.items()):
        for j, split in enumerate(("train", "val", "test")):
            name = f"clip{i}{j}.{_EXT[fmt]}"
            flat[name] = _encode(_sound(10 * i + j), fmt)
            rows.append(f"{name},{label} sound,CC-BY-4.0,{split}")
    flat["unlisted.wav"] = _encode(_sound(77), "WAV")
    _write_files(src, flat)
    labels = src / "labels.csv"  # inside DIR: never taken for a source itself
    labels.write_text("file,label,licence,split\n" + "\n".join(rows) + "\n")
    out = tmp_path / "data"
    rc, stdout, err = _simulate(src, out, capsys, "--labels", str(labels))
    assert rc == 0, err
    assert "not used: 1 file(s): unlisted.wav" in stdout and "labels.csv" not in \
        stdout.split("not used")[1]
    assert validate_dataset(out)[1] == []
    pinned = {r.split(",")[0]: r.split(",")[3] for r in rows}
    for clip in load_dataset(out).clips:
        for s in clip.sources:
            assert s.label.endswith(" sound") and s.provenance.licence == "CC-BY-4.0"
            assert s.provenance.extra["label_from"] == "csv"
            assert pinned[s.provenance.file] == clip.split
    user = json.loads((out / "dataset.json").read_text())["config"]["corpus"]["user_sources"]
    assert user["labels"]["sha256"] == sha256_file(labels)
    assert user["not_in_labels"] == ["unlisted.wav"]


def test_files_directly_in_dir_are_labelled_by_their_name(tmp_path: Path) -> None:
    src = _write_files(tmp_path / "s", {"dog_bark_01.wav": _encode(_sound(1), "WAV"),
                                        "Church-Bell.flac": _encode(_sound(2), "FLAC"),
                                        "sub_dir/x.ogg": _encode(_sound(3), "OGG"),
                                        ".hidden.wav": _encode(_sound(4), "WAV"),
                                        ".git/y.wav": _encode(_sound(5), "WAV")})
    items, _ = us.load_user_sources(src)
    got = {it.spec.origin: (it.spec.label, dict(it.spec.extra)["label_from"]) for it in items}
    assert got == {"dog_bark_01.wav": ("dog bark", "file name"),
                   "Church-Bell.flac": ("Church Bell", "file name"),
                   "sub_dir/x.ogg": ("sub dir", "folder")}


def test_splits_are_disjoint_and_follow_the_hash_of_the_relative_path(tmp_path: Path,
                                                                        capsys) -> None:  # noqa: ANN001
    files = dict(FILES)
    for k in range(12):  # more files, so every split draws from several
        files[f"bell/extra_{k:02d}.flac"] = _encode(_sound(200 + k), "FLAC")
    src = _write_files(tmp_path / "src", files)
    out = tmp_path / "data"
    rc, _, err = _simulate(src, out, capsys)
    assert rc == 0, err
    by_split: dict[str, set[str]] = {}
    for clip in load_dataset(out).clips:
        for s in clip.sources:
            by_split.setdefault(clip.split, set()).add(s.provenance.file)
            assert split_for_group(f"user/{s.provenance.file}") == clip.split
    assert set(by_split) == {"train", "val", "test"}
    assert not (by_split["train"] & by_split["val"]) and not (by_split["train"] & by_split["test"])
    assert not (by_split["val"] & by_split["test"])


class _ReversedScandir:
    """``os.scandir`` listing in reverse name order."""

    def __init__(self, path) -> None:  # noqa: ANN001
        import os

        with os.scandir(path) as it:
            self.entries = sorted(it, key=lambda e: e.name, reverse=True)

    def __enter__(self):  # noqa: ANN204
        return iter(self.entries)

    def __exit__(self, *exc) -> bool:  # noqa: ANN002
        return False


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_bytes_whatever_the_creation_and_listing_order(tmp_path: Path, capsys,  # noqa: ANN001
                                                            monkeypatch) -> None:  # noqa: ANN001
    import shutil

    src = tmp_path / "src"
    monkeypatch.setenv("TAS_BENCH_CACHE", str(tmp_path / "cache1"))
    _write_files(src, FILES)
    assert _simulate(src, tmp_path / "a", capsys)[0] == 0
    shutil.rmtree(src)
    _write_files(src, FILES, order=reversed(list(FILES)))
    monkeypatch.setenv("TAS_BENCH_CACHE", str(tmp_path / "cache2"))  # decoded afresh
    monkeypatch.setattr(us, "os", types.SimpleNamespace(scandir=_ReversedScandir))
    assert _simulate(src, tmp_path / "b", capsys)[0] == 0
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert "manifest.jsonl" in a and "dataset.json" in a
    assert a == b


def test_with_builtin_joins_the_debian_corpus(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    src = _write_files(tmp_path / "src", FILES)
    own, _ = us.load_user_sources(src)
    fake = SourceCorpus(items=[SourceItem(spec=SourceSpec(
        key="sonic-pi-samples/bd_808.flac", label="bass drum", kind="music",
        package="sonic-pi-samples", file="/x/bd_808.flac", origin="/x/bd_808.flac",
        licence="CC0", group="/x/bd_808.flac"), split="train", audio=own[0].audio,
        sha256="0" * 64, sample_rate=16000)], config={"packages": ["sonic-pi-samples"]})
    monkeypatch.setattr(us, "build_corpus", lambda sample_rate, cache_dir=None: fake)
    corpus, _ = us.user_corpus(src, with_builtin=True)
    keys = [it.spec.key for it in corpus.items]
    assert keys == sorted(keys) and "sonic-pi-samples/bd_808.flac" in keys
    assert len(keys) == len(FILES) + 1
    assert corpus.config["packages"] == ["sonic-pi-samples", "user"]
    alone, _ = us.user_corpus(src)
    assert len(alone.items) == len(FILES)


@given(n=st.integers(1, 5000), sr_from=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]),
       sr_to=st.sampled_from([8000, 16000, 22050, 48000]))
def test_length_at_the_dataset_rate_is_resample_polys(n: int, sr_from: int, sr_to: int) -> None:
    r = Fraction(sr_to, sr_from)
    expect = n if sr_from == sr_to else len(resample_poly(np.ones(n), r.numerator, r.denominator))
    assert us._samples_at(n, sr_from, sr_to) == expect


# ---------------------------------------------------------------------------- bad files: skipped

def _truncated_flac() -> bytes:
    return _encode(_sound(5), "FLAC")[:200]


BAD_FILES = {
    "silent": ("dog/quiet.wav", lambda: _encode(np.zeros(8000), "WAV"), "silent: the peak"),
    "near silent": ("dog/hum.wav", lambda: _encode(5e-5 * _sound(3) / np.abs(_sound(3)).max(), "WAV"),
                    "dBFS, below the -80 dBFS floor"),
    "too short": ("dog/blip.wav", lambda: _encode(_sound(4, n=7), "WAV", 16000),
                  f"too short: 7 sample(s) at 16000 Hz = 7 at 16000 Hz, the simulator needs at "
                  f"least {MIN_SOURCE_SAMPLES}"),
    "unreadable": ("bell/broken.flac", _truncated_flac, "unreadable:"),
    "truncated wav": ("bell/cut.wav", lambda: _encode(_sound(6), "WAV")[:3000],
                      "unreadable: truncated"),
    "garbage wav": ("bell/noise.wav", lambda: b"RIFF\x00\x00" + bytes(range(256)) * 4,
                    "not an audio file"),
    "not audio": ("notes.txt", lambda: b"field recordings, March\n" * 20, "not an audio file"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_each_bad_file_is_skipped_and_named(case: str, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rel, make, needle = BAD_FILES[case]
    src = _write_files(tmp_path / "src", {**FILES, rel: make()})
    out = tmp_path / "data"
    rc, stdout, err = _simulate(src, out, capsys)
    assert rc == 0, err
    line = [ln for ln in stdout.splitlines() if ln.strip().startswith(f"skipped {rel}:")]
    assert len(line) == 1 and needle in line[0], stdout
    assert f"user sources: {len(FILES)} file(s)" in stdout
    user = json.loads((out / "dataset.json").read_text())["config"]["corpus"]["user_sources"]
    assert [s["file"] for s in user["skipped"]] == [rel]
    assert all(s.provenance.file != rel for c in load_dataset(out).clips for s in c.sources)


# ---------------------------------------------------------------------------- bad folders: errors

def test_a_folder_with_nothing_usable_is_one_error_naming_it(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    src = _write_files(tmp_path / "src", {r: m() for r, m, _ in BAD_FILES.values()})
    rc, stdout, err = _simulate(src, tmp_path / "data", capsys)
    line = _one_line_error(rc, err, str(src.resolve()), "no usable source file: 7 skipped",
                           "dog/blip.wav (too short)", "and 2 more")
    assert "--sources" in line
    assert "skipped notes.txt: not an audio file" in stdout  # the summary names every one
    assert not (tmp_path / "data" / "manifest.jsonl").exists()


@pytest.mark.parametrize("case", ["empty", "missing", "a file"])
def test_a_folder_that_is_not_a_sources_folder(case: str, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    src = tmp_path / "src"
    if case == "empty":
        src.mkdir()
        (src / ".DS_Store").write_bytes(b"\0" * 10)
    elif case == "a file":
        src.write_bytes(b"x")
    rc, _, err = _simulate(src, tmp_path / "data", capsys)
    needle = {"empty": "no source files", "missing": "not found", "a file": "is not a folder"}
    _one_line_error(rc, err, str(src), needle[case])


def test_a_split_without_sources_is_refused_naming_the_folder(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    only_train = {r: b for r, b in FILES.items()
                  if split_for_group(f"user/{r}") == "train"}
    src = _write_files(tmp_path / "src", only_train)
    rc, stdout, err = _simulate(src, tmp_path / "data", capsys)
    _one_line_error(rc, err, str(src.resolve()), "no usable source falls in the val split",
                    "'split' column", "--n-val 0")
    assert "user sources:" in stdout  # the summary came first
    src2 = _write_files(tmp_path / "src2", {r: b for r, b in FILES.items() if r.startswith("dog/")})
    rc, _, err = _simulate(src2, tmp_path / "data2", capsys)
    _one_line_error(rc, err, str(src2.resolve()), "all have the label 'dog'",
                    "two different labels")


def _csv_case(tmp_path: Path, text: str) -> tuple[Path, Path]:
    src = _write_files(tmp_path / "src", FILES)
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    return src, labels


_GOOD_ROWS = "".join(f"{r},{r.split('/')[0]},CC0\n" for r in FILES)

BAD_CSVS = {
    "missing file": ("file,label,licence\n" + _GOOD_ROWS + "dog/ghost.wav,dog,CC0\n",
                     [f"line {len(FILES) + 2}", "dog/ghost.wav", "no such file"]),
    "duplicate": ("file,label,licence\n" + _GOOD_ROWS + f"{next(iter(FILES))},dog,CC0\n",
                  [f"line {len(FILES) + 2}", next(iter(FILES)), "duplicate entry",
                   "already on line 2"]),
    "duplicate spelled differently": ("file,label\ndog/a.wav,dog\n./dog/a.wav,dog\n",
                                      ["line 3", "dog/a.wav", "duplicate entry"]),
    "missing column": ("file,licence\n" + "".join(f"{r},CC0\n" for r in FILES),
                       ["line 1", "missing column(s) label"]),
    "no header": ("", ["empty labels CSV"]),
    "escapes DIR": ("file,label\n../outside.wav,dog\n", ["line 2", "../outside.wav", "relative"]),
    "empty label": ("file,label\n" + f"{next(iter(FILES))}, \n", ["line 2", "empty label"]),
    "bad split": ("file,label,split\n" + f"{next(iter(FILES))},dog,holdout\n",
                  ["line 2", "'holdout' is not one of train, val, test"]),
    "too many fields": ("file,label\n" + f"{next(iter(FILES))},dog,CC0,extra\n",
                        ["line 2", "4 fields, the header has 2"]),
}


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_each_bad_labels_csv_is_one_error_naming_it(case: str, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    text, needles = BAD_CSVS[case]
    if case == "duplicate spelled differently":
        src = _write_files(tmp_path / "src", {"dog/a.wav": FILES[next(iter(FILES))]})
        labels = tmp_path / "labels.csv"
        labels.write_text(text)
    else:
        src, labels = _csv_case(tmp_path, text)
    rc, _, err = _simulate(src, tmp_path / "data", capsys, "--labels", str(labels))
    _one_line_error(rc, err, str(labels), *needles)


def test_labels_csv_that_is_missing_or_not_utf8(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    src = _write_files(tmp_path / "src", FILES)
    rc, _, err = _simulate(src, tmp_path / "d", capsys, "--labels", str(tmp_path / "nope.csv"))
    _one_line_error(rc, err, str(tmp_path / "nope.csv"), "labels CSV not found")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("file,label\ndog/caf\xe9.wav,dog\n".encode("latin-1"))
    rc, _, err = _simulate(src, tmp_path / "d", capsys, "--labels", str(bad))
    _one_line_error(rc, err, str(bad), "not UTF-8")


def test_labels_or_with_builtin_without_sources(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rc, _, err = _cli(["simulate", "--out", str(tmp_path / "d"), "--labels", "x.csv", *SIM],
                      capsys)
    _one_line_error(rc, err, "--labels needs --sources DIR")
    rc, _, err = _cli(["simulate", "--out", str(tmp_path / "d"), "--with-builtin", *SIM], capsys)
    _one_line_error(rc, err, "--with-builtin")


def test_python_api_gives_the_cli_bytes(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    import tas_bench

    src = _write_files(tmp_path / "src", FILES)
    assert _simulate(src, tmp_path / "cli", capsys)[0] == 0
    ds = tas_bench.simulate(tmp_path / "api", seed=5, sources=src, n_train=4, n_val=2, n_test=4,
                            duration=0.5, workers=1)
    assert set(ds.clips["source1_label"]) <= set(LABELS)
    assert _tree_bytes(tmp_path / "cli") == _tree_bytes(tmp_path / "api")


def test_a_label_with_direction_words_is_used_with_a_warning(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    files = {r.replace("bell/", "left_bell/"): b for r, b in FILES.items()}
    src = _write_files(tmp_path / "src", files)
    rc, stdout, err = _simulate(src, tmp_path / "data", capsys)
    assert rc == 0, err
    warn = [ln for ln in stdout.splitlines() if "warning: label" in ln]
    assert len(warn) == 1 and "'left bell' contains the direction word(s) left" in warn[0]
    user = json.loads((tmp_path / "data" / "dataset.json").read_text())
    assert user["config"]["corpus"]["user_sources"]["direction_word_labels"] == {
        "left bell": ["left"]}
    assert validate_dataset(tmp_path / "data")[1] == []
