"""Hostile inputs to `tas-bench import` (issue 8, items 1, 2, 14, 15): every problem is
reported (file and reason) in one message, exit 2, no traceback, nothing written."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import tas_bench.runtime.audio_io as audio_io
from tas_bench.pipeline.cli import main

SR = 16000


def _noise(seed: int, seconds: float = 0.2, channels: int = 2) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal((int(SR * seconds), channels))


def _import(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["import", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tas-bench: error: "), err
        return rc, lines[0]
    return rc, out


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "rec"
    src.mkdir()
    for i in range(3):
        sf.write(src / f"r{i}.wav", _noise(i), SR, subtype="PCM_16")
    return src


def test_binaural_folder_reports_outside_symlinks_fifos_and_folders(folder: Path, tmp_path: Path,
                                                                    capsys) -> None:  # noqa: ANN001
    secret = tmp_path / "elsewhere" / "secret.wav"
    secret.parent.mkdir()
    sf.write(secret, _noise(9), SR)
    (folder / "outside.wav").symlink_to(secret)
    (folder / "inside.wav").symlink_to(folder / "r0.wav")  # a link within the folder is fine
    os.mkfifo(folder / "pipe.wav")
    (folder / "adir.wav").mkdir()
    (folder / "dangling.wav").symlink_to(tmp_path / "nothing.wav")
    out = tmp_path / "ds"
    rc, msg = _import(["binaural-folder", str(folder), "--out", str(out)], capsys)
    assert rc == 2 and "4 problems" in msg
    assert f"{folder / 'outside.wav'}: symbolic link to {secret}, outside the source folder" in msg
    assert f"{folder / 'pipe.wav'}: audio file is a FIFO (named pipe), not a regular file" in msg
    assert f"{folder / 'adir.wav'}: audio file is a directory, not a regular file" in msg
    assert f"{folder / 'dangling.wav'}: broken symbolic link" in msg
    assert "inside.wav" not in msg
    assert not out.exists()
    for p in ("outside.wav", "pipe.wav", "adir.wav", "dangling.wav"):
        (folder / p).unlink() if p != "adir.wav" else (folder / p).rmdir()
    rc, text = _import(["binaural-folder", str(folder), "--out", str(out)], capsys)
    assert rc == 0 and json.loads(text)["n_clips"] == 4


def test_binaural_folder_refuses_a_truncated_wav(folder: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    raw = (folder / "r1.wav").read_bytes()
    (folder / "r1.wav").write_bytes(raw[: len(raw) // 2])
    out = tmp_path / "ds"
    rc, msg = _import(["binaural-folder", str(folder), "--out", str(out)], capsys)
    assert rc == 2 and "1 problem in" in msg
    assert f"{folder / 'r1.wav'}: truncated: the header declares" in msg
    assert not out.exists()


def test_binaural_folder_refuses_a_1_hz_header_before_resampling(folder: Path, tmp_path: Path,
                                                                 capsys, monkeypatch) -> None:  # noqa: ANN001
    real = audio_io.resample

    def guarded(x, sr_from, sr_to):  # noqa: ANN001, ANN202
        assert sr_to <= 400 * sr_from, f"resampling {sr_from} -> {sr_to} Hz"
        return real(x, sr_from, sr_to)

    monkeypatch.setattr(audio_io, "resample", guarded)
    raw = bytearray((folder / "r2.wav").read_bytes())
    assert raw[12:16] == b"fmt "
    raw[24:28] = struct.pack("<I", 1)
    (folder / "r2.wav").write_bytes(bytes(raw))
    for extra in ([], ["--sample-rate", "32000"]):
        rc, msg = _import(["binaural-folder", str(folder), "--out", str(tmp_path / "ds"), *extra],
                          capsys)
        assert rc == 2
        assert f"{folder / 'r2.wav'}: sample rate 1 Hz out of range [1000, 384000] Hz" in msg
    rc, msg = _import(["binaural-folder", str(folder), "--out", str(tmp_path / "ds"),
                       "--sample-rate", "5"], capsys)
    assert rc == 2 and "sample rate 5 Hz out of range" in msg


def test_binaural_folder_fifo_captions_is_reported_not_opened(folder: Path, tmp_path: Path,
                                                             capsys) -> None:  # noqa: ANN001
    os.mkfifo(tmp_path / "caps.csv")
    rc, msg = _import(["binaural-folder", str(folder), "--out", str(tmp_path / "ds"),
                       "--captions", str(tmp_path / "caps.csv")], capsys)
    assert rc == 2 and "captions file is a FIFO (named pipe)" in msg


def _ssqa(tmp_path: Path, answers: list[str]) -> tuple[Path, Path, Path]:
    audio, rirs = tmp_path / "audio", tmp_path / "rirs"
    audio.mkdir()
    rirs.mkdir()
    sf.write(audio / "Ya.wav", _noise(1, channels=1), SR)
    rir = np.zeros((2, 64))
    rir[0, 0], rir[1, 8] = 1.0, 0.5
    np.save(rirs / "r0.npy", rir)
    recs = [{"audio_id": "Ya", "reverb_id": "r0.npy", "audio_id2": None, "reverb_id2": None,
             "question_id": i, "question_type": qt, "question": q, "answer": a}
            for i, (qt, q, a) in enumerate(answers)]
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path, audio, rirs


def test_spatialsoundqa_refuses_a_negative_distance(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    records, audio, rirs = _ssqa(tmp_path, [
        ("DOA", "Where is the sound of the dog coming from?", "left, front, above; -5m"),
        ("DISTANCE", "How far away is the sound?", "- 2.5 meters"),
        ("DOA", "Where is the sound of the cat coming from?", "right, behind, below; 3.5m"),
    ])
    out = tmp_path / "ds"
    rc, msg = _import(["spatialsoundqa", str(records), "--audio-dir", str(audio), "--rir-dir",
                       str(rirs), "--out", str(out), "--sample-rate", str(SR),
                       "--rir-sample-rate", str(SR), "--duration", "0.2"], capsys)
    assert rc == 2 and "2 problems" in msg
    assert f"{records}: line 1: question_id 0: answer 'left, front, above; -5m' states a negative distance" in msg
    assert "line 2: question_id 1: answer '- 2.5 meters' states a negative distance" in msg
    assert "line 3" not in msg
    assert not out.exists()


def test_spatialsoundqa_checks_rates_and_fifo_records(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    records, audio, rirs = _ssqa(tmp_path, [("DOA", "Where?", "left, front, above; 2m")])
    base = ["spatialsoundqa", str(records), "--audio-dir", str(audio), "--rir-dir", str(rirs),
            "--out", str(tmp_path / "ds"), "--duration", "0.2"]
    rc, msg = _import([*base, "--sample-rate", "1"], capsys)
    assert rc == 2 and "sample_rate: sample rate 1 Hz out of range" in msg
    rc, msg = _import([*base, "--rir-sample-rate", "10"], capsys)
    assert rc == 2 and "rir_sample_rate: sample rate 10 Hz out of range" in msg
    records.unlink()
    os.mkfifo(records)
    rc, msg = _import(base, capsys)
    assert rc == 2 and f"{records}: records file is a FIFO (named pipe)" in msg
