"""Manifest schema: valid lines load, every kind of bad line is reported with line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datagen import clip_record, make_dataset

from tas_bench.data.manifest import check_manifest, dataset_fingerprint, load_dataset
from tas_bench.data.validate import validate_dataset
from tas_bench.pipeline.cli import main
from tas_bench.runtime.errors import TasBenchError


def _write_lines(root: Path, lines: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")


def test_valid_dataset_loads_and_round_trips(tmp_path: Path) -> None:
    recs = make_dataset(tmp_path / "d", n=3)
    ds = load_dataset(tmp_path / "d")
    assert [c.id for c in ds.clips] == [r["id"] for r in recs]
    assert ds.clips[0].to_dict() == json.loads(json.dumps(recs[0]))
    n, problems = validate_dataset(tmp_path / "d")
    assert n == 3 and problems == []


@pytest.mark.parametrize(
    ("override", "field", "text"),
    [
        ({"split": "holdout"}, "split", "not one of"),
        ({"audio": "../outside.wav"}, "audio", "inside the dataset folder"),
        ({"audio": "/etc/passwd"}, "audio", "inside the dataset folder"),
        ({"sample_rate": 10}, "sample_rate", "out of range"),
        ({"duration": -1}, "duration", "> 0"),
        ({"prompt_type": "Z"}, "prompt_type", "A..G"),
        ({"category": "weird"}, "category", "not one of"),
        ({"id": "a b/c"}, "id", "not a valid clip id"),
        ({"seed": "x"}, "seed", "expected int"),
        ({"qa": [{"question": "q", "answer": "a", "category": "Other", "question_type": "X"}]},
         "qa[0].category", "not one of"),
    ],
)
def test_bad_fields_are_named(tmp_path: Path, override: dict, field: str, text: str) -> None:
    rec = {**clip_record("c1", "test", "a.wav", 16000, 1.0, 60.0), **override}
    _write_lines(tmp_path, [json.dumps(rec)])
    _, problems = check_manifest(tmp_path)
    assert any(p.field == field and text in p.message and p.line == 1 for p in problems), problems


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [("azimuth", 400.0, "out of range"), ("elevation", -95.0, "out of range"),
     ("distance", 0.0, "out of range"), ("direction", ["left"], "three words"),
     ("direction", ["right", "front", "above"], "disagrees")],
)
def test_bad_source_geometry(tmp_path: Path, key: str, value: object, text: str) -> None:
    rec = clip_record("c1", "test", "a.wav", 16000, 1.0, 60.0)
    rec["sources"][0][key] = value
    _write_lines(tmp_path, [json.dumps(rec)])
    _, problems = check_manifest(tmp_path)
    assert any(p.field == f"sources[0].{key}" and text in p.message for p in problems), problems


def test_malformed_json_duplicates_and_missing_fields(tmp_path: Path) -> None:
    good = clip_record("c1", "test", "a.wav", 16000, 1.0, 60.0)
    missing = dict(good, id="c2")
    del missing["prompt"]
    _write_lines(tmp_path, [json.dumps(good), "{not json", json.dumps(good), json.dumps(missing)])
    clips, problems = check_manifest(tmp_path)
    assert [c.id for c in clips] == ["c1"]
    text = [str(p) for p in problems]
    assert any(t.startswith("line 2:") and "malformed JSON" in t for t in text)
    assert any(t.startswith("line 3: id:") and "duplicate" in t for t in text)
    assert any(t.startswith("line 4: prompt:") and "missing" in t for t in text)
    with pytest.raises(TasBenchError, match="invalid manifest"):
        load_dataset(tmp_path)


def test_validate_checks_audio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from tas_bench.runtime.audio_io import write_wav

    recs = make_dataset(tmp_path, n=4)
    write_wav(tmp_path / recs[0]["audio"], np.zeros((1, 16000)), 16000)  # mono
    (tmp_path / recs[1]["audio"]).write_bytes((tmp_path / recs[1]["audio"]).read_bytes()[:30])
    write_wav(tmp_path / recs[2]["audio"], np.zeros((2, 16000)), 16000)  # silent
    (tmp_path / recs[3]["audio"]).unlink()
    assert main(["validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "line 1: audio: audio/test/clip000.wav: expected 2 channel(s), found 1" in err
    assert "line 2: audio:" in err and "unreadable or truncated" in err
    assert "line 3: audio:" in err and "silent" in err
    assert "line 4: audio:" in err and "not found" in err


def test_fingerprint_changes_with_audio(tmp_path: Path) -> None:
    recs = make_dataset(tmp_path, n=2)
    fp1 = dataset_fingerprint(tmp_path)
    assert fp1 == dataset_fingerprint(tmp_path)
    p = tmp_path / recs[1]["audio"]
    data = bytearray(p.read_bytes())
    data[-2] ^= 0x01
    p.write_bytes(bytes(data))
    assert dataset_fingerprint(tmp_path) != fp1


def test_missing_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
