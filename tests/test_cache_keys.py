"""Cache keys: every component of a per-clip key (evaluator name, version, config, each weight
hash, prediction and reference audio, each manifest field in ``needs``, the audio policy) and the
corpus key's dependence on the clip keys, each changed alone, gives a new key (a new cache entry)
AND a recomputation (the evaluator is called again); changing anything outside the key (fields
the evaluator does not read, mtimes, file names and folders, order, batch size, weight metadata)
gives neither. Observed black-box: calls of a counting evaluator and the entry files of the
cache folder."""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from datagen import binaural_noise, make_dataset, write_predictions

from evaluators.base import ClipOutput, Evaluator, MetricSpec
from evaluators.registry import EVALUATORS
from tas_bench.data.geometry import direction_words
from tas_bench.data.manifest import MANIFEST_NAME
from tas_bench.pipeline import scoring
from tas_bench.pipeline.scoring import ScoreOptions, score
from tas_bench.runtime.audio_io import write_wav
from tas_bench.runtime.cache import OutputCache

N = 3
SECONDS = 0.25
CALLS: Counter[tuple[str, str]] = Counter()  # (evaluator, clip id) -> process_batch calls
COMPUTES: Counter[str] = Counter()  # evaluator -> compute() calls


class KeyProbe(Evaluator):
    """Counts its calls. Its output depends on everything a key covers: audio, config, the
    manifest fields it needs; its config deliberately does not list the sample rate."""

    name = "test-keyprobe"
    version = "1"
    metrics = (MetricSpec("probe", False, "", "mean(pred * ref) * scale"),
               MetricSpec("probe_total", False, "", "sum of per-clip values", per_clip=False))
    needs: tuple[str, ...] = ()
    batch_size = 2
    sample_rate = 16000
    WEIGHTS: dict[str, dict[str, Any]] = {
        "backbone.pth": {"sha256": "a" * 64, "custom": False, "file": "/w/backbone.pth"},
        "assessor.pth": {"sha256": "b" * 64, "custom": True, "file": "/w/assessor.pth"},
    }

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = float(scale)

    def config(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def weights_info(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self.WEIGHTS)

    def process_batch(self, batch):  # noqa: ANN001, ANN201
        out = []
        for b in batch:
            CALLS[(self.name, b.clip.id)] += 1
            out.append(ClipOutput({"probe": self.scale * float(np.mean(b.pred * b.ref))},
                                  {"n": np.array([float(b.pred.shape[1])])}))
        return out

    def init_state(self) -> dict:
        return {"ids": [], "total": 0.0}

    def update_state(self, state, clip_id, output) -> None:  # noqa: ANN001
        state["ids"].append(clip_id)
        state["total"] += output.values["probe"]

    def compute(self, state) -> dict:  # noqa: ANN001
        COMPUTES[self.name] += 1
        return {"probe_total": state["total"]}


def probe(needs: tuple[str, ...] = (), suffix: str = "") -> str:
    """Register (once) a KeyProbe reading ``needs``; returns its evaluator name."""
    name = "test-keyprobe" + ("-" + "-".join(needs) if needs else "") + suffix
    if name not in EVALUATORS:
        EVALUATORS.register(name, type("Probe", (KeyProbe,), {"name": name, "needs": tuple(needs)}))
    return name


PLAIN = probe()


class World:
    """A tiny dataset, predictions, a private cache, and a score() wrapper that reports what it
    recomputed: per-clip calls, compute() calls and the new cache entries."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data, self.pred, self.cache = root / "data", root / "pred", root / "cache"
        self.recs = make_dataset(self.data, n=N, seconds=SECONDS)
        write_predictions(self.pred, self.data, self.recs, mode="noisy")
        self.ids = [r["id"] for r in self.recs]
        self.runs = 0

    def entries(self) -> set[Path]:
        return set(self.cache.rglob("*.npz")) if self.cache.is_dir() else set()

    def score(self, evaluators: list[str], **kw: Any) -> tuple[Counter, Counter, set[Path], Any]:
        self.runs += 1
        before = self.entries()
        CALLS.clear()
        COMPUTES.clear()
        opts = ScoreOptions(data=kw.pop("data", self.data), pred=kw.pop("pred", self.pred),
                            out=kw.pop("out", self.root / f"res{self.runs}"), evaluators=evaluators,
                            cache_dir=self.cache, progress=False, **kw)
        s = score(opts)
        return Counter(CALLS), Counter(COMPUTES), self.entries() - before, s

    def edit_manifest(self, fn: Callable[[list[dict[str, Any]]], None]) -> None:
        path = self.data / MANIFEST_NAME
        recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        fn(recs)
        path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")

    def rewrite_pred(self, cid: str, seed: int) -> None:
        write_wav(self.pred / f"{cid}.wav", binaural_noise(seed, SECONDS), 16000, subtype="FLOAT")

    def rewrite_ref(self, cid: str, seed: int) -> None:
        rec = next(r for r in self.recs if r["id"] == cid)
        write_wav(self.data / rec["audio"], binaural_noise(seed, SECONDS), 16000)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _clips(calls: Counter, ev: str) -> set[str]:
    return {cid for (name, cid) in calls if name == ev}


def _assert_all_recomputed(w: World, evs: list[str]) -> None:
    calls, computes, new, _ = w.score(evs)
    for ev in evs:
        assert _clips(calls, ev) == set(w.ids), f"{ev}: not every clip was recomputed"
        assert computes[ev] == 1, f"{ev}: corpus metrics served from the cache"
    assert len(new) == len(evs) * (N + 1)  # a new key per clip and a new corpus key


def _assert_nothing_recomputed(w: World, evs: list[str], **kw: Any) -> Any:
    calls, computes, new, s = w.score(evs, **kw)
    assert calls == Counter() and computes == Counter() and new == set(), \
        f"recomputed {dict(calls)} / {dict(computes)}, new entries {len(new)}"
    return s


# ---- evaluator identity -------------------------------------------------------------------

def test_unchanged_rerun_is_served_entirely_from_the_cache(world: World) -> None:
    calls, computes, new, s1 = world.score([PLAIN])
    assert _clips(calls, PLAIN) == set(world.ids) and computes[PLAIN] == 1 and len(new) == N + 1
    s2 = _assert_nothing_recomputed(world, [PLAIN])
    assert s2.metrics == s1.metrics and s2.cache_hits == N + 1 and s2.cache_misses == 0


def test_evaluator_name_is_in_the_key(world: World) -> None:
    world.score([PLAIN])
    twin = probe(suffix="-twin")  # same class, code and config, another registered name
    calls, computes, new, _ = world.score([twin])
    assert _clips(calls, twin) == set(world.ids) and computes[twin] == 1 and len(new) == N + 1


def test_evaluator_version_is_in_the_key(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.score([PLAIN])
    monkeypatch.setattr(EVALUATORS.get(PLAIN), "version", "2")
    _assert_all_recomputed(world, [PLAIN])


def test_evaluator_config_is_in_the_key(world: World) -> None:
    world.score([PLAIN])
    # the same config spelled out explicitly is the same config
    _assert_nothing_recomputed(world, [PLAIN], evaluator_config={PLAIN: {"scale": 1.0}})
    calls, computes, new, s = world.score([PLAIN], evaluator_config={PLAIN: {"scale": 2.0}})
    assert _clips(calls, PLAIN) == set(world.ids) and computes[PLAIN] == 1 and len(new) == N + 1


@pytest.mark.parametrize("weight", ["backbone.pth", "assessor.pth"])
def test_each_weight_hash_is_in_the_key(world: World, monkeypatch: pytest.MonkeyPatch, weight: str) -> None:
    world.score([PLAIN])
    changed = copy.deepcopy(KeyProbe.WEIGHTS)
    changed[weight]["sha256"] = "c" * 64
    monkeypatch.setattr(EVALUATORS.get(PLAIN), "WEIGHTS", changed)
    _assert_all_recomputed(world, [PLAIN])


def test_weight_metadata_other_than_the_hash_is_not_in_the_key(world: World,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    world.score([PLAIN])
    moved = copy.deepcopy(KeyProbe.WEIGHTS)
    for info in moved.values():
        info["file"] = "/elsewhere/" + Path(info["file"]).name  # same bytes, another folder
        info["status"] = "ok"
    monkeypatch.setattr(EVALUATORS.get(PLAIN), "WEIGHTS", moved)
    _assert_nothing_recomputed(world, [PLAIN])


# ---- audio --------------------------------------------------------------------------------

def test_prediction_audio_is_in_the_key(world: World) -> None:
    world.score([PLAIN])
    world.rewrite_pred(world.ids[1], seed=777)
    calls, computes, new, _ = world.score([PLAIN])
    assert _clips(calls, PLAIN) == {world.ids[1]} and computes[PLAIN] == 1 and len(new) == 2


def test_reference_audio_is_in_the_key(world: World) -> None:
    world.score([PLAIN])
    world.rewrite_ref(world.ids[2], seed=778)
    calls, computes, new, _ = world.score([PLAIN])
    assert _clips(calls, PLAIN) == {world.ids[2]} and computes[PLAIN] == 1 and len(new) == 2


def test_mtimes_names_and_folders_are_not_in_the_key(world: World) -> None:
    world.score([PLAIN])
    for p in [*world.pred.glob("*.wav"), *(world.data / "audio").rglob("*.wav")]:
        os.utime(p, (1_000_000_000, 1_000_000_000))
        p.write_bytes(p.read_bytes())  # rewritten with the same bytes: new mtime/ctime
    _assert_nothing_recomputed(world, [PLAIN])
    # predictions in another folder, results in another folder, another system name
    shutil.copytree(world.pred, world.root / "pred-copy")
    _assert_nothing_recomputed(world, [PLAIN], pred=world.root / "pred-copy",
                               out=world.root / "elsewhere", system_name="renamed")
    # the reference renamed in the manifest (same bytes): an evaluator that reads no manifest
    # field cannot see the name
    rec = world.recs[0]
    new_rel = "audio/test/renamed.wav"
    (world.data / rec["audio"]).rename(world.data / new_rel)
    world.edit_manifest(lambda rs: rs[0].update(audio=new_rel))
    _assert_nothing_recomputed(world, [PLAIN])


def test_audio_policy_is_in_the_key(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.score([PLAIN])
    monkeypatch.setattr(scoring, "RESAMPLER", scoring.RESAMPLER + " (changed)")
    _assert_all_recomputed(world, [PLAIN])
    monkeypatch.setattr(scoring, "LENGTH_POLICY", "prediction time-stretched to the reference length")
    _assert_all_recomputed(world, [PLAIN])
    # the rate the evaluator is fed at, even when its config() does not mention it
    monkeypatch.setattr(EVALUATORS.get(PLAIN), "sample_rate", 8000)
    _assert_all_recomputed(world, [PLAIN])


def test_batch_size_is_not_in_the_key(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.score([PLAIN])
    monkeypatch.setattr(EVALUATORS.get(PLAIN), "batch_size", 1)
    _assert_nothing_recomputed(world, [PLAIN])


# ---- manifest fields ----------------------------------------------------------------------

def _flip_azimuth(r: dict[str, Any]) -> None:
    s = r["sources"][0]
    s["azimuth"] = -s["azimuth"]
    s["direction"] = list(direction_words(s["azimuth"], s["elevation"]))


#: (field, sub-case) -> an edit of one manifest record that keeps the manifest valid
EDITS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("sources", "azimuth"): _flip_azimuth,
    ("sources", "elevation"): lambda r: r["sources"][0].update(
        elevation=-20.0, direction=list(direction_words(r["sources"][0]["azimuth"], -20.0))),
    ("sources", "distance"): lambda r: r["sources"][0].update(distance=3.5),
    ("sources", "label"): lambda r: r["sources"][0].update(label="hum"),
    ("sources", "provenance"): lambda r: r["sources"][0]["provenance"].update(licence="CC-BY-4.0"),
    ("sources", "extra key"): lambda r: r["sources"][0].update(gain_db=-3.0),
    ("sources", "second source"): lambda r: r["sources"].append(copy.deepcopy(r["sources"][0])),
    ("category", ""): lambda r: r.update(category="real"),
    ("prompt", ""): lambda r: r.update(prompt=r["prompt"] + " Quietly."),
    ("prompt_type", ""): lambda r: r.update(prompt_type="B"),
    ("qa", "answer"): lambda r: r["qa"][0].update(answer="somewhere"),
    ("qa", "extra item"): lambda r: r["qa"].append({"question": "How far?", "answer": "2m",
                                                     "category": "DE", "question_type": "DE"}),
    ("hrtf", ""): lambda r: r.update(hrtf={"name": "kemar", "sha256": "d" * 64}),
    ("room", ""): lambda r: r.update(room={"rt60": 0.4}),
    ("seed", ""): lambda r: r.update(seed=12345),
    ("extra", ""): lambda r: r.update(note="re-recorded"),
}


@pytest.mark.parametrize("field,case", list(EDITS), ids=[f"{f}-{c}" if c else f for f, c in EDITS])
def test_each_needed_manifest_field_is_in_the_key_and_no_other(world: World, field: str, case: str) -> None:
    reads = probe((field,))
    other = probe(("seed",) if field != "seed" else ("prompt",))
    evs = [reads, other, PLAIN]
    world.score(evs)
    target = world.ids[1]
    world.edit_manifest(lambda rs: EDITS[(field, case)](rs[1]))
    calls, computes, new, _ = world.score(evs)
    # the evaluator that reads the field: that clip alone recomputed, under a new key
    assert _clips(calls, reads) == {target}
    assert computes[reads] == 1
    # the evaluators that do not read it: nothing recomputed, no new entry
    assert _clips(calls, other) == set() and _clips(calls, PLAIN) == set()
    assert computes[other] == 0 and computes[PLAIN] == 0
    assert len(new) == 2  # one clip entry + one corpus entry, both of `reads`


def test_every_needed_field_counts_not_only_the_first(world: World) -> None:
    both = probe(("prompt", "seed"))
    world.score([both])
    world.edit_manifest(lambda rs: rs[0].update(seed=999))  # the second of the two fields
    calls, computes, new, _ = world.score([both])
    assert _clips(calls, both) == {world.ids[0]} and computes[both] == 1 and len(new) == 2


def test_clip_id_is_in_the_key_of_an_evaluator_that_reads_the_manifest(world: World) -> None:
    reads = probe(("seed",))
    world.score([reads, PLAIN])
    old, new_id = world.ids[0], "renamed-clip"
    world.edit_manifest(lambda rs: rs[0].update(id=new_id))
    (world.pred / f"{old}.wav").rename(world.pred / f"{new_id}.wav")
    calls, computes, _, _ = world.score([reads, PLAIN])
    assert _clips(calls, reads) == {new_id}
    assert _clips(calls, PLAIN) == set()  # reads no field: same audio, same output
    assert computes[reads] == 1 and computes[PLAIN] == 1  # the corpus pairs outputs with ids


# ---- corpus key ---------------------------------------------------------------------------

def test_corpus_key_follows_the_clip_keys_and_their_ids(world: World) -> None:
    world.score([PLAIN])
    # clips 0 and 1 trade their audio (reference and prediction): the same per-clip outputs,
    # each found under its content key, now belong to other clip ids
    a, b = (world.pred / f"{world.ids[0]}.wav"), (world.pred / f"{world.ids[1]}.wav")
    tmp = world.root / "swap.wav"
    shutil.move(a, tmp)
    shutil.move(b, a)
    shutil.move(tmp, b)
    audio = [world.recs[0]["audio"], world.recs[1]["audio"]]
    world.edit_manifest(lambda rs: (rs[0].update(audio=audio[1]), rs[1].update(audio=audio[0])))
    calls, computes, new, _ = world.score([PLAIN])
    assert _clips(calls, PLAIN) == set() and computes[PLAIN] == 1 and len(new) == 1


def test_corpus_key_follows_the_set_of_scored_clips(world: World) -> None:
    world.score([PLAIN])
    (world.pred / f"{world.ids[2]}.wav").unlink()  # that clip becomes invalid: fewer clips
    calls, computes, new, s = world.score([PLAIN])
    assert s.n_valid == N - 1
    assert _clips(calls, PLAIN) == set() and computes[PLAIN] == 1 and len(new) == 1


def test_adding_a_clip_computes_only_that_clip(world: World) -> None:
    world.score([PLAIN])
    extra = make_dataset(world.root / "more", n=N + 1, seconds=SECONDS)[-1]
    shutil.copy(world.root / "more" / extra["audio"], world.data / extra["audio"])
    world.edit_manifest(lambda rs: rs.append(extra))
    write_predictions(world.pred, world.data, [extra], mode="noisy", seed=5)
    calls, computes, new, _ = world.score([PLAIN])
    assert _clips(calls, PLAIN) == {extra["id"]} and computes[PLAIN] == 1 and len(new) == 2


def test_clip_order_changes_only_the_corpus_key(world: World) -> None:
    """Per-clip keys do not depend on the order; the corpus key does, by design (float sums
    are only equal to the last bit in the same order; see tas_bench.runtime.cache)."""
    world.score([PLAIN])
    world.edit_manifest(lambda rs: rs.reverse())
    calls, computes, new, _ = world.score([PLAIN])
    assert _clips(calls, PLAIN) == set() and computes[PLAIN] == 1 and len(new) == 1


# ---- the key function itself --------------------------------------------------------------

def test_key_is_canonical_and_separates_parts() -> None:
    k = OutputCache.key
    assert k({"a": 1, "b": [1, 2]}) == k({"b": [1, 2], "a": 1})  # insertion order is not content
    assert len({k({"a": 1}), k({"a": 2}), k({"a": "1"}), k({"b": 1}), k({"a": [1]}), k({})}) == 6
