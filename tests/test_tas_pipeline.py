"""TASPipeline: save/load, spatialize at any length, determinism, bad inputs, the paper preset."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from test_tas_flipper import PROMPTS, tiny_pipeline  # noqa: E402

from baselines.tas.pipeline import CONFIG_FILE, WEIGHTS_FILE, TASPipeline, TASSystem  # noqa: E402
from tas_bench.runtime.errors import TasBenchError  # noqa: E402

SR = 16000


def _mono(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pipe = tiny_pipeline(steps=2)
    return pipe.save_pretrained(tmp_path_factory.mktemp("tas") / "pipe")


def test_save_load_gives_the_same_bytes(saved: Path) -> None:
    assert (saved / CONFIG_FILE).is_file() and (saved / WEIGHTS_FILE).is_file()
    a, b = TASPipeline.from_pretrained(saved), TASPipeline.from_pretrained(saved)
    assert a.checkpoint_sha256 and a.checkpoint_sha256 == b.checkpoint_sha256
    again = a.save_pretrained(saved.parent / "again")  # same weights -> same bytes
    assert (again / WEIGHTS_FILE).read_bytes() == (saved / WEIGHTS_FILE).read_bytes()
    assert TASSystem(a).card()["revision"] == TASSystem(b).card()["revision"]
    m = _mono(9000, 0)
    ya = a.spatialize(m, PROMPTS[0], SR)
    assert ya.tobytes() == b.spatialize(m, PROMPTS[0], SR).tobytes()
    doc = json.loads((saved / CONFIG_FILE).read_text())
    assert doc["format"] == "tas-pipeline" and doc["unet_config"]["in_channels"] == 64
    assert doc["scheduler"]["beta_schedule"] == "scaled_linear"


def test_any_length_and_l_plus_r_is_m(saved: Path) -> None:
    pipe = TASPipeline.from_pretrained(saved)
    width = pipe.window_samples
    for n in (1600, width - 7, width, 2 * width + 1234):
        m = _mono(n, n)
        y = pipe.spatialize(m, PROMPTS[1], SR)
        assert y.shape == (2, n) and y.dtype == np.float32 and np.isfinite(y).all()
        np.testing.assert_allclose(y[0] + y[1], m, atol=1e-6)
        assert float(np.abs(y[0] - y[1]).max()) > 0  # some difference was generated


def test_batch_composition_does_not_change_a_clip(saved: Path) -> None:
    pipe = TASPipeline.from_pretrained(saved)
    width = pipe.window_samples
    clips = [_mono(width + 500, 1), _mono(3000, 2), _mono(2 * width, 3)]
    prompts = [PROMPTS[0], PROMPTS[1], ""]
    alone = pipe.generate([clips[1]], [prompts[1]])[0]
    batch = pipe.generate(clips, prompts)
    assert alone.tobytes() == batch[1].tobytes()
    sysm = TASSystem(pipe)
    rev = sysm.spatialize_batch(clips[::-1], prompts[::-1], SR)
    assert rev[1].tobytes() == alone.tobytes() and rev[2].tobytes() == batch[0].tobytes()
    # explicit keys (clip ids) seed the noise: another key, another sample
    k1 = pipe.generate([clips[1]], [prompts[1]], keys=["id-1"])[0]
    assert k1.tobytes() != alone.tobytes()
    assert pipe.generate([clips[1]], [prompts[1]], keys=["id-1"])[0].tobytes() == k1.tobytes()
    # the seed, steps and scale change the output and are recorded in the card
    assert pipe.generate([clips[1]], [prompts[1]], seed=5)[0].tobytes() != alone.tobytes()
    card = sysm.card()
    assert card["sampling"]["steps"] == 2 and card["sampling"]["guidance_scale"] == 2.5
    assert card["sampling"]["seed"] == 0 and card["kind"] == "tas"
    assert "relstft" in card["description"] and card["checkpoint_sha256"] == pipe.checkpoint_sha256
    # new defaults are recorded in the card and used (the micro-batch size is recorded too: the
    # bytes are fixed for a given micro-batch size, BLAS blocks other shapes differently)
    pipe.set_sampling(steps=3, guidance_scale=1.5, seed=9, micro_batch=1)
    assert (sysm.card()["sampling"]["steps"], sysm.card()["sampling"]["guidance_scale"],
            sysm.card()["sampling"]["seed"]) == (3, 1.5, 9)
    y = pipe.generate([clips[1]], [prompts[1]])[0]
    assert y.tobytes() == pipe.generate([clips[1]], [prompts[1]], steps=3, guidance_scale=1.5,
                                        seed=9)[0].tobytes()
    with pytest.raises(TasBenchError, match="guidance scale 99"):
        pipe.set_sampling(guidance_scale=99)


def test_bad_mono_inputs(saved: Path) -> None:
    pipe = TASPipeline.from_pretrained(saved)
    with pytest.raises(TasBenchError, match="NaN or Inf"):
        pipe.spatialize(np.full(4000, np.nan, np.float32), "x", SR)
    with pytest.raises(TasBenchError, match="too short: 100 samples.*at least 1600"):
        pipe.spatialize(_mono(100, 0), "x", SR)
    with pytest.raises(TasBenchError, match="empty waveform"):
        pipe.spatialize(np.zeros(0, np.float32), "x", SR)
    silent = pipe.spatialize(np.zeros(5000, np.float32), PROMPTS[0], SR)
    assert silent.shape == (2, 5000) and not silent.any()
    # another rate: resampled to 16 kHz, the output is at 16 kHz
    y = pipe.spatialize(_mono(4000, 1), PROMPTS[0], 8000)
    assert y.shape == (2, 8000)
    with pytest.raises(TasBenchError, match="sample rate"):
        pipe.spatialize(_mono(4000, 1), PROMPTS[0], 0)
    clipped = np.clip(_mono(5000, 2) * 50, -1, 1)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert pipe.spatialize(clipped, PROMPTS[0], SR).shape == (2, 5000)
    assert any("clipped" in str(x.message) for x in w)
    # prompts: empty, very long and foreign are accepted (documented behaviour)
    for p in ("", "x " * 5000, "右に犬がいる"):
        assert np.isfinite(pipe.spatialize(_mono(3000, 3), p, SR)).all()


def test_bad_sampling_arguments(saved: Path) -> None:
    pipe = TASPipeline.from_pretrained(saved)
    m = _mono(3000, 0)
    with pytest.raises(TasBenchError, match="steps 0 out of range"):
        pipe.spatialize(m, "x", SR, steps=0)
    with pytest.raises(TasBenchError, match="steps 5000 out of range"):
        TASSystem(pipe).spatialize_batch([m], ["x"], SR, steps=5000)
    with pytest.raises(TasBenchError, match="guidance scale -1 out of range"):
        pipe.spatialize(m, "x", SR, guidance_scale=-1)
    with pytest.raises(TasBenchError, match="guidance scale nan out of range"):
        pipe.generate([m], ["x"], guidance_scale=float("nan"))
    with pytest.raises(TasBenchError, match="seed"):
        pipe.spatialize(m, "x", SR, seed=1.5)  # type: ignore[arg-type]


def test_bad_checkpoints(saved: Path, tmp_path: Path) -> None:
    import shutil

    with pytest.raises(TasBenchError, match="TAS checkpoint folder not found"):
        TASPipeline.from_pretrained(tmp_path / "missing")
    # a PseudoBinaural checkpoint folder: another system kind
    pb = Path(__file__).resolve().parent.parent / "baselines" / "checkpoints" / "pseudobinaural-demo"
    with pytest.raises(TasBenchError, match="not a TAS checkpoint.*another system kind"):
        TASPipeline.from_pretrained(pb)
    # another TAS kind than the caller accepts
    with pytest.raises(TasBenchError, match="checkpoint of another kind 'tas'"):
        TASPipeline.from_pretrained(saved, kinds=("tas-noflip",))
    # config edited: another kind, another architecture
    for edit, msg in ((lambda c: c["config"].update(kind="pseudobinaural"), "another kind 'pseudobinaural'"),
                      (lambda c: c["config"].update(latent_frames=16), "model hash"),
                      (lambda c: c.update(format="something"), "not a TAS pipeline config"),
                      (lambda c: c["config"].update(steps=0), "steps 0 out of range")):
        bad = tmp_path / f"edit{len(list(tmp_path.iterdir()))}"
        shutil.copytree(saved, bad)
        doc = json.loads((bad / CONFIG_FILE).read_text())
        edit(doc)
        (bad / CONFIG_FILE).write_text(json.dumps(doc))
        with pytest.raises(TasBenchError, match=msg):
            TASPipeline.from_pretrained(bad)
    # weights of another config (a consistent config for a different network)
    other = tiny_pipeline(steps=2, latent_frames=16).save_pretrained(tmp_path / "other")
    mixed = tmp_path / "mixed"
    shutil.copytree(saved, mixed)
    shutil.copy(other / WEIGHTS_FILE, mixed / WEIGHTS_FILE)
    with pytest.raises(TasBenchError, match="written for another config"):
        TASPipeline.from_pretrained(mixed)
    # corrupted / truncated weights, modified weights against a registered sha256
    corrupt = tmp_path / "corrupt"
    shutil.copytree(saved, corrupt)
    data = (corrupt / WEIGHTS_FILE).read_bytes()
    (corrupt / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(TasBenchError, match="corrupted or truncated checkpoint"):
        TASPipeline.from_pretrained(corrupt)
    with pytest.raises(TasBenchError, match="differ from the registered"):
        TASPipeline.from_pretrained(saved, expect_sha256="0" * 64)
    (corrupt / WEIGHTS_FILE).unlink()
    with pytest.raises(TasBenchError, match="no model.safetensors"):
        TASPipeline.from_pretrained(corrupt)


def test_ablation_kinds() -> None:
    notext = tiny_pipeline("tas-notext", steps=2)
    tok_a, _ = notext.encode_text([PROMPTS[0]])
    tok_b, _ = notext.encode_text([""])
    assert torch.equal(tok_a, tok_b)  # every prompt is ignored
    full = tiny_pipeline(steps=2)
    assert not torch.equal(full.encode_text([PROMPTS[0]])[0], full.encode_text([""])[0])
    assert tiny_pipeline("tas-noflip").model.flipper is None
    assert "no text" in TASSystem(notext).card()["description"]


# ---------------------------------------------------------------------------- the paper preset


def _tiny_t5(folder: Path, d_model: int) -> Path:
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    words = ["<pad>", "</s>", "<unk>", "the", "dog", "is", "located", "left", "right", "front",
             "above", ",", ".", "2m", "away"]
    tok = tokenizers.Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                                                pad_token="<pad>", eos_token="</s>")
    cfg = transformers.T5Config(vocab_size=32, d_model=d_model, d_kv=16, d_ff=32, num_layers=1,
                                num_heads=2, decoder_start_token_id=0)
    torch.manual_seed(0)
    transformers.T5EncoderModel(cfg).save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


@pytest.mark.slow
def test_paper_preset_trains_two_steps_and_samples(tmp_path: Path) -> None:
    """The paper's U-Net (AudioLDM widths, 8 heads, cross-attention width 1024 = FLAN-T5-large)
    on the AudioLDM2 codec (random parts of its configs), FLAN-T5-shaped text encoder
    fine-tuned: two AdamW steps and a 2-step CFG sampling at a tiny length."""
    from test_tas_codec import make_audioldm2_snapshot

    from baselines.tas.config import preset_config

    snap = make_audioldm2_snapshot(tmp_path / "audioldm2")
    t5 = _tiny_t5(tmp_path / "t5", 1024)
    cfg = preset_config("paper", codec={"type": "audioldm2", "path": str(snap)},
                        text_encoder={"kind": "t5", "t5_path": str(t5), "text_dim": 1024,
                                      "t5_max_length": 16, "finetune": True},
                        latent_frames=8, steps=2, micro_batch=2)
    pipe = TASPipeline.build(cfg)
    assert pipe.unet_config()["block_out_channels"] == [128, 256, 384, 640]
    assert pipe.unet_config()["cross_attention_dim"] == 1024 and pipe.unet_config()["in_channels"] == 16
    assert pipe.window_samples == 8 * 4 * 160
    n = pipe.window_samples
    rng = np.random.default_rng(0)
    m = torch.tensor(rng.standard_normal((2, n)) * 0.1, dtype=torch.float32)
    d = torch.tensor(rng.standard_normal((2, n)) * 0.05, dtype=torch.float32)
    opt = torch.optim.AdamW([p for p in pipe.model.parameters() if p.requires_grad], lr=1e-5,
                            betas=(0.95, 0.999))
    t5_before = next(pipe.model.text_encoder.t5.parameters()).detach().clone()
    for step in range(2):
        out = pipe.training_loss(m, d, ["the dog is located left , front .", ""],
                                 generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        out["total"].backward()
        opt.step()
        assert torch.isfinite(out["total"])
    assert not torch.equal(next(pipe.model.text_encoder.t5.parameters()), t5_before)  # fine-tuned
    y = pipe.spatialize(_mono(n + 2000, 1), "the dog is located right , front .", SR)
    assert y.shape == (2, n + 2000) and np.isfinite(y).all()
    assert pipe.card()["sampling"]["steps"] == 2


def test_kind_loader_checks_the_run_record(saved: Path, tmp_path: Path) -> None:
    import shutil

    from baselines.tas.system import load_checkpoint_dir

    s = load_checkpoint_dir(saved, name="my-tas")
    assert s.name == "my-tas" and s.card()["kind"] == "tas" and len(s.card()["revision"]) == 16
    assert s.checkpoint_sha256 == TASPipeline.from_pretrained(saved).checkpoint_sha256
    run = tmp_path / "run"
    shutil.copytree(saved, run)
    (run / "run.json").write_text(json.dumps({"kind": "tas", "checkpoint_sha256": "ab" * 32}))
    with pytest.raises(TasBenchError, match="does not match run.json"):
        load_checkpoint_dir(run)
    (run / "run.json").write_text(json.dumps({"kind": "tas", "checkpoint_sha256": s.checkpoint_sha256,
                                              "model_hash": "0" * 64, "data_fingerprint": "f" * 64}))
    with pytest.raises(TasBenchError, match="model hash differs"):
        load_checkpoint_dir(run)


def test_missing_external_folders(tmp_path: Path) -> None:
    from baselines.tas.config import preset_config

    cfg = preset_config("cpu", text_encoder={"kind": "t5", "t5_path": str(tmp_path / "no-t5"),
                                             "text_dim": 16, "t5_max_length": 8})
    with pytest.raises(TasBenchError, match="no-t5.*FLAN-T5 folder not found"):
        TASPipeline.build(cfg)
    with pytest.raises(TasBenchError, match="audioldm2 codec needs a path"):
        TASPipeline.build(preset_config("paper"))
    cfg = preset_config("paper", codec={"type": "audioldm2", "path": str(tmp_path / "no-ldm")})
    with pytest.raises(TasBenchError, match="no-ldm.*AudioLDM2 folder not found"):
        TASPipeline.build(cfg)


def test_prior_skip_starts_at_the_white_prior_denoiser() -> None:
    """A prior-skip denoiser starts as eps_hat = sqrt(1 - abar_t) x_t (its U-Net output layer is
    zero), the MMSE noise prediction for a unit-variance white latent."""
    from baselines.tas.diffusion import make_train_scheduler, unet_denoiser

    pipe = tiny_pipeline(unet={"block_out_channels": [16, 16, 32, 32], "heads": 2,
                               "norm_num_groups": 8, "prior_skip": True})
    assert pipe.model.unet.tas_prior_skip and float(pipe.model.unet.conv_out.weight.detach().abs().max()) == 0
    c = pipe.codec.latent_channels
    x = torch.randn(3, 2 * c, 8, pipe.codec.latent_width)
    t = torch.tensor([0, 499, 999])
    text, mask = pipe.encode_text([PROMPTS[0], PROMPTS[1], ""])
    with torch.no_grad():
        eps = unet_denoiser(pipe.model.unet)(x, t, text, mask)
    abar = make_train_scheduler().alphas_cumprod[t]
    torch.testing.assert_close(eps, (1 - abar).sqrt().view(-1, 1, 1, 1) * x[:, :c])
    # without the flag the same U-Net is not a skip (old checkpoints load unchanged)
    plain = tiny_pipeline()
    assert not plain.model.unet.tas_prior_skip
    assert float(plain.model.unet.conv_out.weight.detach().abs().max()) > 0


def test_flipper_guidance_moves_towards_the_text_and_keeps_bytes_batch_free() -> None:
    pipe = tiny_pipeline(steps=2)
    c, w = pipe.codec.latent_channels, pipe.codec.latent_width
    x0 = torch.randn(3, c, 8, w, generator=torch.Generator().manual_seed(0))
    zm = torch.randn(3, c, 8, w, generator=torch.Generator().manual_seed(1))
    tokens, mask = pipe.encode_text([PROMPTS[0], PROMPTS[1], PROMPTS[0]])
    tokens = tokens.detach()
    guide = pipe._flipper_guide(zm, tokens, mask, 0.5)
    with torch.no_grad():
        shift = guide(x0)
        before = pipe.model.flipper(x0, zm, tokens, mask)
        after = pipe.model.flipper(x0 + shift, zm, tokens, mask)
    rms = shift.square().mean(dim=(1, 2, 3)).sqrt()
    torch.testing.assert_close(rms, torch.full((3,), 0.5))  # the step is in latent RMS units
    assert bool((after > before).all())  # up the gradient of log p(match)
    alone = pipe._flipper_guide(zm[1:2], tokens[1:2], mask[1:2], 0.5)(x0[1:2])
    assert alone.numpy().tobytes() == shift[1:2].numpy().tobytes()
    m = _mono(9000, 4)
    plain = pipe.generate([m], [PROMPTS[0]])[0]
    guided = pipe.generate([m], [PROMPTS[0]], flipper_guidance=1.0)[0]
    assert guided.tobytes() != plain.tobytes()
    np.testing.assert_allclose(guided[0] + guided[1], m, atol=1e-6)
    pipe.config.flipper_guidance = 1.0
    assert TASSystem(pipe).card()["sampling"]["flipper_guidance"] == 1.0
    assert pipe.generate([m], [PROMPTS[0]])[0].tobytes() == guided.tobytes()
    from baselines.tas.config import preset_config

    with pytest.raises(TasBenchError, match="flipper_guidance needs a flipper"):
        preset_config("cpu", kind="tas-noflip", flipper_guidance=1.0)
    with pytest.raises(TasBenchError, match="out of range"):
        preset_config("cpu", flipper_guidance=-1.0)


def test_set_sampling_spacing_and_flipper_guidance() -> None:
    pipe = tiny_pipeline(steps=2)
    assert "timestep_spacing" not in TASSystem(pipe).card()["sampling"]  # leading: as before
    m = _mono(6000, 7)
    lead = pipe.generate([m], [PROMPTS[0]])[0]
    pipe.set_sampling(timestep_spacing="trailing", flipper_guidance=0.5)
    card = TASSystem(pipe).card()["sampling"]
    assert card["timestep_spacing"] == "trailing" and card["flipper_guidance"] == 0.5
    assert pipe.generate([m], [PROMPTS[0]])[0].tobytes() != lead.tobytes()
    with pytest.raises(TasBenchError, match="timestep_spacing"):
        pipe.set_sampling(timestep_spacing="sideways")
    assert pipe.config.scheduler["timestep_spacing"] == "trailing"  # a refused change keeps the old


def test_predictions_of_other_sampling_settings_are_not_mixed(tmp_path: Path) -> None:
    """Sampling settings are outside the revision but change every output: a predictions
    folder made with other DDIM steps is refused by ``generate`` and removed by ``reproduce``'s
    staleness check, never resumed into a mix."""
    from test_systems_api import make_dataset

    from tas_bench.data.manifest import dataset_fingerprint
    from tas_bench.pipeline.generate import generate_predictions
    from tas_bench.pipeline.reproduce import _stale_predictions

    data = make_dataset(tmp_path / "data", n_train=0, n_val=0, n_test=2)
    pred = tmp_path / "pred"
    two = TASSystem(tiny_pipeline(steps=2), name="t")
    three = TASSystem(tiny_pipeline(steps=2).set_sampling(steps=3), name="t")
    assert two.card()["revision"] == three.card()["revision"]
    assert generate_predictions(two, data, pred, progress=False)["generated"] == 2
    fp = dataset_fingerprint(data)
    assert not _stale_predictions(pred, fp, two.card())
    assert _stale_predictions(pred, fp, three.card())
    with pytest.raises(TasBenchError, match="another sampling setting"):
        generate_predictions(three, data, pred, progress=False)
    assert generate_predictions(two, data, pred, progress=False)["skipped"] == 2


def test_resample_a_shipped_folder(tmp_path: Path) -> None:
    """``ship --resample``: new default sampling in tas_config.json and the card, the replaced
    settings kept with the reason; weights and revision untouched; bad values change nothing."""
    from baselines.tas.ship import main as ship_main
    from baselines.tas.ship import resample_shipped

    pipe = tiny_pipeline(steps=2)
    dest = pipe.save_pretrained(tmp_path / "shipped")
    before = TASSystem(TASPipeline.from_pretrained(dest), name="t").card()
    (dest / "card.json").write_text(json.dumps({"name": "t", "sampling": before["sampling"]}))
    weights = (dest / WEIGHTS_FILE).read_bytes()
    with pytest.raises(TasBenchError, match="guidance"):
        resample_shipped(dest, "try", guidance_scale=-1.0)
    with pytest.raises(TasBenchError, match="why"):
        resample_shipped(dest, "  ", steps=3)
    assert json.loads((dest / "card.json").read_text())["sampling"] == before["sampling"]
    assert ship_main(["--resample", str(dest), "--why", "tuned on a tuning split",
                      "--timestep-spacing", "trailing", "--guidance-scale", "3"]) == 0
    card = json.loads((dest / "card.json").read_text())
    live = TASSystem(TASPipeline.from_pretrained(dest), name="t").card()
    assert live["sampling"] == card["sampling"]
    assert card["sampling"]["timestep_spacing"] == "trailing" and card["sampling"]["guidance_scale"] == 3.0
    assert card["sampling_history"] == [{"replaced": before["sampling"], "why": "tuned on a tuning split"}]
    assert live["revision"] == before["revision"] and (dest / WEIGHTS_FILE).read_bytes() == weights
