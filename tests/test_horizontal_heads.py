"""Heads whose directions do not cover the octants (a 1-degree horizontal-plane set made here
from the spherical head, a hemisphere, a frontal-only set): azimuth-only placement, the
prompt/QA variant without above/below, the manifest's ``direction_words``, validate, the cues
evaluator's octant metric (not applicable, not 0), and bad SOFA files (one direction, NaN IRs,
rate 0)."""

from __future__ import annotations

import importlib
import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from tas_bench.data.geometry import (
    HORIZONTAL,
    OCTANTS,
    VERTICAL_WORDS,
    azimuth_margin,
    boundary_margin,
    direction_words,
    direction_words_for,
)
from tas_bench.data.hrtf import load_hrtf, placement_directions
from tas_bench.data.manifest import Provenance, QAItem, Source, load_dataset
from tas_bench.data.prompts import (
    PROMPT_TYPES_FOR_CATEGORY,
    check_prompt,
    make_prompt,
    prompt_types_for,
)
from tas_bench.data.qa import answer_correct, check_qa, make_qa, parse_direction
from tas_bench.data.source_corpus import SourceCorpus, load_source, spec_from_file
from tas_bench.data.validate import validate_dataset
from tas_bench.runtime.errors import TasBenchError

simmod = importlib.import_module("tas_bench.data.simulate")
SR = 16000
KEMAR = Path("/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa")


def write_sofa(path: Path, az: np.ndarray, el: np.ndarray, ir: np.ndarray | None = None,
               rate: float = SR) -> Path:
    """A SimpleFreeFieldHRIR file: the spherical head's HRIRs at (az, el) unless ``ir`` given."""
    from tas_bench.data.sphere_head import sphere_hrir

    if ir is None:
        ir = np.stack([sphere_hrir(float(a), float(e), SR) for a, e in zip(az, el)])
    pos = np.stack([az, el, np.full(len(az), 1.5)], axis=1)
    with h5py.File(path, "w") as f:
        f.attrs["Conventions"] = np.bytes_(b"SOFA")
        f.attrs["SOFAConventions"] = np.bytes_(b"SimpleFreeFieldHRIR")
        f.create_dataset("Data.IR", data=ir)
        f.create_dataset("Data.SamplingRate", data=np.array([rate]))
        ds = f.create_dataset("SourcePosition", data=pos)
        ds.attrs["Type"] = np.bytes_(b"spherical")
        ds.attrs["Units"] = np.bytes_(b"degree, degree, metre")
    return path


def horizontal_sofa(path: Path, step: float = 1.0) -> Path:
    """The spherical head sampled on the horizontal plane every ``step`` degrees."""
    az = np.arange(0.0, 360.0, step)
    return write_sofa(path, az, np.zeros_like(az))


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> Path:
    return horizontal_sofa(tmp_path_factory.mktemp("heads") / "horizontal1deg.sofa")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> SourceCorpus:
    d = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(5)
    items = []
    # every split has two labels, as two-source clips need
    for stem, label, split in [("noise_a", "noise", "train"), ("hum_a", "hum", "train"),
                               ("noise_b", "noise", "val"), ("hum_b", "hum", "val"),
                               ("noise_c", "noise", "test"), ("hum_c", "hum", "test")]:
        t = np.arange(int(0.8 * SR)) / SR
        x = 0.2 * rng.standard_normal(t.size) if label == "noise" else \
            0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
        p = d / f"{stem}.wav"
        sf.write(str(p), x, SR)
        items.append(load_source(spec_from_file(p, label, licence="CC0"), SR, d / "cache",
                                 split=split))
    return SourceCorpus(items=items, config={"test": "horizontal"})


@pytest.fixture(scope="module")
def hdata(tmp_path_factory, head, corpus) -> Path:
    """A horizontal dataset simulated through the CLI (``tas-bench simulate --hrtf FILE``)."""
    from tas_bench.pipeline.cli import main

    out = tmp_path_factory.mktemp("hdata") / "data"
    mp = pytest.MonkeyPatch()
    mp.setattr(simmod, "build_corpus", lambda sample_rate, *a, **k: corpus)
    try:
        rc = main(["simulate", "--out", str(out), "--hrtf", str(head), "--n-train", "0",
                   "--n-val", "0", "--n-test", "16", "--duration", "0.5", "--seed", "4",
                   "--workers", "1", "--quiet"])
    finally:
        mp.undo()
    assert rc == 0
    return out


def _texts(clip) -> list[str]:
    return [clip.prompt] + [t for q in clip.qa for t in (q.question, q.answer)]


# --------------------------------------------------------------------------- placement


def test_horizontal_head_placement_hand_counted(head):
    h = load_hrtf(head, SR)
    dset, idx = placement_directions(h, 10.0, (-40.0, 50.0))
    assert dset == HORIZONTAL
    # azimuths 10..80 in each of the four quadrants (margin >= 10 deg from 0/90/180/270): 4 x 71
    assert len(idx) == 284
    assert set(np.round(h.elevation[idx], 9)) == {0.0}
    assert min(azimuth_margin(a) for a in h.azimuth[idx]) == 10.0
    assert {direction_words(a, 0.0)[:2] for a in h.azimuth[idx]} == {
        ("left", "front"), ("left", "behind"), ("right", "front"), ("right", "behind")}


@pytest.mark.skipif(not KEMAR.is_file(), reason="libmysofa1's MIT KEMAR not installed")
def test_octant_heads_keep_the_old_candidates():
    """Full mode: KEMAR and the sphere are octant heads whose candidates are exactly the old
    rule's (margin >= 10 deg from every octant boundary, elevation in [-40, 50])."""
    for spec in ("kemar", "sphere"):
        h = load_hrtf(spec, SR)
        dset, idx = simmod.direction_placement(h)
        old = [i for i, (a, e) in enumerate(zip(h.azimuth, h.elevation))
               if min(azimuth_margin(a), abs(e)) >= 10.0 and -40.0 <= e <= 50.0]
        assert dset == OCTANTS and idx.tolist() == old
    for cat, types in PROMPT_TYPES_FOR_CATEGORY.items():
        assert prompt_types_for(cat, OCTANTS) == types
        assert prompt_types_for(cat, HORIZONTAL) == (("D", "E") if cat == "relative_direction"
                                                      else types)


@pytest.mark.skipif(not KEMAR.is_file(), reason="libmysofa1's MIT KEMAR not installed")
def test_a_measured_horizontal_ring_is_a_horizontal_head(tmp_path, corpus):
    """MIT KEMAR's 0-degree ring alone (72 measured HRIRs, 5-degree steps) as a SOFA file."""
    k = load_hrtf("kemar", SR)
    ring = np.flatnonzero(k.elevation == 0.0)
    p = write_sofa(tmp_path / "kemar_ring.sofa", k.azimuth[ring], k.elevation[ring],
                   ir=k.hrir[ring])
    dset, idx = placement_directions(load_hrtf(p, SR), 10.0, (-40.0, 50.0))
    assert dset == HORIZONTAL and len(idx) == 4 * 15  # azimuths 10, 15, ..., 80 per quadrant
    simmod.simulate_dataset(tmp_path / "d", n_train=0, n_val=0, n_test=8, duration=0.3,
                            hrtf=str(p), progress=False, corpus=corpus)
    assert validate_dataset(tmp_path / "d")[1] == []


def test_hemisphere_uses_the_horizontal_band_and_partial_sets_are_refused(tmp_path):
    az = np.tile(np.arange(0.0, 360.0, 15.0), 3)
    el = np.repeat([0.0, 30.0, 60.0], 24)  # upper hemisphere: no "below" octant
    h = load_hrtf(write_sofa(tmp_path / "upper.sofa", az, el), SR)
    dset, idx = placement_directions(h, 10.0, (-40.0, 50.0))
    assert dset == HORIZONTAL and set(h.elevation[idx]) == {0.0} and len(idx) == 4 * 5
    front = np.arange(-80.0, 81.0, 5.0)  # frontal half only: no "behind" quadrant
    p = write_sofa(tmp_path / "frontal.sofa", front, np.zeros_like(front))
    with pytest.raises(TasBenchError) as err:
        placement_directions(load_hrtf(p, SR), 10.0, (-40.0, 50.0))
    msg = str(err.value)
    assert "frontal.sofa" in msg and "SourcePosition" in msg
    assert "left, behind; right, behind" in msg and "quadrant" in msg


# --------------------------------------------------------------------------- the dataset


def test_cli_simulation_of_a_horizontal_head(hdata):
    info = json.loads((hdata / "dataset.json").read_text())
    assert info["direction_words"] == HORIZONTAL
    ds = load_dataset(hdata)
    assert len(ds.clips) == 16
    assert {c.category for c in ds.clips} == set(simmod.SIM_CATEGORIES)
    for c in ds.clips:
        assert c.prompt_type != "F"
        for s in c.sources:
            assert len(s.direction) == 2 and s.elevation == 0.0
            assert s.direction == list(direction_words_for(s.azimuth, s.elevation, HORIZONTAL))
            assert boundary_margin(s.azimuth, s.elevation, HORIZONTAL) >= 10.0
        for text in _texts(c):
            assert not set(text.lower().replace(",", " ").split()) & set(VERTICAL_WORDS), text
        assert check_prompt(c.prompt, c.prompt_type, c.sources) == []
        assert all(check_qa(q, c.sources) == [] for q in c.qa)
        # the generator's answers score as correct, and a flipped side as wrong
        for q in c.qa:
            assert answer_correct(q.category, q.question_type, q.answer, q.answer), q
            if q.category == "DOA":
                flipped = q.answer.replace("left", "X").replace("right", "left").replace("X", "right")
                assert not answer_correct(q.category, q.question_type, flipped, q.answer)
    doa = [q for c in ds.clips for q in c.qa if q.category == "DOA"]
    assert doa and all(len(q.answer.split(", ")) == 2 for q in doa)


def test_validate_accepts_the_horizontal_dataset_and_checks_consistency(hdata, tmp_path, capsys):
    from tas_bench.pipeline.cli import main

    assert validate_dataset(hdata) == (16, [])
    assert main(["validate", str(hdata)]) == 0
    bad = tmp_path / "bad"
    shutil.copytree(hdata, bad)
    # without the field (an older or hand-made dataset) two-word sources read as horizontal
    info = json.loads((bad / "dataset.json").read_text())
    (bad / "dataset.json").write_text(json.dumps({k: v for k, v in info.items()
                                                  if k != "direction_words"}))
    assert validate_dataset(bad, check_audio=False)[1] == []
    lines = (bad / "manifest.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    rec["prompt"] = rec["prompt"].rstrip(".") + ", above the listener."
    lines[0] = json.dumps(rec, sort_keys=True)
    (bad / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    _, problems = validate_dataset(bad, check_audio=False)
    assert [(p.line, p.field) for p in problems] == [(1, "prompt")]
    assert "above" in problems[0].message
    # the dataset says octants but its sources have two words: every source is named
    info = json.loads((bad / "dataset.json").read_text())
    (bad / "dataset.json").write_text(json.dumps({**info, "direction_words": OCTANTS}))
    _, problems = validate_dataset(bad, check_audio=False)
    n_sources = sum(len(c.sources) for c in load_dataset(bad).clips)
    assert len(problems) == n_sources
    assert all(p.field.endswith(".direction") and "needs 3" in p.message for p in problems)
    (bad / "dataset.json").write_text(json.dumps({**info, "direction_words": "diagonal"}))
    _, problems = validate_dataset(bad, check_audio=False)
    assert any(p.file == "dataset.json" and p.field == "direction_words" for p in problems)
    capsys.readouterr()


def test_continuous_directions_on_a_horizontal_head(tmp_path, head, corpus):
    simmod.simulate_dataset(tmp_path / "c", n_train=0, n_val=0, n_test=4, duration=0.3,
                            hrtf=str(head), progress=False, corpus=corpus,
                            directions="continuous")
    for c in load_dataset(tmp_path / "c").clips:
        for s in c.sources:
            assert s.elevation == 0.0 and len(s.direction) == 2
            assert azimuth_margin(s.azimuth) >= 10.0
    assert validate_dataset(tmp_path / "c")[1] == []


# --------------------------------------------------------------------------- prompts and QA


def _src(label: str, az: float, d: float = 2.0, el: float = 0.0) -> Source:
    return Source(label, az, el, d, list(direction_words_for(az, el, HORIZONTAL)),
                  Provenance("test", f"{label}.wav", "CC0"))


def test_prompt_and_qa_variant_hand_made():
    rng = np.random.default_rng(0)
    dog, bell = _src("dog", -150.0, 5.0), _src("bell", 40.0, 2.0)
    assert dog.direction == ["right", "behind"]
    prompt = make_prompt("A", [dog], rng)
    assert "right, behind" in prompt and check_prompt(prompt, "A", [dog]) == []
    three = prompt.replace("right, behind", "right, behind, above")
    assert check_prompt(three, "A", [dog])  # a third word disagrees with the two-word truth
    with pytest.raises(ValueError, match="type F"):
        make_prompt("F", [dog, bell], rng)
    assert check_prompt("The dog is above the bell.", "F", [dog, bell])
    qa = make_qa("relative_direction", [dog, bell], rng)
    assert qa and not any(w in (q.question + " " + q.answer).lower()
                          for q in qa for w in ("higher", "lower", "above", "below"))
    doa = make_qa("single_doa_de", [dog], rng)[0]
    assert doa.answer == "right, behind"
    # a hemisphere's band: sources 8 deg above and below the plane, 10 m away, differ by 2.8 m
    # in height, yet the variant asks nothing about it
    up, down = _src("dog", -150.0, 10.0, el=8.0), _src("bell", 40.0, 10.0, el=-8.0)
    for _ in range(20):
        qa = make_qa("relative_direction", [up, down], rng)
        assert {q.question_type for q in qa} == {"MIXUP_DIRECTION", "MIXUP_NONBINARY_DIRECTION"}
        assert not any(w in (q.question + " " + q.answer).lower()
                       for q in qa for w in ("higher", "lower", "above", "below"))
        assert all(check_qa(q, [up, down]) == [] for q in qa)
    assert check_qa(QAItem("Which sound is higher, the dog or the bell?", "dog", "Direction",
                           "MIXUP_NONBINARY_DIRECTION"), [up, down])


def test_answer_scoring_hand_made():
    t = "right, behind"
    assert answer_correct("DOA", "DOA", "right, behind", t)
    assert answer_correct("DOA", "DOA", "Behind you, to the right.", t)
    assert answer_correct("DOA", "DOA", "right, back, above", t)  # elevation is not scored
    assert not answer_correct("DOA", "DOA", "left, behind", t)
    assert not answer_correct("DOA", "DOA", "right, front", t)
    assert not answer_correct("DOA", "DOA", "right", t)
    assert not answer_correct("DOA", "DOA", "right or left, behind", t)
    # full (three-word) truths are scored as before: a missing vertical word is wrong
    assert not answer_correct("DOA", "DOA", "right, behind", "right, behind, above")
    assert answer_correct("DOA", "DOA", "right, behind, above", "right, behind, above")
    assert parse_direction("right, behind") is None
    assert parse_direction("right, behind", vertical=False) == ("right", "behind")
    # the spatial-QA evaluator's "unparseable" rate reads a two-word answer to a horizontal truth
    from evaluators.spatial_qa.evaluator import _parseable

    assert _parseable("DOA", "left, front", t) and not _parseable("DOA", "left", t)
    assert not _parseable("DOA", "left, front", "right, behind, above")


@settings(max_examples=60, deadline=None)
@given(az=st.floats(-179.9, 180.0), flip=st.sampled_from(["lateral", "frontal", "none"]),
       extra=st.sampled_from(["", ", above", ", below", "; 3m"]))
def test_horizontal_doa_truth_scores_each_word(az, flip, extra):
    words = list(direction_words_for(az, 0.0, HORIZONTAL))
    truth = ", ".join(words)
    pred = list(words)
    if flip == "lateral":
        pred[0] = {"left": "right", "right": "left"}[pred[0]]
    elif flip == "frontal":
        pred[1] = {"front": "behind", "behind": "front"}[pred[1]]
    said = ", ".join(reversed(pred)) + extra
    assert answer_correct("DOA", "DOA", said, truth) is (flip == "none")


# --------------------------------------------------------------------------- cues evaluator


def test_cues_octant_metric_is_not_applicable_on_a_horizontal_dataset(hdata, tmp_path,
                                                                      private_cache):
    import tas_bench

    ds = load_dataset(hdata)
    pred = tmp_path / "pred"
    pred.mkdir()
    for c in ds.split("test"):
        shutil.copy(ds.audio_path(c), pred / f"{c.id}.wav")
    res = tas_bench.score(hdata, pred, evaluators=["cues"], out=tmp_path / "res")
    m = res.metrics
    n_single = sum(c.category == "single_doa_de" for c in ds.clips)
    for name in ("octant_correct", "octant_correct_ref"):
        assert m.loc[name, "n"] == 0 and not np.isfinite(float(m.loc[name, "mean"] or np.nan))
    assert m.loc["lr_correct_ref", "n"] == n_single
    assert m.loc["lr_correct_ref", "mean"] >= 0.75  # the references localise on their side
    doc = json.loads((tmp_path / "res" / "results.json").read_text())
    why = doc["evaluators"]["cues"]["config"]["not_applicable"]
    assert set(why) == {"octant_correct", "octant_correct_ref"}
    assert "horizontal" in why["octant_correct"]


# --------------------------------------------------------------------------- bad SOFA files


def _cli_error(tmp_path: Path, sofa: Path, capsys) -> str:
    from tas_bench.pipeline.cli import main

    capsys.readouterr()
    assert main(["simulate", "--out", str(tmp_path / "o"), "--hrtf", str(sofa), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and str(sofa) in err
    assert not (tmp_path / "o" / "manifest.jsonl").exists()
    return err


def test_bad_sofa_files_each_get_one_clear_message(tmp_path, capsys):
    one = write_sofa(tmp_path / "one.sofa", np.array([30.0]), np.array([0.0]))
    assert "Data.IR: holds 1 measured direction" in _cli_error(tmp_path, one, capsys)
    az = np.arange(0.0, 360.0, 30.0)
    ir = np.zeros((12, 2, 32))
    ir[:, :, 4] = 1.0
    ir[3, 1, 7] = np.nan
    nan = write_sofa(tmp_path / "nan.sofa", az, np.zeros(12), ir=ir)
    err = _cli_error(tmp_path, nan, capsys)
    assert "Data.IR: holds 1 NaN/Inf value(s)" in err and "measurement 3, right ear" in err
    ir[3, 1, 7] = 0.0
    zero = write_sofa(tmp_path / "zero.sofa", az, np.zeros(12), ir=ir, rate=0.0)
    err = _cli_error(tmp_path, zero, capsys)
    assert "Data.SamplingRate: is 0 Hz" in err
    # the same heads are refused by the cues evaluator's hrtf= option, through the same reader
    for bad in (one, nan, zero):
        with pytest.raises(TasBenchError, match=bad.name):
            load_hrtf(bad, SR)
    assert math.isfinite(load_hrtf(write_sofa(tmp_path / "ok.sofa", az, np.zeros(12), ir=ir),
                                   SR).hrir.sum())
