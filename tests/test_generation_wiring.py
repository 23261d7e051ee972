"""Wiring of the ``generation`` evaluator, with stub backbones whose outputs this test controls.

Every mono signal here is a sum of pure tones (integer cycles in 2 s, so DC removal and the
32 000-sample padding change nothing). The stub Cnn14 and VGGish recognise the set of tones in
what they are given and return numbers made from it, so each metric can be worked out by hand:

* PANNs embedding: dimension 0 = (sum of the tone frequencies) / 100, the rest 0;
* PANNs logits: class 0 = (sum of frequencies) / 400, class 1 = 3 x number of tones, the
  rest 0 (all exact in float32);
* VGGish: two 128-d frames per signal, dimension 0 = w and w + 1 with w = (sum of freqs) / 100.

This checks that FD compares the predictions' PANNs embeddings with the references', FAD the
VGGish frames under the documented channel policy (mid by default), KL the two logits of the
same clip id (reference -> prediction), and IS the predictions' logits only.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from datagen import clip_record

from evaluators.base import ClipInput
from evaluators.generation.evaluator import GenerationEvaluator
from evaluators.registry import EVALUATORS
from tas_bench.data.manifest import write_manifest
from tas_bench.pipeline.scoring import ScoreOptions, score
from tas_bench.runtime.audio_io import write_wav

SR = 16000
N = 32000  # 2 s at 16 kHz: exactly the toolbox's minimum length, so no padding
AMP = 0.3

# Tone frequencies (Hz) of each clip's channels: (prediction L, R), (reference L, R)
TONES = {
    "c0": ((200, 1000), (500, 1500)),
    "c1": ((300, 1200), (700, 1600)),
    "c2": ((400, 1400), (900, 2000)),
}


def _tone_set(x: np.ndarray) -> tuple[int, ...]:
    spec = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64))) * 2.0 / len(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / SR)
    found = tuple(sorted(int(round(f)) for f in freqs[spec > 0.05 * AMP]))
    assert found, "the stub got a signal without tones"
    return found


class StubCnn14(torch.nn.Module):
    """Cnn14 stand-in: (embedding (1, 2048), logits (1, 527)) from the tones of the input."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert x.shape[0] == 1
        tones = _tone_set(x[0].numpy())
        emb = torch.zeros(1, 2048)
        emb[0, 0] = sum(tones) / 100.0
        logits = torch.zeros(1, 527)
        logits[0, 0] = sum(tones) / 400.0
        logits[0, 1] = 3.0 * len(tones)
        return emb, logits


class StubVGGish:
    """VGGish stand-in: two frames per signal (w, w + 1 in dimension 0)."""

    def embed(self, x: np.ndarray) -> np.ndarray:
        w = sum(_tone_set(x)) / 100.0
        out = np.zeros((2, 128), dtype=np.float32)
        out[0, 0], out[1, 0] = w, w + 1.0
        return out


def _stubbed(**cfg: object) -> GenerationEvaluator:
    ev = GenerationEvaluator(fd_cross_check=False, **cfg)
    ev._cnn14, ev._vggish = StubCnn14(), StubVGGish()
    return ev


def _tone(f: int) -> np.ndarray:
    return AMP * np.sin(2 * np.pi * f * np.arange(N) / SR)


def _stereo(pair: tuple[int, int]) -> np.ndarray:
    return np.stack([_tone(pair[0]), _tone(pair[1])])


def _inputs() -> list[ClipInput]:
    return [ClipInput(SimpleNamespace(id=cid), _stereo(p), _stereo(r), SR)
            for cid, (p, r) in TONES.items()]


# ---- references written out -------------------------------------------------------------


def frechet_1d(x: list[float], y: list[float]) -> float:
    """Fréchet distance of two 1-D Gaussians (sample variances, ddof 1):
    (m1 - m2)^2 + v1 + v2 - 2 sqrt(v1 v2)."""
    m1, m2 = sum(x) / len(x), sum(y) / len(y)
    v1 = sum((a - m1) ** 2 for a in x) / (len(x) - 1)
    v2 = sum((b - m2) ** 2 for b in y) / (len(y) - 1)
    return (m1 - m2) ** 2 + v1 + v2 - 2.0 * math.sqrt(v1 * v2)


def stub_logits(tones: tuple[int, ...]) -> np.ndarray:
    z = np.zeros(527)
    z[0], z[1] = sum(tones) / 400.0, 3.0 * len(tones)
    return z


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def kl_ref_to_pred(ref_tones: tuple[int, ...], pred_tones: tuple[int, ...]) -> float:
    """sum_c p_c [log p_c - log(q_c + 1e-6)], p = softmax(reference), q = softmax(prediction)."""
    p, q = softmax(stub_logits(ref_tones)), softmax(stub_logits(pred_tones))
    return float(np.sum(p * (np.log(p) - np.log(q + 1e-6))))


def inception_one_split(rows: list[tuple[int, ...]]) -> float:
    """exp(mean_i sum_c p_ic [log p_ic - log pbar_c]) over the given items."""
    p = np.stack([softmax(stub_logits(t)) for t in rows])
    pbar = p.mean(axis=0)
    return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(pbar)), axis=1))))


def channel_sets(pair: tuple[int, int], policy: str) -> list[tuple[int, ...]]:
    return {"left": [(pair[0],)], "right": [(pair[1],)], "mid": [tuple(sorted(pair))],
            "both": [(pair[0],), (pair[1],)]}[policy]


def _w(t: tuple[int, ...]) -> float:
    return sum(t) / 100.0


def expected_fd(policy: str) -> float:
    pred = [_w(t) for p, _ in TONES.values() for t in channel_sets(p, policy)]
    ref = [_w(t) for _, r in TONES.values() for t in channel_sets(r, policy)]
    return frechet_1d(pred, ref)


def expected_fad(policy: str) -> float:
    def frames(side: int) -> list[float]:
        return [v for pr in TONES.values() for t in channel_sets(pr[side], policy)
                for v in (_w(t), _w(t) + 1.0)]
    return frechet_1d(frames(0), frames(1))


# ---- the evaluator with stubs -----------------------------------------------------------


def _run(ev: GenerationEvaluator) -> tuple[dict, dict]:
    clips = _inputs()
    outs = ev.process_batch(clips)
    state = ev.init_state()
    for c, o in zip(clips, outs):
        ev.update_state(state, c.clip.id, o)
    return {c.clip.id: o for c, o in zip(clips, outs)}, ev.compute(state)


def test_hand_values_by_construction() -> None:
    # the default policies, worked out in full
    # FD, left channels: predictions 2, 3, 4 (mean 3, var 1), references 5, 7, 9 (mean 7, var 4)
    assert expected_fd("left") == pytest.approx((3 - 7) ** 2 + 1 + 4 - 2 * math.sqrt(1 * 4))
    assert expected_fd("left") == pytest.approx(17.0)
    # FAD, mid: prediction frames 12 13 15 16 18 19, reference frames 20 21 23 24 29 30
    m1, m2 = 93 / 6, 147 / 6
    v1 = sum((a - m1) ** 2 for a in (12, 13, 15, 16, 18, 19)) / 5
    v2 = sum((b - m2) ** 2 for b in (20, 21, 23, 24, 29, 30)) / 5
    assert expected_fad("mid") == pytest.approx((m1 - m2) ** 2 + v1 + v2 - 2 * math.sqrt(v1 * v2))


def test_stub_sees_what_the_policy_says() -> None:
    x = _stereo((200, 1000))
    assert _tone_set(x[0]) == (200,) and _tone_set(0.5 * (x[0] + x[1])) == (200, 1000)


@pytest.mark.parametrize("policy", ["left", "right", "mid", "both"])
def test_fd_compares_prediction_with_reference_panns_embeddings(policy: str) -> None:
    _, res = _run(_stubbed(channel_policy=policy, fad_channel_policy="mid"))
    assert res["fd"] == pytest.approx(expected_fd(policy), rel=1e-9, abs=1e-9)
    # FAD does not follow the PANNs policy
    assert res["fad"] == pytest.approx(expected_fad("mid"), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("policy", ["left", "right", "mid", "both"])
def test_fad_uses_vggish_frames_with_its_channel_policy(policy: str) -> None:
    _, res = _run(_stubbed(fad_channel_policy=policy))
    assert res["fad"] == pytest.approx(expected_fad(policy), rel=1e-9, abs=1e-9)
    assert res["fd"] == pytest.approx(expected_fd("left"), rel=1e-9, abs=1e-9)


def test_default_policies_are_left_for_panns_and_mid_for_fad() -> None:
    outs, res = _run(_stubbed())
    assert res["fd"] == pytest.approx(17.0, abs=1e-9)
    assert res["fad"] == pytest.approx(expected_fad("mid"), rel=1e-9)
    values = {expected_fad(p) for p in ("left", "right", "both")}
    assert all(abs(v - res["fad"]) > 1e-3 for v in values)  # the policies are distinguishable
    for cid, (p, r) in TONES.items():
        assert outs[cid].values["kl"] == pytest.approx(kl_ref_to_pred((r[0],), (p[0],)), rel=1e-6)


@pytest.mark.parametrize("policy", ["left", "right", "mid", "both"])
def test_kl_is_reference_to_prediction_of_the_same_clip(policy: str) -> None:
    outs, _ = _run(_stubbed(channel_policy=policy))
    for cid, (p, r) in TONES.items():
        pairs = list(zip(channel_sets(r, policy), channel_sets(p, policy)))
        want = sum(kl_ref_to_pred(rt, pt) for rt, pt in pairs) / len(pairs)
        assert outs[cid].values["kl"] == pytest.approx(want, rel=1e-6), cid
        # the other direction is a different number: the direction is checked too
        assert abs(kl_ref_to_pred(pairs[0][1], pairs[0][0]) - kl_ref_to_pred(*pairs[0])) > 1e-4


@pytest.mark.parametrize("policy", ["left", "both"])
def test_is_uses_prediction_logits_only(policy: str) -> None:
    _, res = _run(_stubbed(channel_policy=policy, is_splits=1))
    rows = [t for p, _ in TONES.values() for t in channel_sets(p, policy)]
    assert res["is"] == pytest.approx(inception_one_split(rows), rel=1e-6)
    refs = [t for _, r in TONES.values() for t in channel_sets(r, policy)]
    assert abs(inception_one_split(refs) - inception_one_split(rows)) > 1e-4
    assert abs(inception_one_split(rows + refs) - inception_one_split(rows)) > 1e-4


# ---- through the scoring runner: pairing by clip id -------------------------------------


class StubGeneration(GenerationEvaluator):
    """The generation evaluator with the stub backbones, for the runner."""

    name = "test-generation-stub"

    def __init__(self, **cfg: object) -> None:
        super().__init__(**{"fd_cross_check": False, "is_splits": 1, **cfg})
        self._cnn14, self._vggish = StubCnn14(), StubVGGish()

    def check_requirements(self, dataset: object) -> None:
        return None

    def weights_info(self) -> dict:
        return {}


if "test-generation-stub" not in EVALUATORS:  # hidden from other modules' tests (conftest)
    EVALUATORS.register("test-generation-stub", StubGeneration)


def _dataset(root: Path, order: list[str]) -> None:
    recs = []
    for cid in order:
        rel = f"audio/test/{cid}.wav"
        write_wav(root / rel, _stereo(TONES[cid][1]), SR,
                  subtype="FLOAT")
        recs.append(clip_record(cid, "test", rel, SR, N / SR, 60.0))
    write_manifest(root, recs)


def _predictions(pred: Path, source_of: dict[str, str]) -> None:
    """``pred/{cid}.wav`` holds the prediction tones of clip ``source_of[cid]``."""
    pred.mkdir(parents=True, exist_ok=True)
    for cid, src in source_of.items():
        write_wav(pred / f"{cid}.wav", _stereo(TONES[src][0]), SR, subtype="FLOAT")


def _score(data: Path, pred: Path, out: Path) -> tuple[dict[str, float], dict]:
    score(ScoreOptions(data=data, pred=pred, out=out, evaluators=["test-generation-stub"],
                       use_cache=False, progress=False))
    with open(out / "per_clip.csv", newline="") as f:
        kl = {r["id"]: float(r["kl"]) for r in csv.DictReader(f)}
    return kl, json.loads((out / "results.json").read_text())["metrics"]


def test_runner_pairs_by_clip_id(tmp_path: Path) -> None:
    ids = list(TONES)
    _dataset(tmp_path / "data", ids)
    _predictions(tmp_path / "pred", {c: c for c in ids})
    kl, metrics = _score(tmp_path / "data", tmp_path / "pred", tmp_path / "res")
    for cid, (p, r) in TONES.items():
        assert kl[cid] == pytest.approx(kl_ref_to_pred((r[0],), (p[0],)), rel=1e-6), cid
    assert metrics["fd"]["mean"] == pytest.approx(17.0, abs=1e-9)
    assert metrics["fad"]["mean"] == pytest.approx(expected_fad("mid"), rel=1e-9)
    rows = [(p[0],) for p, _ in TONES.values()]
    assert metrics["is"]["mean"] == pytest.approx(inception_one_split(rows), rel=1e-6)

    # the manifest in another order: the same value for every clip id and the same corpus values
    _dataset(tmp_path / "data2", ids[::-1])
    kl2, metrics2 = _score(tmp_path / "data2", tmp_path / "pred", tmp_path / "res2")
    assert kl2 == kl
    for m in ("fd", "fad", "is"):
        assert metrics2[m]["mean"] == pytest.approx(metrics[m]["mean"], rel=1e-12)

    # c0 and c1 exchange their predictions: their KLs follow the files, c2's does not move
    _predictions(tmp_path / "pred3", {"c0": "c1", "c1": "c0", "c2": "c2"})
    kl3, metrics3 = _score(tmp_path / "data", tmp_path / "pred3", tmp_path / "res3")
    (p0, r0), (p1, r1) = TONES["c0"], TONES["c1"]
    assert kl3["c0"] == pytest.approx(kl_ref_to_pred((r0[0],), (p1[0],)), rel=1e-6)
    assert kl3["c1"] == pytest.approx(kl_ref_to_pred((r1[0],), (p0[0],)), rel=1e-6)
    assert abs(kl3["c0"] - kl["c0"]) > 1e-4 and abs(kl3["c1"] - kl["c1"]) > 1e-4
    assert kl3["c2"] == kl["c2"]
    # the sets are unchanged, so the corpus metrics are too
    assert metrics3["fd"]["mean"] == pytest.approx(metrics["fd"]["mean"], rel=1e-9)
    assert metrics3["is"]["mean"] == pytest.approx(metrics["is"]["mean"], rel=1e-9)
