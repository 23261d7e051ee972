"""Train TAS: ``train_tas(kind, data, out, ...)`` (``tas-bench train tas|tas-notext|tas-noflip``).

Runs on CPU and under ``accelerate launch`` on one or many GPUs unchanged (Accelerator,
``find_unused_parameters=True`` because a dropped condition or the no-flipper ablation leaves
parameters without gradients; bf16 autocast on GPU by default, never on CPU). AdamW with
β = (0.95, 0.999) (REFERENCE §1). Each step draws a batch of windows
(:class:`~baselines.pseudobinaural.data.WindowSampler`: mono normalised to ``target_rms``, the
same gain on ``d``) and a torch generator for timesteps, noise and condition dropout, both from
``(seed, step, process)`` only, so a run killed at any point and restarted with the same command
resumes from its newest complete checkpoint (model + optimizer + step + RNG) and ends with the
same weights as an uninterrupted run.

Validation every ``val_every`` steps (main process): the diffusion loss on fixed val windows
with fixed noise (``val_loss``, the plain epsilon MSE whatever ``snr_gamma``), and ``val_clips`` val clips sampled whole with
``val_sample_steps`` DDIM steps, scored by two small cue checks computed here (baselines do not
import the evaluators, DESIGN.md): ``val_ild_sign`` = share of clips whose output ILD
(10·log10 ΣL²/ΣR²) has the sign of the reference's, ``val_itd_err_us`` = mean |ITD_out −
ITD_ref| (µs) with ITD the lag of the L/R cross-correlation peak within ±1 ms. The full
signal/cue evaluators run on the shipped systems through ``tas-bench score``.

Config (``config.json`` of the run): the training fields below at the top level and the model
config (:class:`~baselines.tas.config.TASConfig`) under ``"model"``. ``--set FIELD=VALUE`` sets
a training field, ``--set model.FIELD=VALUE`` (dots reach into objects, e.g.
``model.codec.path``) a model field; ``--steps`` is the number of training steps (the sampling
steps are ``model.steps``), ``--text-encoder`` / ``--t5-path`` set ``model.text_encoder``.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines.pseudobinaural.config import load_config_file
from baselines.pseudobinaural.data import WindowSampler, fixed_windows, load_split
from baselines.tas.config import FORMAT, KINDS, config_from_dict, preset_config
from baselines.tas.pipeline import TASPipeline
from tas_bench.data.manifest import dataset_fingerprint, load_dataset
from tas_bench.runtime import runs
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.runs import (
    METRICS_FILE,
    MetricsLog,
    finish_run,
    latest_checkpoint,
    load_checkpoint,
    prepare_run,
    set_rng_state,
)
from tas_bench.runtime.text import build_vocab, vocab_from_meta

WHAT = "TAS"
METRIC_FIELDS = ("step", "train_loss", "diffusion_loss", "flipper_loss", "flipper_acc", "cue_db", "val_loss",
                 "val_ild_sign", "val_itd_err_us", "lr", "wall_s", "steps_per_s")
#: Columns added after some shipped logs were written (the cue loss): a log without them is
#: still a copy of ``metrics.csv``, from before they existed.
LATER_METRIC_FIELDS = ("cue_db",)
#: Fields that may change when a run is resumed (length and bookkeeping only).
RESUMABLE_CHANGES = {"steps", "val_every", "checkpoint_every", "keep_checkpoints",
                     "mixed_precision", "torch_threads", "val_windows", "val_clips",
                     "val_sample_steps"}
#: Learning-rate schedules after the linear warm-up.
LR_SCHEDULES = ("constant", "cosine")
#: Largest lag searched for the validation ITD (seconds).
MAX_ITD_S = 1e-3


@dataclass
class TrainConfig:
    """Training settings of a TAS run (the model config is separate: ``TASConfig``)."""

    seed: int = 0
    steps: int = 2000
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 1e-2
    betas: tuple[float, float] | list[float] = (0.95, 0.999)
    grad_clip: float = 1.0
    warmup_steps: int = 50
    val_every: int = 250
    val_windows: int = 32
    val_clips: int = 4
    val_sample_steps: int = 10
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    vocab_min_count: int = 1
    #: min-SNR-gamma loss weighting (:mod:`baselines.tas.losses`); 0 = the plain epsilon MSE
    snr_gamma: float = 0.0
    #: mirror augmentation (:class:`baselines.pseudobinaural.data.WindowSampler`): each window
    #: replaced with p = 0.5 by the left/right mirrored scene (``-d``, "left" <-> "right" in the
    #: prompt); False in configs written before it existed
    mirror_augment: bool = False
    #: learning rate after the warm-up: "constant", or "cosine" (half a cosine from ``lr`` down
    #: to 0 at ``steps``; a cosine run's ``steps`` cannot change on resume)
    lr_schedule: str = "constant"
    #: weight of the interaural-cue loss (:mod:`baselines.tas.losses`: band-ILD error in dB of
    #: the clean-latent estimate); 0 = off, the paper's loss (relstft codec only)
    cue_weight: float = 0.0
    mixed_precision: str = "bf16"  # GPU only; CPU always runs in float32
    torch_threads: int = 0  # 0 = leave torch's default


TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    "paper": {"batch_size": 32, "steps": 500000, "lr": 3e-5, "warmup_steps": 1000,
              "val_every": 5000, "checkpoint_every": 5000, "val_sample_steps": 50},
}


def _check_train(d: dict[str, Any], where: str) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise TasBenchError(f"unknown TAS training field(s) {unknown}; training fields: "
                            f"{sorted(known)}; model fields go under model.FIELD", path=where)
    cfg = TrainConfig(**d)
    for name in ("steps", "batch_size", "val_every", "checkpoint_every", "keep_checkpoints",
                 "val_sample_steps", "vocab_min_count"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise TasBenchError(f"{v!r} must be an integer >= 1", path=where, field=name)
    for name in ("seed", "warmup_steps", "val_windows", "val_clips", "torch_threads"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name != "seed" else -2**63):
            raise TasBenchError(f"{v!r} must be a non-negative integer", path=where, field=name)
    for name, lo, hi in (("lr", 1e-12, 10.0), ("weight_decay", 0.0, 10.0), ("grad_clip", 0.0, 1e9),
                         ("snr_gamma", 0.0, 1e6), ("cue_weight", 0.0, 1e3)):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                or not lo <= v <= hi:
            raise TasBenchError(f"{v!r} out of range [{lo:g}, {hi:g}]", path=where, field=name)
    b = cfg.betas
    if not isinstance(b, list | tuple) or len(b) != 2 or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x < 1 for x in b):
        raise TasBenchError(f"betas {b!r} must be two numbers in [0, 1)", path=where, field="betas")
    cfg.betas = [float(b[0]), float(b[1])]
    if not isinstance(cfg.mirror_augment, bool):
        raise TasBenchError(f"{cfg.mirror_augment!r} must be true or false", path=where,
                            field="mirror_augment")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise TasBenchError(f"{cfg.lr_schedule!r} is not one of {'|'.join(LR_SCHEDULES)}",
                            path=where, field="lr_schedule")
    if cfg.mixed_precision not in ("no", "fp16", "bf16"):
        raise TasBenchError(f"{cfg.mixed_precision!r} is not no|fp16|bf16", path=where,
                            field="mixed_precision")
    return cfg


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base lr at 0-based ``step`` of ``total``: linear warm-up over
    ``warmup`` steps ((step + 1) / warmup), then 1 (``constant``) or
    0.5 · (1 + cos(π · (step − warmup) / (total − warmup))) (``cosine``, 0 at ``total``)."""
    warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
    if schedule == "constant" or step < warmup:
        return warm
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * frac))


def _set_path(d: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    d[keys[-1]] = value


def resolve_config(kind: str, config_file: str | Path | None = None,
                   overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run config ``{kind, preset, <training fields>, model: {...}}``: the preset, then the
    file (same layout), then the overrides; every field checked."""
    if kind not in KINDS:
        raise TasBenchError(f"unknown TAS kind {kind!r}; known: {list(KINDS)}", field="kind")
    user = load_config_file(config_file) if config_file else {}
    where = str(config_file or "config")
    over = {k: v for k, v in (overrides or {}).items() if v is not None}
    preset = over.pop("preset", user.get("preset", "cpu"))
    if preset not in TRAIN_PRESETS:
        raise TasBenchError(f"unknown preset {preset!r}; known: {sorted(TRAIN_PRESETS)}", field="preset")
    model_over: dict[str, Any] = copy.deepcopy(user.get("model") or {})
    if not isinstance(model_over, dict):
        raise TasBenchError("'model' must be an object of TAS model fields", path=where)
    train: dict[str, Any] = {**TRAIN_PRESETS[preset],
                             **{k: v for k, v in user.items() if k not in ("kind", "preset", "model")}}
    for key in ("text_encoder", "t5_path"):
        if key in over:
            model_over.setdefault("text_encoder", {})
            model_over["text_encoder"] = {**model_over["text_encoder"],
                                          ("kind" if key == "text_encoder" else key): over.pop(key)}
    for key, value in over.items():
        if key.startswith("model."):
            _set_path(model_over, key[len("model."):], value)
        else:
            train[key] = value
    tc = _check_train(train, where)
    te = model_over.get("text_encoder")
    if isinstance(te, dict) and te.get("kind") == "t5" and "text_dim" not in te:
        te["text_dim"] = 1024  # FLAN-T5-large width (the pooled vector; tokens keep T5's width)
    base = preset_config(preset, kind=kind).to_dict()
    for key, value in model_over.items():
        if key in ("kind", "preset"):
            continue
        old = base.get(key)
        switch = isinstance(value, dict) and isinstance(old, dict) and any(
            t in value and value[t] != old.get(t) for t in ("type", "kind"))
        # nested objects merge into the preset's (a codec type or text encoder kind replaces it)
        base[key] = {**old, **value} if isinstance(value, dict) and isinstance(old, dict) \
            and not switch else value
    model = config_from_dict(base, where=f"{where} model")
    if tc.cue_weight > 0 and model.codec["type"] != "relstft":
        raise TasBenchError(f"cue_weight needs the relstft codec: the {model.codec['type']} codec "
                            "keeps magnitudes only (no sign of d)", path=where, field="cue_weight")
    return {"kind": kind, "preset": preset, **asdict(tc), "model": model.to_dict()}


def _normalize(old: dict[str, Any]) -> dict[str, Any]:
    train = {k: v for k, v in old.items() if k not in ("kind", "preset", "model")}
    model = config_from_dict(old.get("model") or {}, where="config.json model")
    return {"kind": old.get("kind"), "preset": old.get("preset"),
            **asdict(_check_train(train, "config.json")), "model": model.to_dict()}


def ild_db(x: np.ndarray) -> float:
    """Broadband ILD of a ``(2, n)`` clip in dB: 10·log10(ΣL² / ΣR²) (tiny floor)."""
    e = np.sum(np.square(x.astype(np.float64)), axis=1) + 1e-12
    return float(10.0 * np.log10(e[0] / e[1]))


def itd_s(x: np.ndarray, sr: int, max_lag_s: float = MAX_ITD_S) -> float:
    """Broadband ITD of a ``(2, n)`` clip in seconds: the lag of the L/R cross-correlation
    peak within ±``max_lag_s`` (positive when the right channel lags, i.e. the source is on
    the left)."""
    left, right = x[0].astype(np.float64), x[1].astype(np.float64)
    n = left.shape[0]
    size = 1 << int(np.ceil(np.log2(2 * n)))
    cc = np.fft.irfft(np.fft.rfft(right, size) * np.conj(np.fft.rfft(left, size)), size)
    k = max(1, int(round(max_lag_s * sr)))
    lags = np.concatenate([np.arange(0, k + 1), np.arange(-k, 0)])
    vals = np.concatenate([cc[: k + 1], cc[size - k:]])
    return float(lags[int(np.argmax(vals))] / sr)


def cue_agreement(pred: list[np.ndarray], ref: list[np.ndarray], sr: int) -> tuple[float, float]:
    """(share of clips with the reference's ILD sign, mean |ITD error| in µs)."""
    signs = [np.sign(ild_db(p)) == np.sign(ild_db(r)) for p, r in zip(pred, ref)]
    errs = [abs(itd_s(p, sr) - itd_s(r, sr)) * 1e6 for p, r in zip(pred, ref)]
    return float(np.mean(signs)), float(np.mean(errs))


def _step_generator(seed: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    s = int(np.random.default_rng([seed & 0xFFFFFFFF, 7919, step, rank]).integers(2**62))
    return torch.Generator(device=device).manual_seed(s)


class _LossModule(torch.nn.Module):
    """The trainable model with the pipeline's loss as its forward (so DDP sees the forward)."""

    def __init__(self, pipe: TASPipeline, snr_gamma: float = 0.0, cue_weight: float = 0.0) -> None:
        super().__init__()
        self.model = pipe.model
        self._pipe = [pipe]  # not a submodule
        self.snr_gamma = float(snr_gamma)
        self.cue_weight = float(cue_weight)

    def forward(self, mono: torch.Tensor, diff: torch.Tensor, prompts: list[str],
                generator: torch.Generator) -> dict[str, torch.Tensor]:
        return self._pipe[0].training_loss(mono, diff, prompts, generator=generator,
                                           snr_gamma=self.snr_gamma, cue_weight=self.cue_weight)


def train_tas(kind: str, data: str | Path, out: str | Path, *,
              config_file: str | Path | None = None, overrides: dict[str, Any] | None = None,
              progress: bool = True, command: str | None = None) -> dict[str, Any]:
    """Train (or resume) a TAS run in ``out``; returns the run record (also in run.json)."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from tqdm.auto import tqdm

    run_cfg = resolve_config(kind, config_file, overrides)
    tc = _check_train({k: v for k, v in run_cfg.items() if k not in ("kind", "preset", "model")},
                      "config")
    mcfg = config_from_dict(run_cfg["model"], where="config model")
    out = Path(out)
    ds = load_dataset(data)
    fingerprint = dataset_fingerprint(ds.root, ds.clips)
    if tc.torch_threads > 0:
        torch.set_num_threads(tc.torch_threads)
    on_gpu = torch.cuda.is_available()
    accel = Accelerator(mixed_precision=tc.mixed_precision if on_gpu else "no", cpu=not on_gpu,
                        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    main = accel.is_main_process
    sr = 16000
    train_clips = load_split(ds, "train", sr)
    val_clips = load_split(ds, "val", sr)
    # a cosine schedule is laid out over ``steps``: a longer resumed run would jump in lr
    resumable = RESUMABLE_CHANGES - ({"steps"} if tc.lr_schedule == "cosine" else set())
    prepare_run(out, config=run_cfg, what=WHAT, resumable=resumable,
                normalize=_normalize, main=main,
                data={"path": str(ds.root), "fingerprint": fingerprint,
                      "train_clips": len(train_clips), "val_clips": len(val_clips)})
    accel.wait_for_everyone()
    vocab = build_vocab([c.prompt for c in train_clips], tc.vocab_min_count)
    ckpt_dir = latest_checkpoint(out)
    ckpt = load_checkpoint(ckpt_dir, fmt=FORMAT, what=WHAT) if ckpt_dir is not None else None
    start_step = ckpt.step if ckpt is not None else 0
    if ckpt is not None:
        vocab = vocab_from_meta(ckpt.meta) or vocab
    torch.manual_seed(tc.seed)
    pipe = TASPipeline.build(mcfg, vocab=vocab)
    if pipe.sample_rate != sr:
        raise TasBenchError(f"the codec runs at {pipe.sample_rate} Hz; TAS trains at {sr} Hz",
                            field="model.codec")
    if ckpt is not None:
        pipe.model.load_state_dict(ckpt.model_state, strict=True)
    pipe.to(accel.device)
    params = [p for p in pipe.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tc.lr, betas=tuple(tc.betas), weight_decay=tc.weight_decay)
    if ckpt is not None:
        opt.load_state_dict(ckpt.optimizer_state)
        set_rng_state(ckpt.rng)
    accel.wait_for_everyone()
    net, opt = accel.prepare(_LossModule(pipe, tc.snr_gamma, tc.cue_weight), opt)
    sampler = WindowSampler(train_clips, pipe.window_samples, tc.batch_size, tc.seed,
                            mcfg.target_rms, rank=accel.process_index, mirror=tc.mirror_augment)
    val = fixed_windows(val_clips, pipe.window_samples, tc.val_windows, mcfg.target_rms) \
        if val_clips and tc.val_windows > 0 else None
    log = MetricsLog(out / METRICS_FILE, METRIC_FIELDS, start_step, main)
    log_every = max(1, min(tc.val_every, 10))

    def lr_at(step: int) -> float:
        return tc.lr * lr_factor(step, tc.steps, tc.warmup_steps, tc.lr_schedule)

    def validate() -> dict[str, Any]:
        row: dict[str, Any] = {}
        pipe.model.eval()
        with torch.no_grad():
            if val is not None:
                losses = []
                for b in range(0, len(val[2]), 16):
                    g = _step_generator(tc.seed, 2**40, b, accel.device)
                    mono = torch.from_numpy(val[0][b: b + 16])
                    lo = pipe.training_loss(mono, torch.from_numpy(val[1][b: b + 16]),
                                            val[2][b: b + 16], generator=g)
                    losses.append(float(lo["diffusion_mse"]) * mono.shape[0])
                row["val_loss"] = f"{sum(losses) / len(val[2]):.6g}"
            clips = [c for c in val_clips[: tc.val_clips] if hasattr(c, "mix")]
            if clips:
                monos = [np.asarray(c.mix, dtype=np.float32) for c in clips]
                refs = [np.stack([(c.mix + c.diff) / 2, (c.mix - c.diff) / 2]) for c in clips]
                preds = pipe.generate(monos, [c.prompt for c in clips], keys=[c.id for c in clips],
                                      steps=tc.val_sample_steps)
                ild, itd = cue_agreement(preds, refs, sr)
                row["val_ild_sign"], row["val_itd_err_us"] = f"{ild:.4g}", f"{itd:.4g}"
        pipe.model.train()
        return row

    bar = tqdm(total=tc.steps, initial=start_step, disable=not (progress and main),
               desc=f"train {kind}", unit="step", dynamic_ncols=True)
    t0, last_t, last_step = time.time(), time.time(), start_step
    running: dict[str, list[float]] = {"total": [], "diffusion": [], "flipper": [], "flipper_accuracy": [],
                                       "cue_db": []}
    step = start_step
    net.train()
    while step < tc.steps:
        mono_np, diff_np, prompts = sampler.batch(step)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        gen = _step_generator(tc.seed, step, accel.process_index, accel.device)
        with accel.autocast():
            losses = net(torch.from_numpy(mono_np), torch.from_numpy(diff_np), prompts, gen)
        loss = losses["total"]
        if not torch.isfinite(loss):
            raise TasBenchError(f"training diverged at step {step} (loss {float(loss)})",
                                hint="lower lr or disable mixed precision")
        opt.zero_grad(set_to_none=True)
        accel.backward(loss)
        if tc.grad_clip > 0:
            accel.clip_grad_norm_(params, tc.grad_clip)
        opt.step()
        step += 1
        for k in running:
            running[k].append(float(losses[k].detach()))
        bar.update(1)
        is_val = step % tc.val_every == 0 or step == tc.steps
        if step % log_every == 0 or is_val:
            now = time.time()
            row: dict[str, Any] = {
                "step": step, "train_loss": f"{np.mean(running['total']):.6g}",
                "diffusion_loss": f"{np.mean(running['diffusion']):.6g}",
                "flipper_loss": f"{np.mean(running['flipper']):.6g}" if pipe.model.flipper is not None else None,
                "flipper_acc": f"{np.mean(running['flipper_accuracy']):.4g}" if pipe.model.flipper is not None else None,
                "cue_db": f"{np.mean(running['cue_db']):.4g}" if tc.cue_weight > 0 else None,
                "lr": f"{opt.param_groups[0]['lr']:.6g}", "wall_s": f"{now - t0:.2f}",
                "steps_per_s": f"{(step - last_step) / max(now - last_t, 1e-9):.4g}"}
            if is_val and main:
                row.update(validate())
                bar.set_postfix(loss=row["train_loss"], val=row.get("val_loss"))
            log.write(row)
            running = {k: [] for k in running}
            last_t, last_step = time.time(), step
        if step % tc.checkpoint_every == 0 or step == tc.steps:
            accel.wait_for_everyone()
            if main:
                runs.save_checkpoint(out, step, pipe.state_dict(), pipe._meta(), opt.state_dict(),
                                {"seed": tc.seed, "data_fingerprint": fingerprint},
                                tc.keep_checkpoints, fmt=FORMAT)
    bar.close()
    accel.wait_for_everyone()
    record: dict[str, Any] = {}
    if main:
        pipe.save_pretrained(out)
        record = finish_run(out, {
            "kind": kind,
            "steps": step,
            "resumed_from": start_step,
            "model_hash": mcfg.model_hash(),
            "parameters": pipe.parameter_counts()["total"],
            "data_fingerprint": fingerprint,
            "data_path": str(ds.root),
            "seed": tc.seed,
            "licence": "Apache-2.0",
        }, command=command)
    return record
