"""Hostile manifests and JSON files (issue 8, items 7 and 8): each gives one clear message naming
the file and line/field, a non-zero exit and no traceback, in `validate` and in `score`."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest
from datagen import clip_record, make_dataset, write_predictions

from tas_bench.data.manifest import (
    MAX_LINE_BYTES,
    MAX_LISTED_PROBLEMS,
    check_manifest,
    iter_manifest_lines,
    load_dataset,
)
from tas_bench.data.validate import validate_dataset
from tas_bench.pipeline.cli import main
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import read_json_object

GOOD = json.dumps(clip_record("c9", "test", "audio/test/clip000.wav", 16000, 1.0, 60.0))

#: (name, bytes of manifest line 1, text the message must hold)
HOSTILE_LINES = [
    ("huge_int", GOOD.replace('"seed": 0', '"seed": ' + "9" * 5000).encode(), "5000 digits"),
    ("deep_nesting", b"[" * 200_000 + b"]" * 200_000, "nested deeper than"),
    ("deep_object", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested deeper than"),
    ("bad_utf8", GOOD.replace('"prompt": "', '"prompt": "\udcff').encode("utf-8", "surrogateescape"),
     "not valid UTF-8"),
    ("nan_literal", GOOD.replace('"duration": 1.0', '"duration": NaN').encode(), "NaN is not allowed"),
    ("infinity_literal", GOOD.replace('"seed": 0', '"seed": -Infinity').encode(), "-Infinity is not allowed"),
    ("float_overflow", GOOD.replace('"duration": 1.0', '"duration": 1e999').encode(), "64-bit float"),
    ("int_overflows_float", GOOD.replace('"duration": 1.0', '"duration": ' + "9" * 400).encode(),
     "duration: 9999"),
    ("lone_surrogate", GOOD.replace('"prompt": "', '"prompt": "\\ud800').encode(), "surrogate"),
    ("nul_in_audio", GOOD.replace('"audio/test/clip000.wav"', '"a\\u0000.wav"').encode(),
     "audio: 'a\\x00.wav' is not a usable file name (empty, over 1024"),
    ("long_line", b'{"id": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}', "manifest lines over"),
]


def _hostile_dataset(root: Path, line1: bytes) -> list[dict]:
    """A valid 2-clip dataset whose manifest line 1 is replaced by ``line1``; its records."""
    recs = make_dataset(root, n=2)
    lines = (root / "manifest.jsonl").read_bytes().splitlines()
    (root / "manifest.jsonl").write_bytes(b"\n".join([line1, *lines[1:]]) + b"\n")
    return recs


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(("name", "line1", "text"), HOSTILE_LINES, ids=[h[0] for h in HOSTILE_LINES])
def test_validate_reports_hostile_manifest_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                name: str, line1: bytes, text: str) -> None:
    data = tmp_path / "d"
    _hostile_dataset(data, line1)
    assert main(["validate", str(data)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith(f"{data / 'manifest.jsonl'}: line 1:"), err[:500]
    assert text in first, first[:500]
    assert len(first) < 400
    assert "1 valid clip line(s)" in err  # line 2 is still read


@pytest.mark.parametrize(("name", "line1", "text"), HOSTILE_LINES, ids=[h[0] for h in HOSTILE_LINES])
def test_score_refuses_hostile_manifest_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             name: str, line1: bytes, text: str) -> None:
    data = tmp_path / "d"
    recs = _hostile_dataset(data, line1)
    write_predictions(tmp_path / "pred", data, recs)
    status = main(["score", "--data", str(data), "--pred", str(tmp_path / "pred"),
                   "--out", str(tmp_path / "res"), "--no-cache", "--no-progress"])
    msg = _one_line_error(capsys.readouterr().err)
    assert status == 2
    assert f"{data / 'manifest.jsonl'}: invalid manifest: line 1:" in msg and text in msg, msg[:500]
    assert not (tmp_path / "res" / "results.json").exists()


def test_long_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    """A 24 MiB line is reported without being held whole, and the next line is still read."""
    path = tmp_path / "manifest.jsonl"
    with open(path, "wb") as f:
        f.write(b'{"id": "' + b"x" * (24 << 20) + b'"}\n')
        f.write(GOOD.encode() + b"\n")
    tracemalloc.start()
    try:
        out = list(iter_manifest_lines(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(n, err is None) for n, _, err in out] == [(1, False), (2, True)]
    assert f"line is {(24 << 20) + 11} bytes long" in out[0][2]
    assert peak < 4 * MAX_LINE_BYTES, peak


def test_line_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    obj = clip_record("c1", "test", "a.wav", 16000, 1.0, 60.0)
    obj["pad"] = ""
    obj["pad"] = "p" * (MAX_LINE_BYTES - len(json.dumps(obj)))
    line = json.dumps(obj).encode()
    assert len(line) == MAX_LINE_BYTES
    (tmp_path / "manifest.jsonl").write_bytes(line + b"\n" + line[:-1] + b', "x": 1}')
    out = list(iter_manifest_lines(tmp_path / "manifest.jsonl"))
    assert out[0][2] is None and out[0][1]["pad"] == obj["pad"]
    assert out[1][2] is not None and "bytes long" in out[1][2]


def test_problems_are_capped_with_a_count(tmp_path: Path) -> None:
    n = MAX_LISTED_PROBLEMS + 234
    (tmp_path / "manifest.jsonl").write_text("{bad\n" * n)
    clips, problems = check_manifest(tmp_path)
    assert clips == [] and len(problems) == MAX_LISTED_PROBLEMS + 1
    assert str(problems[-1]) == f"manifest: 234 more problem(s) not listed (only the first {MAX_LISTED_PROBLEMS} are)"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_manifest_that_is_a_fifo_is_refused_without_hanging(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "manifest.jsonl")
    assert main(["validate", str(tmp_path)]) == 2
    msg = _one_line_error(capsys.readouterr().err)
    assert msg == f"tas-bench: error: {tmp_path / 'manifest.jsonl'}: is not a regular file"


# ---- dataset.json (item 8) ---------------------------------------------------------------------

BAD_INFOS = [
    ("not_json", b"{not json", "malformed JSON (Expecting property name enclosed in double quotes at line 1 column 2)"),
    ("array", b"[1, 2]", "expected a JSON object, found an array"),
    ("name_not_string", b'{"name": 5}', "name: expected a string, got int"),
    ("name_multiline", b'{"name": "a\\nb"}', "name: 'a\\nb' must be a non-empty one-line string"),
    ("bad_utf8", b'{\n"name": "\xff"}', "not valid UTF-8 (byte 0xff at line 2 column 10)"),
    ("deep", b"[" * 100_000 + b"]" * 100_000, "nested deeper than 100 levels"),
    ("nan", b'{"counts": NaN}', "NaN is not allowed"),
    ("huge_int", b'{"seed": ' + b"1" * 5000 + b"}", "an integer of 5000 digits"),
]


@pytest.mark.parametrize(("name", "content", "text"), BAD_INFOS, ids=[b[0] for b in BAD_INFOS])
def test_validate_and_score_agree_on_bad_dataset_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      name: str, content: bytes, text: str) -> None:
    data = tmp_path / "d"
    recs = make_dataset(data, n=2)
    (data / "dataset.json").write_bytes(content)
    write_predictions(tmp_path / "pred", data, recs)
    assert main(["validate", str(data)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith(f"{data / 'dataset.json'}: ") and text in first, err
    assert main(["validate", "--no-audio", str(data)]) == 1
    assert text in capsys.readouterr().err
    status = main(["score", "--data", str(data), "--pred", str(tmp_path / "pred"),
                   "--out", str(tmp_path / "res"), "--no-cache", "--no-progress"])
    msg = _one_line_error(capsys.readouterr().err)
    assert status == 2 and msg.startswith(f"tas-bench: error: {data / 'dataset.json'}: ") and text in msg, msg


def test_dataset_json_that_is_a_directory_is_reported(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    make_dataset(tmp_path, n=1)
    (tmp_path / "dataset.json").mkdir()
    assert main(["validate", "--no-audio", str(tmp_path)]) == 1
    assert f"{tmp_path / 'dataset.json'}: is not a regular file" in capsys.readouterr().err
    with pytest.raises(TasBenchError, match="dataset.json: is not a regular file"):
        load_dataset(tmp_path)


def test_good_dataset_json_is_loaded(tmp_path: Path) -> None:
    make_dataset(tmp_path, n=1)
    (tmp_path / "dataset.json").write_text(json.dumps({"name": "tiny", "counts": {"test": 1}}))
    assert load_dataset(tmp_path).info["name"] == "tiny"
    assert validate_dataset(tmp_path) == (1, [])


# ---- read_json_object (results.json, system cards, dataset.json) --------------------------------

@pytest.mark.parametrize(
    ("content", "text"),
    [(b'{"a": 1,\n "b": [1e999]}', "does not fit a 64-bit float"),
     (b'{"a": Infinity}', "Infinity is not allowed"),
     (b'{"a": "\\udc00"}', "unpaired UTF-16 surrogate"),
     (b'{"a": 1,\n\n "b": }', "Expecting value at line 3 column 7"),
     (b'\xef\xbb\xbf{"a": 1}', "Unexpected UTF-8 BOM"),
     (b"", "Expecting value at line 1 column 1"),
     (b'"just a string"', "expected a JSON object, found a string")],
)
def test_read_json_object_refuses_hostile_content(tmp_path: Path, content: bytes, text: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(TasBenchError, match="x.json") as info:
        read_json_object(path)
    assert text in str(info.value) and "\n" not in str(info.value)


def test_read_json_object_size_limit_missing_and_fifo(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"a": "x" * 2000}))
    assert read_json_object(path, max_bytes=4096)["a"] == "x" * 2000
    with pytest.raises(TasBenchError, match=r"big.json: is 2009 bytes; JSON files over 1000 bytes are refused"):
        read_json_object(path, max_bytes=1000)
    with pytest.raises(TasBenchError, match="nope.json: not found"):
        read_json_object(tmp_path / "nope.json")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.json")
        with pytest.raises(TasBenchError, match="fifo.json: is not a regular file"):
            read_json_object(tmp_path / "fifo.json")


def test_score_refuses_hostile_system_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    recs = make_dataset(data, n=1)
    write_predictions(tmp_path / "pred", data, recs)
    (tmp_path / "pred" / "system.json").write_bytes(b'{"name": "s", "rev": ' + b"7" * 5000 + b"}")
    status = main(["score", "--data", str(data), "--pred", str(tmp_path / "pred"), "--evaluators", "signal",
                   "--out", str(tmp_path / "res"), "--no-cache", "--no-progress"])
    msg = _one_line_error(capsys.readouterr().err)
    assert status == 2 and "system.json: malformed JSON (an integer of 5000 digits" in msg, msg
