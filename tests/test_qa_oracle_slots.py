"""benchmarks/qa_oracle_slots.py: the oracle geometry vector by hand, the slot tables, and a
run through the script on a tiny assessor and tiny data (same report twice)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from datagen import make_dataset
from qa_tiny import make_qa_dataset, train_tiny
from scriptload import load_benchmark


def _src(label: str, az: float, el: float, dist: float, words: list[str]) -> SimpleNamespace:
    return SimpleNamespace(label=label, azimuth=az, elevation=el, distance=dist, direction=words)


def test_source_geometry_by_hand() -> None:
    mod = load_benchmark("qa_oracle_slots")
    g = mod.source_geometry(_src("dog", 90.0, 0.0, 2.0, ["left", "front"]))
    assert g == pytest.approx([1.0, 0.0, 0.0, 1.0, 0.2, 1.0, 1.0, 0.0], abs=1e-12)
    g = mod.source_geometry(_src("dog", 180.0, -30.0, 5.0, ["right", "behind", "below"]))
    assert g == pytest.approx([0.0, -1.0, -0.5, 3 ** 0.5 / 2, 0.5, -1.0, -1.0, -1.0], abs=1e-12)
    # --cartesian appends x (front), y (left), z (up) in metres / 10
    g = mod.source_geometry(_src("dog", 90.0, 0.0, 2.0, ["left", "front"]), cartesian=True)
    assert g[mod.GEOMETRY:] == pytest.approx([0.0, 0.2, 0.0], abs=1e-12)
    g = mod.source_geometry(_src("dog", 180.0, -30.0, 5.0, ["right", "behind", "below"]), True)
    assert g[mod.GEOMETRY:] == pytest.approx([-0.5 * 3 ** 0.5 / 2, 0.0, -0.25], abs=1e-12)


def test_position_unit_scales_the_cartesian_part_only() -> None:
    mod = load_benchmark("qa_oracle_slots")
    src = _src("dog", 90.0, 0.0, 2.0, ["left", "front"])
    g = mod.source_geometry(src, cartesian=True, position_unit=1.0)
    assert g[mod.GEOMETRY:] == pytest.approx([0.0, 2.0, 0.0], abs=1e-12)
    assert g[:mod.GEOMETRY] == mod.source_geometry(src)


def test_text_label_slots_are_the_mean_word_embedding() -> None:
    import torch

    mod = load_benchmark("qa_oracle_slots")
    emb = torch.nn.Embedding(10, 4)
    slots = mod.OracleSlots(2, 4, text_labels=emb, label_tokens=[[3], [5, 7]])
    table = slots.label_table()
    assert table.shape == (4, 4)
    assert torch.allclose(table[1], emb.weight[3]) and torch.allclose(
        table[2], (emb.weight[5] + emb.weight[7]) / 2)
    assert torch.equal(table[0], slots.label.weight[0]) and torch.equal(table[3], slots.label.weight[-1])
    out = slots(torch.tensor([[2, 3]]), torch.zeros(1, 2, mod.GEOMETRY), torch.tensor([[True, False]]))
    out.sum().backward()  # the label words' embeddings learn through the slots
    assert emb.weight.grad[5].abs().sum() > 0 and emb.weight.grad[0].abs().sum() == 0
    with pytest.raises(ValueError):
        mod.OracleSlots(2, 4, text_labels=emb, label_tokens=[[3]])


def test_oracle_tables_mark_unknown_labels_and_missing_sources() -> None:
    mod = load_benchmark("qa_oracle_slots")
    clips = [SimpleNamespace(sources=[_src("dog", 90, 0, 2, ["left"])]),
             SimpleNamespace(sources=[_src("cat", 0, 0, 1, ["front"]), _src("bell", 270, 0, 3, ["right"])])]
    lab, geo, present = mod.oracle_tables(clips, ["bell", "dog"])
    assert lab.tolist() == [[2, 3], [0, 1]]  # dog = 2; 3 = no source; cat unknown = 0; bell = 1
    assert present.tolist() == [[True, False], [True, True]]
    assert geo[0, 1].abs().sum() == 0 and geo[1, 1, 5] == -1.0


def test_oracle_run_end_to_end_is_deterministic(tmp_path: Path, capsys) -> None:
    mod = load_benchmark("qa_oracle_slots")
    train = make_qa_dataset(tmp_path / "train")
    make_dataset(tmp_path / "test", n=4, seconds=0.5, split="test")
    train_tiny(train, tmp_path / "run")
    args = ["--train", str(train), "--test", str(tmp_path / "test"), "--assessor",
            str(tmp_path / "run"), "--steps", "3", "--batch-size", "2"]
    assert mod.main([*args, "--out", str(tmp_path / "a.json")]) == 0
    assert mod.main([*args, "--out", str(tmp_path / "b.json")]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["accuracy"]["DOA"]["n"] == 4 and a["train_items"] == 6
    assert 0.0 <= a["accuracy"]["DOA"]["accuracy"] <= 1.0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert mod.main([*args, "--out", str(tmp_path / "w.json"), "--hidden", "64", "--layers", "3"]) == 0
    w = json.loads((tmp_path / "w.json").read_text())["llm"]
    assert (w["hidden"], w["layers"], w["heads"], w["intermediate"]) == (64, 3, 2, 172)
    assert w["parameters"] > a["llm"]["parameters"]
    assert mod.main([*args, "--out", str(tmp_path / "p.json"), "--cartesian"]) == 0
    p = json.loads((tmp_path / "p.json").read_text())
    assert p["cartesian"] and p["extra_pairs"] == 0 and set(p["accuracy_by_question_type"]) == {"DOA"}
    assert p["position_unit"] == 10.0 and not p["text_labels"] and p["curriculum_steps"] == 0
    assert mod.main([*args, "--out", str(tmp_path / "m.json"), "--cartesian", "--position-unit",
                     "1", "--text-labels", "--curriculum-steps", "2", "--weight-decay", "0.1"]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert (m["position_unit"], m["text_labels"], m["curriculum_steps"], m["weight_decay"]) == (
        1.0, True, 2, 0.1)
    capsys.readouterr()
    assert mod.main([*args, "--out", str(tmp_path / "k.json"), "--curriculum-steps", "2",
                     "--curriculum-types", "DOA"]) == 0
    assert json.loads((tmp_path / "k.json").read_text())["curriculum_types"] == ["DOA"]
    capsys.readouterr()
    for bad in (["--position-unit", "0"], ["--curriculum-steps", "-1"],
                ["--curriculum-steps", "2", "--curriculum-types", "MIXUP_DIRECTION"]):
        assert mod.main([*args, "--out", str(tmp_path / "x.json"), *bad]) == 2
        err = capsys.readouterr().err
        assert bad[-2] in err and "Traceback" not in err
    capsys.readouterr()
    # every tiny source is "noise": no pair of distinct labels to recombine, one message
    assert mod.main([*args, "--out", str(tmp_path / "q.json"), "--extra-pairs", "5"]) == 2
    err = capsys.readouterr().err
    assert "--extra-pairs" in err and "two different labels" in err and "Traceback" not in err
    assert mod.main([*args, "--out", str(tmp_path / "t.json"), "--train-types", "DOA"]) == 0
    t = json.loads((tmp_path / "t.json").read_text())
    assert t["train_types"] == ["DOA"] and t["train_items"] == 6
    capsys.readouterr()
    assert mod.main([*args, "--out", str(tmp_path / "u.json"), "--train-types",
                     "MIXUP_DIRECTION"]) == 2  # the tiny data has DOA items only
    err = capsys.readouterr().err
    assert "--train-types" in err and "MIXUP_DIRECTION" in err and "Traceback" not in err
    capsys.readouterr()
    # a test set without a test split: one message, no traceback
    assert mod.main(["--train", str(train), "--test", str(train), "--assessor",
                     str(tmp_path / "run"), "--steps", "1", "--out", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "test split of --test" in err and "Traceback" not in err


def _source(label: str, az: float, el: float, dist: float) -> object:
    from tas_bench.data.geometry import direction_words_for
    from tas_bench.data.manifest import Provenance, Source

    return Source(label=label, azimuth=az, elevation=el, distance=dist,
                  direction=list(direction_words_for(az, el)),
                  provenance=Provenance(package="test", file=f"{label}.wav", licence="CC0"))


def test_recombined_pairs_are_relational_clips_with_answers_from_their_geometry() -> None:
    from tas_bench.data.manifest import Clip
    from tas_bench.data.qa import check_qa

    mod = load_benchmark("qa_oracle_slots")
    srcs = [_source("dog", 90, 0, 1.0), _source("bell", 270, 30, 4.0),
            _source("car", 0, -30, 2.5)]
    clips = [Clip(id=f"c{i}", split="train", audio="x.wav", sample_rate=16000, duration=1.0,
                  category="single_doa_de", sources=[s], prompt="", prompt_type=None, qa=[],
                  hrtf=None, room=None, seed=None) for i, s in enumerate(srcs)]
    pairs = mod.recombined_pairs(clips, 40, seed=0)
    assert len(pairs) == 40 and [p.id for p in pairs[:2]] == ["pair-0", "pair-1"]
    assert {p.category for p in pairs} == {"relative_direction", "relative_distance"}
    for p in pairs:
        a, b = p.sources
        assert a.label != b.label and a in srcs and b in srcs
        assert p.qa and {q.category for q in p.qa} <= {"Direction", "Distance"}
        for q in p.qa:  # each stored answer is what the geometry says (the QA checker)
            assert check_qa(q, p.sources) == []
            if "further to the left" in q.question and {a.label, b.label} == {"dog", "bell"}:
                assert q.answer == "dog"  # az 90 (left) against az 270 (right), by hand
    assert [p.qa for p in mod.recombined_pairs(clips, 40, seed=0)] == [p.qa for p in pairs]
    assert [p.qa for p in mod.recombined_pairs(clips, 40, seed=1)] != [p.qa for p in pairs]
