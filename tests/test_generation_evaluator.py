"""The ``generation`` evaluator end to end, with randomly initialised Cnn14 / VGGish saved to
temporary files and registered in a temporary weights store as custom weights."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from evaluators.base import ClipInput
from evaluators.generation.cnn14 import build_cnn14
from evaluators.generation.divergences import KL_EPS, inception_score, kl_softmax
from evaluators.generation.evaluator import MIN_SAMPLES, GenerationEvaluator, split_channels
from evaluators.generation.vggish import build_vggish
from tas_bench.runtime import weights as W
from tas_bench.runtime.errors import TasBenchError

SR = 16000
CNN = "rand_cnn14.safetensors"
VGG = "rand_vggish.safetensors"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("weights")
    src = tmp_path_factory.mktemp("src")
    torch.manual_seed(0)
    for name, model in ((CNN, build_cnn14(SR)), (VGG, build_vggish())):
        # float16 halves the files; the loader casts to the float32 model
        state = {k: (v.half() if v.is_floating_point() else v).contiguous()
                 for k, v in model.state_dict().items()}
        save_file(state, src / name)
        W.add_weight(name, src / name, root=root)
        (src / name).unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(W.ENV_VAR, str(root))
        yield root


@pytest.fixture(scope="module")
def ev(store: Path) -> GenerationEvaluator:
    e = GenerationEvaluator(cnn14_weights=CNN, vggish_weights=VGG, fd_cross_check=False)
    e._load_cnn14()
    e._load_vggish()
    return e


def _like(ev: GenerationEvaluator, **cfg: object) -> GenerationEvaluator:
    """Another configuration sharing the already loaded models (loading takes seconds)."""
    other = GenerationEvaluator(cnn14_weights=CNN, vggish_weights=VGG, fd_cross_check=False, **cfg)
    other._cnn14, other._vggish = ev._cnn14, ev._vggish
    return other


def _clip(cid: str, seed: int, n: int = 19200, same: bool = False) -> ClipInput:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    ref = np.stack([np.sin(2 * np.pi * 440 * (1 + seed / 10) * t) * 0.3,
                    rng.standard_normal(n) * 0.05 + 0.01])
    pred = ref.copy() if same else ref + rng.standard_normal((2, n)) * 0.05
    return ClipInput(SimpleNamespace(id=cid), pred, ref, SR)


def _frechet_exact(x: np.ndarray, y: np.ndarray) -> float:
    """||mx - my||^2 + Tr Sx + Tr Sy - 2 Tr sqrt(Sx Sy) for rows x, y (np.cov, ddof 1), with
    Tr sqrt(Sx Sy) = the sum of the singular values of Xc Yc^T / sqrt((n-1)(m-1)) (exact when
    the covariances are rank-deficient)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    sx, sy = xc / np.sqrt(len(x) - 1), yc / np.sqrt(len(y) - 1)
    cross = np.linalg.svd(sx @ sy.T, compute_uv=False).sum()
    return float(np.sum((x.mean(0) - y.mean(0)) ** 2) + np.sum(sx**2) + np.sum(sy**2) - 2 * cross)


def test_registered_lazily() -> None:
    from evaluators.registry import EVALUATORS

    assert EVALUATORS.get("generation") is GenerationEvaluator


def test_missing_weights_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(W.ENV_VAR, str(tmp_path / "empty"))
    e = GenerationEvaluator()
    reason = e.check_requirements(None)
    assert reason is not None
    assert "Cnn14_16k_mAP=0.438.pth" in reason and str(tmp_path / "empty") in reason
    assert "tas-bench weights add" in reason and "tas-bench weights download" in reason
    info = e.weights_info()
    assert info["Cnn14_16k_mAP=0.438.pth"]["status"] == "missing"
    assert info["vggish-10086976.pth"]["sha256"] is None
    with pytest.raises(TasBenchError, match="Cnn14_16k_mAP=0.438.pth"):
        e.process_batch([_clip("a", 0)])


def test_bad_config() -> None:
    with pytest.raises(TasBenchError, match="channel_policy"):
        GenerationEvaluator(channel_policy="stereo")
    with pytest.raises(TasBenchError, match="fad_channel_policy"):
        GenerationEvaluator(fad_channel_policy="first")
    with pytest.raises(TasBenchError, match="panns_rate"):
        GenerationEvaluator(panns_rate=44100)
    with pytest.raises(TasBenchError, match="invalid weight name"):
        GenerationEvaluator(cnn14_weights="../x.pth")
    with pytest.raises(TasBenchError, match="is_splits"):
        GenerationEvaluator(is_splits=0)
    with pytest.raises(TasBenchError, match="device"):
        GenerationEvaluator(device="tpu")
    if not torch.cuda.is_available():
        assert "CUDA is not available" in (GenerationEvaluator(device="cuda").check_requirements(None) or "")
    e = GenerationEvaluator(panns_rate=32000)
    assert e.sample_rate == 32000 and e.config()["cnn14_weights"] == "Cnn14_mAP=0.431.pth"
    assert GenerationEvaluator().config()["channel_policy"] == "left"


def test_weights_info_marks_custom(ev: GenerationEvaluator, store: Path) -> None:
    assert ev.check_requirements(None) is None
    info = ev.weights_info()
    assert set(info) == {CNN, VGG}
    for name, role in ((CNN, "cnn14"), (VGG, "vggish")):
        entry = info[name]
        assert entry["custom"] is True and entry["role"] == role
        assert entry["sha256"] == hashlib.sha256((store / name).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def batch(ev: GenerationEvaluator) -> tuple[list[ClipInput], list]:
    clips = [_clip("s", 1, same=True), _clip("d", 2), _clip("e", 3, n=24000)]
    return clips, ev.process_batch(clips)


def test_process_batch_outputs(batch: tuple[list[ClipInput], list]) -> None:
    same, diff, _ = batch[1]
    a = same.arrays
    assert a["panns_emb_pred"].shape == (1, 2048) and a["panns_logits_pred"].shape == (1, 527)
    assert a["panns_emb_ref"].dtype == np.float32
    # 19200 samples: 1 + (19200 - 400) // 160 = 118 frames -> one 0.96 s VGGish frame
    assert a["vggish_pred"].shape == (1, 128) and a["vggish_ref"].shape == (1, 128)
    # identical audio: KL is exactly the epsilon effect sum p [log p - log(p + 1e-6)]
    p = torch.softmax(torch.from_numpy(a["panns_logits_ref"].astype(np.float64)), 1).numpy()
    assert same.values["kl"] == pytest.approx(float(-np.sum(p * np.log1p(KL_EPS / p))), rel=1e-9)
    assert -527 * KL_EPS <= same.values["kl"] <= 0
    assert same.values["kl_sigmoid"] <= 0
    assert diff.values["kl"] > same.values["kl"] and np.isfinite(diff.values["kl_sigmoid"])


def test_outputs_independent_of_batch_composition(ev: GenerationEvaluator,
                                                  batch: tuple[list[ClipInput], list]) -> None:
    clips, outs = batch
    alone = ev.process_batch([clips[2]])[0]
    for k in outs[2].arrays:
        assert np.array_equal(outs[2].arrays[k], alone.arrays[k]), k
    assert outs[2].values == alone.values


def test_short_clip_is_dc_removed_and_padded(ev: GenerationEvaluator) -> None:
    x = np.random.default_rng(5).standard_normal(12000) * 0.1 + 0.2
    emb, logits = ev.panns_outputs([x])
    y = np.pad((x.astype(np.float32) - x.astype(np.float32).mean()), (0, MIN_SAMPLES - 12000))
    with torch.no_grad():
        e2, l2 = ev._cnn14(torch.from_numpy(y)[None])
    np.testing.assert_array_equal(emb[0], e2[0].numpy())
    np.testing.assert_array_equal(logits[0], l2[0].numpy())
    # VGGish sees the raw signal (no DC removal, no padding): 12000 samples give no frame
    assert ev.vggish_outputs([x]).shape == (0, 128)


def test_channel_policies(ev: GenerationEvaluator) -> None:
    clip = _clip("c", 6)
    x, r = clip.pred, clip.ref
    assert [s.tolist() for s in split_channels(x, "left")] == [x[0].tolist()]
    assert [s.tolist() for s in split_channels(x, "right")] == [x[1].tolist()]
    np.testing.assert_array_equal(split_channels(x, "mid")[0], 0.5 * (x[0] + x[1]))
    with pytest.raises(ValueError):
        split_channels(x, "stereo")
    out = _like(ev, channel_policy="both", fad_channel_policy="both").process_batch([clip])[0]
    both = out.arrays
    assert both["panns_emb_pred"].shape == (2, 2048) and both["vggish_ref"].shape == (2, 128)
    emb, logits = ev.panns_outputs([x[0], x[1], 0.5 * (x[0] + x[1])])
    np.testing.assert_array_equal(both["panns_emb_pred"], emb[:2])
    np.testing.assert_array_equal(both["panns_logits_pred"], logits[:2])
    assert not np.array_equal(emb[0], emb[1]) and not np.array_equal(emb[2], emb[0])
    np.testing.assert_array_equal(both["vggish_pred"], ev.vggish_outputs([x[0], x[1]]))
    # KL pairs left with left and right with right, averaged over the two
    kl_l = kl_softmax(both["panns_logits_ref"][:1], both["panns_logits_pred"][:1])[0]
    kl_r = kl_softmax(both["panns_logits_ref"][1:], both["panns_logits_pred"][1:])[0]
    assert out.values["kl"] == pytest.approx(0.5 * (kl_l + kl_r), rel=1e-12)
    # defaults: PANNs on the left channel, FAD on the channel mean (as audioldm_eval)
    mid = _like(ev, channel_policy="mid", fad_channel_policy="left")
    np.testing.assert_array_equal(mid.panns_outputs(split_channels(r, "mid"))[0],
                                  ev.panns_outputs([0.5 * (r[0] + r[1])])[0])
    assert ev.channel_policy == "left" and ev.fad_channel_policy == "mid"


def test_rejects_bad_audio(ev: GenerationEvaluator) -> None:
    c = _clip("m", 7)
    with pytest.raises(TasBenchError, match=r"\(2, T\)"):
        ev.process_batch([ClipInput(c.clip, c.pred[:1], c.ref, SR)])
    with pytest.raises(TasBenchError, match="32000"):
        ev.process_batch([ClipInput(c.clip, c.pred, c.ref, 32000)])


def test_state_merge_and_compute(ev: GenerationEvaluator,
                                  batch: tuple[list[ClipInput], list]) -> None:
    clips, outs = batch
    ids = [c.clip.id for c in clips]
    one = ev.init_state()
    for cid, out in reversed(list(zip(ids, outs))):
        ev.update_state(one, cid, out)
    a, b = ev.init_state(), ev.init_state()
    ev.update_state(a, ids[0], outs[0])
    for cid, out in list(zip(ids, outs))[1:]:
        ev.update_state(b, cid, out)
    merged = ev.merge_states(b, a)
    for key in ("panns_pred", "panns_ref", "vggish_pred", "vggish_ref"):
        assert merged[key].n == one[key].n
        np.testing.assert_allclose(merged[key].total, one[key].total, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(merged[key].outer, one[key].outer, rtol=1e-12, atol=1e-12)
    assert one["panns_pred"].n == 3 and one["vggish_pred"].n == 1 + 1 + 1
    with pytest.raises(ValueError, match="twice"):
        ev.update_state(a, ids[0], outs[0])
    with pytest.raises(ValueError, match="share"):
        ev.merge_states(a, a)
    res = ev.compute(merged)
    assert set(res) == {"fd", "fad", "is", "is_std", "warnings"}
    assert np.isfinite(res["fd"]) and res["fd"] >= -1e-6 and np.isfinite(res["fad"])
    # FD: predictions' vs references' PANNs embeddings; FAD: the VGGish frames of each side
    emb = {k: np.concatenate([o.arrays[k] for o in outs]).astype(np.float64)
           for k in ("panns_emb_pred", "panns_emb_ref", "vggish_pred", "vggish_ref")}
    assert res["fd"] == pytest.approx(_frechet_exact(emb["panns_emb_pred"], emb["panns_emb_ref"]),
                                      rel=1e-6, abs=1e-6)
    assert res["fad"] == pytest.approx(_frechet_exact(emb["vggish_pred"], emb["vggish_ref"]),
                                       rel=1e-6, abs=1e-6)
    assert res["is"] >= 1.0 - 1e-12
    assert any("rank-deficient" in w for w in res["warnings"])
    assert any("is: 3 generated items" in w for w in res["warnings"])
    # IS does not depend on insertion order: ids are sorted before the seeded shuffle
    logits = np.concatenate([outs[i].arrays["panns_logits_pred"] for i in np.argsort(ids)])
    assert res["is"] == inception_score(logits, 10, 2020)[0]
    assert sorted(one["logits_pred"]) == sorted(merged["logits_pred"])
    for cid in ids:
        assert np.array_equal(one["logits_pred"][cid], merged["logits_pred"][cid])
    # one clip: FD undefined (NaN with a warning), IS of one row is 1
    single = ev.init_state()
    ev.update_state(single, ids[0], outs[0])
    d = ev.compute_details(single)
    assert np.isnan(d["fd"]) and np.isnan(d["fad"]) and d["is"] == pytest.approx(1.0)
    assert any("at least 2" in w for w in d["warnings"])
