"""Hostile audio and output paths through `score`, `spatialize` and `generate` (issue 8, items
1-6 and 9): each bad input gives one clear message naming the file, a non-zero exit, no
traceback, and nothing is lost or overwritten."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_check import one_line_error as _one_line_error
from cli_check import run_cli as _cli
from datagen import make_dataset, write_predictions

import tas_bench.runtime.audio_io as audio_io
from tas_bench.pipeline.cli import EXIT_BROKEN_PIPE
from tas_bench.runtime.audio_io import probe_audio, read_audio, write_wav
from tas_bench.runtime.errors import AudioError
from tas_bench.runtime.fileio import TMP_MARK, host_tag

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture
def data_pred(tmp_path: Path) -> tuple[Path, Path]:
    data, pred = tmp_path / "data", tmp_path / "pred"
    recs = make_dataset(data, n=4, seconds=0.5)
    write_predictions(pred, data, recs, mode="mono")
    return data, pred


def _score_args(data: Path, pred: Path, out: Path, cache: Path) -> list[str]:
    return ["score", "--data", str(data), "--pred", str(pred), "--out", str(out),
            "--evaluators", "signal", "--no-progress", "--cache-dir", str(cache)]


def _invalid(res: Path) -> dict[str, str]:
    doc = json.loads((res / "results.json").read_text())
    return {b["id"]: b["reason"] for b in doc["invalid"]}


def _fmt_offset(raw: bytes) -> int:
    pos = 12
    while raw[pos:pos + 4] != b"fmt ":
        pos += 8 + struct.unpack("<I", raw[pos + 4:pos + 8])[0]
    return pos + 8


def _set_rate(path: Path, rate: int) -> None:
    """Rewrite the sample rate (and byte rate) fields of a WAV header."""
    raw = bytearray(path.read_bytes())
    fmt = _fmt_offset(raw)
    channels, = struct.unpack("<H", raw[fmt + 2:fmt + 4])
    bits, = struct.unpack("<H", raw[fmt + 14:fmt + 16])
    raw[fmt + 4:fmt + 8] = struct.pack("<I", rate)
    raw[fmt + 8:fmt + 12] = struct.pack("<I", (rate * channels * bits // 8) & 0xFFFFFFFF)
    path.write_bytes(bytes(raw))


def _no_big_resample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail fast (instead of allocating gigabytes) if anything resamples by more than 400x."""
    real = audio_io.resample

    def guarded(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
        assert sr_to <= 400 * sr_from, f"resampling {sr_from} -> {sr_to} Hz"
        return real(x, sr_from, sr_to)

    monkeypatch.setattr(audio_io, "resample", guarded)


# --------------------------------------------------------------------------- 1. truncation


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_read_audio_refuses_a_wav_cut_in_its_data(tmp_path: Path, subtype: str) -> None:
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 1000))
    write_wav(tmp_path / "full.wav", x, 16000, subtype=subtype)
    raw = (tmp_path / "full.wav").read_bytes()
    assert read_audio(tmp_path / "full.wav").samples.shape == (2, 1000)
    for cut in (len(raw) // 2, len(raw) - 1, len(raw) - 8):
        (tmp_path / "cut.wav").write_bytes(raw[:cut])
        with pytest.raises(AudioError, match=r"cut.wav: truncated: the header declares \d+ bytes"):
            read_audio(tmp_path / "cut.wav")
        with pytest.raises(AudioError, match="truncated"):
            probe_audio(tmp_path / "cut.wav")


def test_truncation_check_has_no_false_alarms(tmp_path: Path) -> None:
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (1000, 2))
    sf.write(tmp_path / "a.flac", x, 16000)  # not a WAV: not checked
    sf.write(tmp_path / "b.wav", x, 16000, format="RF64", subtype="PCM_24")
    raw = (tmp_path / "b.wav").read_bytes()
    assert read_audio(tmp_path / "a.flac").samples.shape == (2, 1000)
    assert read_audio(tmp_path / "b.wav").samples.shape == (2, 1000)
    (tmp_path / "b_cut.wav").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(AudioError, match="truncated"):
        read_audio(tmp_path / "b_cut.wav")
    # a streamed WAV (data size left at 0xFFFFFFFF) and trailing chunks after the data are fine
    write_wav(tmp_path / "c.wav", x.T, 16000)
    raw = bytearray((tmp_path / "c.wav").read_bytes())
    data_at = raw.index(b"data")
    streamed = raw.copy()
    streamed[data_at + 4:data_at + 8] = b"\xff\xff\xff\xff"
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    assert read_audio(tmp_path / "streamed.wav").samples.shape == (2, 1000)
    (tmp_path / "trailer.wav").write_bytes(bytes(raw) + b"LIST\x04\x00\x00\x00INFO")
    assert read_audio(tmp_path / "trailer.wav").samples.shape == (2, 1000)


def test_score_lists_a_truncated_prediction_as_invalid(data_pred, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    data, pred = data_pred
    raw = (pred / "clip001.wav").read_bytes()
    (pred / "clip001.wav").write_bytes(raw[: len(raw) // 2])
    rc, out, err = _cli(_score_args(data, pred, tmp_path / "res", tmp_path / "c"), capsys)
    assert rc == 1 and "Traceback" not in err
    assert "scored 3/4" in out
    assert "clip001.wav: truncated" in err
    assert _invalid(tmp_path / "res")["clip001"].startswith("truncated: the header declares")


# --------------------------------------------------------------------------- 2. sample rate


def test_read_audio_refuses_rates_out_of_range_before_resampling(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    _no_big_resample(monkeypatch)
    write_wav(tmp_path / "x.wav", np.full((2, 100), 0.1), 16000)
    for rate in (1, 999, 384001, 0x7FFFFFFF):
        _set_rate(tmp_path / "x.wav", rate)
        with pytest.raises(AudioError, match=rf"x.wav: sample rate {rate} Hz out of range \[1000, 384000\]"):
            read_audio(tmp_path / "x.wav", channels=2, sample_rate=16000)
    _set_rate(tmp_path / "x.wav", 1000)
    assert read_audio(tmp_path / "x.wav", sample_rate=16000).samples.shape == (2, 1600)
    with pytest.raises(AudioError, match="sample_rate: sample rate 5 Hz out of range"):
        read_audio(tmp_path / "x.wav", sample_rate=5)


def test_score_refuses_a_1_hz_prediction(data_pred, tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    _no_big_resample(monkeypatch)
    data, pred = data_pred
    _set_rate(pred / "clip002.wav", 1)
    rc, _, err = _cli(_score_args(data, pred, tmp_path / "res", tmp_path / "c"), capsys)
    assert rc == 1 and "Traceback" not in err
    assert "sample rate 1 Hz out of range" in _invalid(tmp_path / "res")["clip002"]


# --------------------------------------------------------------------------- 3. x.wav + x.WAV


def test_score_reports_case_variant_predictions_as_ambiguous(data_pred, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    data, pred = data_pred
    write_predictions(tmp_path / "noisy", data, [json.loads(x) for x in
                      (data / "manifest.jsonl").read_text().splitlines()], mode="noisy")
    (pred / "clip001.WAV").write_bytes((tmp_path / "noisy" / "clip001.wav").read_bytes())
    rc, out, err = _cli(_score_args(data, pred, tmp_path / "res", tmp_path / "c"), capsys)
    assert rc == 1 and "scored 3/4" in out and "Traceback" not in err
    reason = _invalid(tmp_path / "res")["clip001"]
    assert "ambiguous" in reason and "clip001.WAV" in reason and "clip001.wav" in reason
    assert len(_invalid(tmp_path / "res")) == 1  # not also "prediction missing"


# --------------------------------------------------------------------------- 4. references


def test_score_refuses_a_fifo_reference_without_hanging(data_pred, tmp_path: Path) -> None:  # noqa: ANN001
    data, pred = data_pred
    ref = data / "audio" / "test" / "clip001.wav"
    ref.unlink()
    os.mkfifo(ref)
    # before the fix this blocked forever in open(); the timeout turns a hang into a failure
    proc = subprocess.run([sys.executable, "-m", "tas_bench.pipeline.cli", *_score_args(
        data, pred, tmp_path / "res", tmp_path / "c")], env=_env(), capture_output=True,
        text=True, timeout=120)
    _one_line_error(proc.returncode, proc.stderr, "clip001.wav", "reference audio of clip clip001",
                    "FIFO")
    assert not (tmp_path / "res" / "results.json").exists()


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_score_refuses_a_missing_or_directory_reference(data_pred, tmp_path: Path, capsys,  # noqa: ANN001
                                                        kind: str) -> None:
    data, pred = data_pred
    ref = data / "audio" / "test" / "clip002.wav"
    ref.unlink()
    if kind == "directory":
        ref.mkdir()
    rc, _, err = _cli(_score_args(data, pred, tmp_path / "res", tmp_path / "c"), capsys)
    _one_line_error(rc, err, str(ref), "reference audio of clip clip002",
                    "not found" if kind == "missing" else "is a directory")
    assert not list((tmp_path / "c").rglob("*.npz"))  # refused before any work


def test_score_refuses_a_fifo_system_card(data_pred, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    data, pred = data_pred
    os.mkfifo(pred / "system.json")
    rc, _, err = _cli(_score_args(data, pred, tmp_path / "res", tmp_path / "c"), capsys)
    _one_line_error(rc, err, "system.json", "FIFO")


# --------------------------------------------------------------------------- 5. output paths


def test_score_out_problems_are_refused_before_any_work(data_pred, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    data, pred = data_pred
    cache = tmp_path / "c"
    (tmp_path / "afile").write_text("keep me")
    (tmp_path / "res" / "results.json").mkdir(parents=True)
    cases = [(tmp_path / "afile", "--out exists and is not a folder"),
             (tmp_path / "afile" / "sub", "is not a folder"),
             (pred, "--out is the input folder"),
             (tmp_path / "res", "results.json exists and is not a regular file")]
    for out, needle in cases:
        rc, _, err = _cli(_score_args(data, pred, out, cache), capsys)
        _one_line_error(rc, err, str(out), needle)
    assert not cache.exists()  # nothing computed
    assert (tmp_path / "afile").read_text() == "keep me"
    assert sorted(p.name for p in pred.iterdir()) == [f"clip{i:03d}.wav" for i in range(4)]


def _mono(path: Path) -> bytes:
    write_wav(path, 0.1 * np.sin(np.arange(8000) / 5.0)[None, :], 16000)
    return path.read_bytes()


def test_spatialize_never_overwrites_its_input(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    inp = tmp_path / "in.wav"
    before = _mono(inp)
    (tmp_path / "link.wav").symlink_to(inp)
    os.link(inp, tmp_path / "hard.wav")
    (tmp_path / "adir").mkdir()
    for out, needle in ((inp, "is the input file"), (tmp_path / "link.wav", "is the input file"),
                        (tmp_path / "hard.wav", "is the input file"),
                        (tmp_path / "adir", "is a folder")):
        rc, _, err = _cli(["spatialize", "--system", "mono-mono", "--input", str(inp), "--out",
                           str(out)], capsys)
        _one_line_error(rc, err, str(out), needle)
        assert inp.read_bytes() == before
    assert list((tmp_path / "adir").iterdir()) == []
    rc, out, _ = _cli(["spatialize", "--system", "mono-mono", "--input", str(inp), "--out",
                       str(tmp_path / "ok.wav")], capsys)
    assert rc == 0 and read_audio(tmp_path / "ok.wav").channels == 2


def test_generate_out_problems_are_refused_before_any_work(data_pred, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    data, _ = data_pred
    (tmp_path / "afile").write_text("keep me")
    rc, _, err = _cli(["generate", "--system", "mono-mono", "--data", str(data), "--out",
                       str(tmp_path / "afile"), "--no-progress"], capsys)
    _one_line_error(rc, err, "afile", "--out exists and is not a folder")
    refs = data / "audio" / "test"
    before = {p.name: p.read_bytes() for p in refs.iterdir()}
    rc, _, err = _cli(["generate", "--system", "mono-mono", "--data", str(data), "--out",
                       str(refs), "--no-progress"], capsys)
    _one_line_error(rc, err, "clip000.wav", "is a reference file of the dataset")
    assert {p.name: p.read_bytes() for p in refs.iterdir()} == before
    (tmp_path / "gen" / "clip001.wav").mkdir(parents=True)
    rc, _, err = _cli(["generate", "--system", "mono-mono", "--data", str(data), "--out",
                       str(tmp_path / "gen"), "--no-progress"], capsys)
    _one_line_error(rc, err, "clip001.wav", "exists and is not a regular file")
    assert list((tmp_path / "gen").iterdir()) == [tmp_path / "gen" / "clip001.wav"]


# --------------------------------------------------------------------------- 6. closed stdout


def test_closed_stdout_exits_non_zero_without_traceback_and_results_are_complete(
        data_pred, tmp_path: Path) -> None:  # noqa: ANN001
    data, pred = data_pred
    r, w = os.pipe()
    os.close(r)  # `tas-bench score ... | true`: the reader is gone before anything is printed
    try:
        proc = subprocess.run([sys.executable, "-m", "tas_bench.pipeline.cli", *_score_args(
            data, pred, tmp_path / "res", tmp_path / "c")], env=_env(), stdout=w,
            stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(w)
    assert proc.returncode == EXIT_BROKEN_PIPE != 0
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr
    assert "standard output closed" in proc.stderr
    doc = json.loads((tmp_path / "res" / "results.json").read_text())
    assert doc["complete"] is True and doc["predictions"]["n_valid"] == 4
    assert len((tmp_path / "res" / "per_clip.csv").read_text().splitlines()) == 5


# --------------------------------------------------------------------------- 9. orphans


def test_generate_sweeps_orphaned_temp_files(data_pred, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    data, _ = data_pred
    out = tmp_path / "gen"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = out / f".clip001.wav{TMP_MARK}{host_tag()}.{dead.pid}.zz9abc.wav"
    orphan.write_bytes(b"RIFF half")
    live = out / f".clip002.wav{TMP_MARK}{host_tag()}.{os.getpid()}.zz9abd.wav"
    live.write_bytes(b"RIFF live")
    rc, _, _ = _cli(["generate", "--system", "mono-mono", "--data", str(data), "--out", str(out),
                     "--no-progress"], capsys)
    assert rc == 0
    assert not orphan.exists() and live.exists()
    live.unlink()
    assert sorted(p.name for p in out.iterdir()) == [f"clip{i:03d}.wav" for i in range(4)] + ["system.json"]
