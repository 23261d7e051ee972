"""Importers (SpatialSoundQA records, binaural folders) on small fixtures made here."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf

from tas_bench.data.importers import import_binaural_folder, import_spatialsoundqa
from tas_bench.data.importers.spatialsoundqa import label_from_question, octant_source, qa_category
from tas_bench.data.manifest import load_dataset
from tas_bench.data.prompts import check_prompt
from tas_bench.pipeline.commands import import_data
from tas_bench.runtime.audio_io import read_audio
from tas_bench.runtime.errors import TasBenchError

SR = 16000


def _noise(channels: int, seconds: float, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((int(SR * seconds), channels)))


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    import_data.register(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TasBenchError as exc:  # what tas_bench.pipeline.cli.main does
        print(f"tas-bench: error: {exc}")
        return 2


# --------------------------------------------------------------------------- binaural folder


@pytest.fixture
def fairplay(tmp_path: Path) -> Path:
    root = tmp_path / "FAIR-Play"
    (root / "binaural_audios").mkdir(parents=True)
    for i in range(1, 7):
        sf.write(root / "binaural_audios" / f"{i:06d}.wav", _noise(2, 0.5, i), SR,
                 subtype="PCM_16")
    split = root / "splits" / "split1"
    split.mkdir(parents=True)
    with h5py.File(split / "train.h5", "w") as f:
        f.create_dataset("audio", data=[f"/data/FAIR-Play/binaural_audios/{i:06d}.wav".encode()
                                        for i in (1, 2, 3)])
    (split / "val.txt").write_text("000004.wav\n\n# comment\n")
    (split / "test.txt").write_text("binaural_audios/000005.wav\n000006\n")
    return root


def test_binaural_folder_fairplay_layout(fairplay: Path, tmp_path: Path) -> None:
    caps = tmp_path / "caps.csv"
    caps.write_text("id,caption\n000001,a piano on the left\n000005,\"guitar, then drums\"\n")
    out = tmp_path / "ds"
    summary = import_binaural_folder(fairplay, out, splits=fairplay / "splits" / "split1",
                                     captions=caps)
    assert summary["counts"] == {"train": 3, "val": 1, "test": 2}
    assert summary["importer"] == "binaural-folder" and summary["n_captioned"] == 2
    ds = load_dataset(out)
    by = ds.by_id()
    assert by["000001"].prompt == "a piano on the left" and by["000001"].split == "train"
    assert by["000005"].prompt == "guitar, then drums" and by["000002"].prompt == ""
    c = by["000004"]
    assert (c.category, c.sources, c.qa, c.prompt_type) == ("real", [], [], None)
    assert c.sample_rate == SR and abs(c.duration - 0.5) < 1e-9
    a = read_audio(ds.audio_path(c), channels=2)
    assert np.array_equal((fairplay / "binaural_audios" / "000004.wav").read_bytes(),
                          ds.audio_path(c).read_bytes()) and a.channels == 2
    assert json.loads((out / "dataset.json").read_text())["counts"]["train"] == 3


def test_binaural_folder_flat_no_splits_resample_link(tmp_path: Path) -> None:
    src = tmp_path / "yt"
    src.mkdir()
    for name in ("clip_a", "clip_b"):
        sf.write(src / f"{name}.wav", _noise(2, 0.25, len(name)), SR)
    caps = tmp_path / "caps.jsonl"
    caps.write_text(json.dumps({"id": "clip_a.wav", "caption": "speech  in front"}) + "\n")
    out = tmp_path / "ds"
    s = import_binaural_folder(src, out, captions=caps, sample_rate=8000, copy=False)
    assert s["counts"] == {"train": 0, "val": 0, "test": 2}
    ds = load_dataset(out)
    c = ds.by_id()["clip_a"]
    assert c.prompt == "speech in front" and c.sample_rate == 8000
    assert read_audio(ds.audio_path(c)).samples.shape == (2, 2000)
    # a second import into the same folder needs overwrite
    with pytest.raises(TasBenchError, match="already holds a dataset"):
        import_binaural_folder(src, out)
    import_binaural_folder(src, out, overwrite=True, copy=False)
    assert ds.audio_path(c).stat().st_nlink == 2  # hard link


def test_binaural_folder_split_mapping_and_unlisted(fairplay: Path, tmp_path: Path) -> None:
    s = import_binaural_folder(fairplay, tmp_path / "ds", splits={"test": ["000002", "000003"]})
    assert s["counts"]["test"] == 2 and s["n_unlisted"] == 4


def _bad_folder(tmp_path: Path) -> Path:
    src = tmp_path / "bad"
    (src / "binaural_audios").mkdir(parents=True)
    b = src / "binaural_audios"
    sf.write(b / "good.wav", _noise(2, 0.2, 0), SR)
    sf.write(b / "mono.wav", _noise(1, 0.2, 1), SR)
    x = _noise(2, 0.2, 2).astype(np.float32)
    x[10, 1] = np.nan
    sf.write(b / "nan.wav", x, SR, subtype="FLOAT")
    sf.write(b / "trunc.wav", _noise(2, 0.2, 3), SR)
    raw = (b / "trunc.wav").read_bytes()
    (b / "trunc.wav").write_bytes(raw[:30])  # header cut in the middle
    (b / "empty.wav").write_bytes(b"")
    return src


def test_binaural_folder_reports_every_bad_file(tmp_path: Path) -> None:
    src = _bad_folder(tmp_path)
    out = tmp_path / "ds"
    with pytest.raises(TasBenchError) as ei:
        import_binaural_folder(src, out)
    msg = str(ei.value)
    assert "4 problems" in msg
    assert "mono.wav: expected 2 channel(s), found 1" in msg
    assert "nan.wav: contains NaN or Inf" in msg
    assert "trunc.wav: unreadable or truncated" in msg
    assert "empty.wav" in msg
    assert "good.wav" not in msg
    assert not (out / "manifest.jsonl").exists()


def test_binaural_folder_split_and_caption_problems(fairplay: Path, tmp_path: Path) -> None:
    sp = tmp_path / "sp"
    sp.mkdir()
    (sp / "train.txt").write_text("000001\n000002\n000001\n")
    (sp / "test.txt").write_text("000002\n999999\n")
    caps = tmp_path / "caps.jsonl"
    caps.write_text('{"id": "000001", "caption": "x"}\n{"id": "000001", "caption": "y"}\n'
                    '{"id": "000003", "caption": \n{"caption": "no id"}\n'
                    '{"id": "424242", "caption": "z"}\n')
    with pytest.raises(TasBenchError) as ei:
        import_binaural_folder(fairplay, tmp_path / "ds", splits=sp, captions=caps)
    msg = str(ei.value)
    assert "'000001' listed twice" in msg and "'000002' listed twice" in msg
    assert "999999.wav: audio file not found" in msg
    assert "caps.jsonl: line 2: duplicate caption" in msg
    assert "caps.jsonl: line 3: malformed JSON" in msg
    assert "caps.jsonl: line 4: needs an id field" in msg
    assert "caption for unknown clip id '424242'" in msg


def test_binaural_folder_bad_h5_and_missing_split(fairplay: Path, tmp_path: Path) -> None:
    bad = tmp_path / "test.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("paths", data=[b"000001.wav"])
    noth5 = tmp_path / "val.h5"
    noth5.write_bytes(b"not hdf5")
    with pytest.raises(TasBenchError) as ei:
        import_binaural_folder(fairplay, tmp_path / "ds",
                               splits={"test": bad, "val": noth5, "train": tmp_path / "nope.txt",
                                       "dev": []})
    msg = str(ei.value)
    assert "test.h5: no dataset 'audio'" in msg
    assert "val.h5: unreadable HDF5 file" in msg
    assert "nope.txt: split file not found" in msg
    assert "split 'dev'" in msg
    with pytest.raises(TasBenchError, match="sp_missing: split folder not found"):
        import_binaural_folder(fairplay, tmp_path / "ds", splits=tmp_path / "sp_missing")
    (tmp_path / "sp_empty").mkdir()
    with pytest.raises(TasBenchError, match="no train/val/test"):
        import_binaural_folder(fairplay, tmp_path / "ds", splits=tmp_path / "sp_empty")


def test_binaural_folder_cli(fairplay: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    rc = _cli(["import", "binaural-folder", str(fairplay), "--out", str(out),
               "--split-file", f"test={fairplay}/splits/split1/test.txt",
               "--split-file", f"train={fairplay}/splits/split1/train.h5"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"train": 3, "val": 0, "test": 2}
    rc = _cli(["import", "binaural-folder", str(_bad_folder(tmp_path)), "--out",
               str(tmp_path / "ds2")])
    err = capsys.readouterr().out
    assert rc == 2 and "mono.wav" in err and "Traceback" not in err
    assert _cli(["import", "binaural-folder", str(fairplay), "--out", str(out),
                 "--split-file", "nonsense"]) == 2


# --------------------------------------------------------------------------- SpatialSoundQA


def _rec(qid, qtype, q, a, aid="eval/audio/Ya", rid="room1/0.npy", aid2=None, rid2=None):
    return {"audio_id": aid, "reverb_id": rid, "audio_id2": aid2, "reverb_id2": rid2,
            "question_id": qid, "question_type": qtype, "question": q, "answer": a}


@pytest.fixture
def ssqa(tmp_path: Path) -> dict[str, Path]:
    audio = tmp_path / "audioset"
    (audio / "eval" / "audio").mkdir(parents=True)
    sf.write(audio / "eval" / "audio" / "Ya.wav", _noise(1, 0.3, 10), SR)
    sf.write(audio / "eval" / "audio" / "Yb.flac", _noise(2, 0.3, 11), 8000)  # stereo source
    (audio / "elsewhere").mkdir()
    sf.write(audio / "elsewhere" / "Yc.wav", _noise(1, 0.3, 12), SR)
    rirs = tmp_path / "binaural"
    (rirs / "room1").mkdir(parents=True)
    rir = np.zeros((2, 400))
    rir[0, 0], rir[1, 20] = 1.0, 0.5  # left direct, right delayed and quieter
    np.save(rirs / "room1" / "0.npy", rir)
    np.save(rirs / "room1" / "1.npy", rir[:, ::-1].copy().T)  # (N, 2) layout is accepted
    sf.write(rirs / "room1" / "2.wav", rir.T * 0.5, SR, subtype="FLOAT")
    recs = [
        _rec(0, "CLASSIFICATION", "Enumerate the sound occurrences.", "dog; bark"),
        _rec(1, "DOA", "Where is the sound of the dog coming from?", "left, front, above; 3.5m"),
        _rec(2, "DOA", "Where is the sound of music coming from?", "right, behind, below; 1m",
             aid="Yc", rid="room1/2"),
        _rec(3, "MIXUP_DIRECTION", "Is the sound of the dog on the left side of the banjo?",
             "Yes", aid2="eval/audio/Yb", rid2="room1/1.npy"),
        _rec(4, "MIXUP_NONBINARY_DISTANCE", "How far away is the sound of the banjo from the "
             "sound of the dog?", "2m", aid2="eval/audio/Yb", rid2="room1/1.npy"),
        _rec(5, "MIXUP_SINGLE_CLASSIFICATION", "What is the sound on the left?", "dog",
             aid2="eval/audio/Yb", rid2="room1/1.npy"),
    ]
    jsonl = tmp_path / "eval.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    jlist = tmp_path / "eval.json"
    jlist.write_text(json.dumps(recs, indent=1))
    return {"audio": audio, "rirs": rirs, "jsonl": jsonl, "json": jlist, "tmp": tmp_path}


def test_spatialsoundqa_import(ssqa: dict[str, Path]) -> None:
    out = ssqa["tmp"] / "ds"
    s = import_spatialsoundqa(ssqa["jsonl"], ssqa["audio"], ssqa["rirs"], out,
                              sample_rate=SR, duration=0.5, rir_sample_rate=SR)
    assert s["n_records"] == 6 and s["n_clips"] == 3
    assert s["skipped_records"] == {"CLASSIFICATION": 1, "MIXUP_SINGLE_CLASSIFICATION": 1}
    assert s["qa_counts"] == {"DOA": 2, "DE": 2, "Direction": 1, "Distance": 1}
    ds = load_dataset(out)
    single = [c for c in ds.clips if c.extra["spatialsoundqa"]["audio_id"] == "eval/audio/Ya"
              and c.extra["n_sources"] == 1][0]
    assert single.category == "single_doa_de" and single.prompt_type == "A"
    (source,) = single.sources
    assert (source.label, source.direction, source.distance) == ("dog", ["left", "front", "above"], 3.5)
    assert (source.azimuth, source.elevation) == (45.0, 30.0)
    assert source.extra["position_from"] == "answer_octant"
    assert check_prompt(single.prompt, "A", single.sources) == []
    assert [q.category for q in single.qa] == ["DOA", "DE"]
    x = read_audio(ds.audio_path(single)).samples
    assert x.shape == (2, SR // 2)
    # the RIR puts the right ear 20 samples later at half the amplitude
    src = sf.read(ssqa["audio"] / "eval" / "audio" / "Ya.wav")[0]
    gain = 10 ** (-14 / 20) / np.sqrt(np.mean(src ** 2))
    n = len(src)
    assert np.allclose(x[0, :n], src * gain, atol=1e-5)
    assert np.allclose(x[1, 20:20 + n], 0.5 * src * gain, atol=1e-5)
    assert np.allclose(x[:, n + 400:], 0.0)
    mix = [c for c in ds.clips if c.extra["n_sources"] == 2][0]
    assert mix.category == "real" and mix.sources == [] and mix.prompt == ""
    assert {q.question_type for q in mix.qa} == {"MIXUP_DIRECTION", "MIXUP_NONBINARY_DISTANCE"}
    music = [c for c in ds.clips if c.extra["spatialsoundqa"]["audio_id"] == "Yc"][0]
    assert music.sources[0].label == "music" and music.sources[0].azimuth == -135.0
    # fixed pairing: the same records give byte-identical audio and manifest
    out2 = ssqa["tmp"] / "ds2"
    import_spatialsoundqa(ssqa["json"], ssqa["audio"], ssqa["rirs"], out2, sample_rate=SR,
                          duration=0.5, rir_sample_rate=SR)
    assert (out / "manifest.jsonl").read_bytes() == (out2 / "manifest.jsonl").read_bytes()
    for c in ds.clips:
        assert (out / c.audio).read_bytes() == (out2 / c.audio).read_bytes()


def test_spatialsoundqa_limit_and_cli(ssqa: dict[str, Path], capsys) -> None:
    out = ssqa["tmp"] / "ds"
    rc = _cli(["import", "spatialsoundqa", str(ssqa["jsonl"]), "--audio-dir", str(ssqa["audio"]),
               "--rir-dir", str(ssqa["rirs"]), "--out", str(out), "--sample-rate", str(SR),
               "--duration", "0.25", "--limit", "1", "--split", "val"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n_clips"] == 1 and s["counts"]["val"] == 1


def test_spatialsoundqa_bad_records(ssqa: dict[str, Path]) -> None:
    bad = ssqa["tmp"] / "bad.jsonl"
    good = json.loads(ssqa["jsonl"].read_text().splitlines()[1])
    missing_field = {k: v for k, v in good.items() if k != "reverb_id"}
    lines = [json.dumps(good), "{not json", json.dumps(missing_field),
             json.dumps({**good, "question_type": 3}), json.dumps(good),
             json.dumps({**good, "question_id": 9, "audio_id": "nowhere/Yzz"}),
             json.dumps({**good, "question_id": 10, "reverb_id": "room1/77.npy"}),
             json.dumps({**good, "question_id": 11, "audio_id2": "Yb"}), "[1, 2]"]
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(TasBenchError) as ei:
        import_spatialsoundqa(bad, ssqa["audio"], ssqa["rirs"], ssqa["tmp"] / "ds")
    msg = str(ei.value)
    assert "bad.jsonl: line 2: malformed JSON" in msg
    assert "line 3: field 'reverb_id' missing" in msg
    assert "line 4: field 'question_type' has type int" in msg
    assert "line 5: duplicate question_id 1 for DOA (first at line 1)" in msg
    assert "line 6: audio_id" in msg and "Yzz.wav: file not found" in msg
    assert "line 7: reverb_id" in msg and "77.npy: file not found" in msg
    assert "line 8: audio_id2 and reverb_id2 must both be set" in msg
    assert "line 9: expected a JSON object" in msg
    assert not (ssqa["tmp"] / "ds" / "manifest.jsonl").exists()


def test_spatialsoundqa_bad_audio_and_rir(ssqa: dict[str, Path]) -> None:
    audio, rirs = ssqa["audio"], ssqa["rirs"]
    x = _noise(1, 0.2, 5).astype(np.float32)
    x[3] = np.inf
    sf.write(audio / "Yinf.wav", x, SR, subtype="FLOAT")
    (audio / "Ytrunc.wav").write_bytes((audio / "eval" / "audio" / "Ya.wav").read_bytes()[:20])
    np.save(rirs / "room1" / "bad_shape.npy", np.zeros((3, 10)))
    nan_rir = np.zeros((2, 10))
    nan_rir[0, 1] = np.nan
    np.save(rirs / "room1" / "nan.npy", nan_rir)
    np.save(rirs / "room1" / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    sf.write(rirs / "room1" / "mono.wav", np.zeros(10) + 0.1, SR)
    (audio / "dup").mkdir()
    sf.write(audio / "dup" / "Yc.wav", _noise(1, 0.1, 9), SR)  # Yc now ambiguous by name
    recs = [_rec(1, "DOA", "q?", "left, front, above; 1m", aid="Yinf"),
            _rec(2, "DOA", "q?", "left, front, above; 1m", aid="Ytrunc"),
            _rec(3, "DOA", "q?", "left, front, above; 1m", rid="room1/bad_shape.npy"),
            _rec(4, "DOA", "q?", "left, front, above; 1m", rid="room1/nan.npy"),
            _rec(5, "DOA", "q?", "left, front, above; 1m", rid="room1/obj.npy"),
            _rec(6, "DOA", "q?", "left, front, above; 1m", rid="room1/mono.wav"),
            _rec(7, "DOA", "q?", "left, front, above; 1m", aid="Yc")]
    path = ssqa["tmp"] / "r.json"
    path.write_text(json.dumps(recs))
    with pytest.raises(TasBenchError) as ei:
        import_spatialsoundqa(path, audio, rirs, ssqa["tmp"] / "ds", sample_rate=SR)
    msg = str(ei.value)
    assert "'Yc' is ambiguous" in msg
    assert "Yinf.wav" not in msg  # path problems are reported first, rendering not attempted
    del recs[6]
    path.write_text(json.dumps(recs))
    with pytest.raises(TasBenchError) as ei:
        import_spatialsoundqa(path, audio, rirs, ssqa["tmp"] / "ds", sample_rate=SR)
    msg = str(ei.value)
    assert "Yinf.wav: contains NaN or Inf" in msg
    assert "Ytrunc.wav: unreadable or truncated" in msg
    assert "bad_shape.npy: RIR must have shape (2, N)" in msg
    assert "nan.npy: RIR contains NaN" in msg
    assert "obj.npy: unreadable .npy RIR" in msg
    assert "mono.wav: expected 2 channel(s), found 1" in msg
    assert not (ssqa["tmp"] / "ds" / "manifest.jsonl").exists()


def test_spatialsoundqa_malformed_json_list_and_options(ssqa: dict[str, Path]) -> None:
    p = ssqa["tmp"] / "broken.json"
    p.write_text('[{"audio_id": 1,\n')
    with pytest.raises(TasBenchError, match=r"broken.json: malformed JSON \(line 2"):
        import_spatialsoundqa(p, ssqa["audio"], ssqa["rirs"], ssqa["tmp"] / "ds")
    with pytest.raises(TasBenchError, match="records file not found"):
        import_spatialsoundqa(ssqa["tmp"] / "nope.jsonl", ssqa["audio"], ssqa["rirs"],
                              ssqa["tmp"] / "ds")
    with pytest.raises(TasBenchError, match="RIR folder not found"):
        import_spatialsoundqa(ssqa["jsonl"], ssqa["audio"], ssqa["tmp"] / "x", ssqa["tmp"] / "ds")
    with pytest.raises(TasBenchError, match="limit"):
        import_spatialsoundqa(ssqa["jsonl"], ssqa["audio"], ssqa["rirs"], ssqa["tmp"] / "ds",
                              limit=0)


def test_answer_parsing_helpers() -> None:
    s = octant_source("right, front, below; 2.5m", "dog", "a", "r")
    assert (s.azimuth, s.elevation, s.distance, s.direction) == (-45.0, -30.0, 2.5,
                                                                  ["right", "front", "below"])
    assert octant_source("right, front; 2.5m", "dog", "a", "r") is None
    assert octant_source("right, front, below", "dog", "a", "r") is None
    assert label_from_question("Where is the sound of the banjo coming from?") == "banjo"
    assert label_from_question("Where is it?") == "source"
    assert qa_category("MIXUP_NONBINARY_SOURCE", "Which sound is on the left?") == "Direction"
    assert qa_category("MIXUP_NONBINARY_SOURCE", "Which sound is closer?") == "Distance"
    assert qa_category("MIXUP_NONBINARY_SOURCE", "What is the sound?") is None
    assert qa_category("CLASSIFICATION", "x") is None
    assert qa_category("MIXUP_DISTANCE_BOTH", "x") == "Distance"


def test_load_rir_layouts_and_rate(tmp_path: Path) -> None:
    from tas_bench.data.importers.spatialsoundqa import load_rir

    r = np.zeros((2, 400))
    r[0, 0] = r[1, 10] = 1.0
    np.save(tmp_path / "a.npy", r)
    np.save(tmp_path / "b.npy", r.T)
    assert np.array_equal(load_rir(tmp_path / "a.npy", SR, SR), r)
    assert np.array_equal(load_rir(tmp_path / "b.npy", SR, SR), r)
    assert load_rir(tmp_path / "a.npy", SR, 2 * SR).shape == (2, 200)
    np.save(tmp_path / "empty.npy", np.zeros((2, 0)))
    with pytest.raises(TasBenchError, match="empty.npy: empty RIR"):
        load_rir(tmp_path / "empty.npy", SR, SR)


def test_binaural_folder_duplicate_ids_by_case(tmp_path: Path) -> None:
    src = tmp_path / "dup"
    src.mkdir()
    for name in ("x.wav", "x.WAV", "X.wav", "bad id.wav"):
        sf.write(src / name, _noise(2, 0.1, 0), SR)
    with pytest.raises(TasBenchError) as ei:
        import_binaural_folder(src, tmp_path / "ds")
    msg = str(ei.value)
    assert msg.count("duplicate clip id") == 2
    assert "bad id.wav: file name 'bad id' is not a valid clip id" in msg


def test_write_float_wav_is_byte_reproducible(tmp_path: Path) -> None:
    import time

    from tas_bench.data.importers import write_float_wav

    x = np.random.default_rng(0).standard_normal((2, 500)) * 3.0  # beyond [-1, 1] is kept
    write_float_wav(tmp_path / "a.wav", x, SR)
    time.sleep(1.05)  # libsndfile's PEAK chunk timestamp has 1 s resolution
    write_float_wav(tmp_path / "b.wav", x, SR)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert np.array_equal(read_audio(tmp_path / "a.wav").samples, x.astype(np.float32))
    with pytest.raises(TasBenchError, match="NaN"):
        write_float_wav(tmp_path / "c.wav", np.full((2, 4), np.nan), SR)
