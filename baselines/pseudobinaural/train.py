"""Train PseudoBinaural: ``train_pseudobinaural(kind, data, out, ...)``.

Runs on CPU and under ``accelerate launch`` on one or many GPUs unchanged (Accelerator; mixed
precision from the config, on GPU only). L1 loss on the (Re, Im) difference spectrogram;
Adam (lr 1e-3, weight decay 5e-4). Validation on the val split every ``val_every`` steps;
a checkpoint (model + optimizer + step + RNG) every ``checkpoint_every`` steps; a killed run
restarted with the same command resumes from its newest complete checkpoint. Batches depend only
on (seed, step, process), so an interrupted-and-resumed run follows an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines.pseudobinaural.config import config_from_dict, resolve_config
from baselines.pseudobinaural.data import WindowSampler, fixed_windows, load_split
from baselines.pseudobinaural.system import FORMAT, WHAT, build_model, count_parameters, model_meta
from tas_bench.data.manifest import dataset_fingerprint, load_dataset
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.runs import (
    METRICS_FILE,
    MODEL_FILE,
    MetricsLog,
    finish_run,
    latest_checkpoint,
    load_checkpoint,
    prepare_run,
    save_checkpoint,
    save_model,
    set_rng_state,
)
from tas_bench.runtime.text import build_vocab, vocab_from_meta

METRIC_FIELDS = ("step", "train_loss", "val_loss", "lr", "wall_s", "steps_per_s")
#: Config fields that may change when a run is resumed (length and bookkeeping only).
RESUMABLE_CHANGES = {"steps", "val_every", "checkpoint_every", "keep_checkpoints",
                     "mixed_precision", "torch_threads", "val_windows"}


def _normalize(old: dict[str, Any]) -> dict[str, Any]:
    """A stored config.json in the current schema (defaults filled, checked)."""
    return config_from_dict(old, where="config.json").to_dict()


def _l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred.float() - target.float()).abs().mean()


def train_pseudobinaural(kind: str, data: str | Path, out: str | Path, *,
                         config_file: str | Path | None = None,
                         overrides: dict[str, Any] | None = None, progress: bool = True,
                         command: str | None = None) -> dict[str, Any]:
    """Train (or resume) a run in ``out``; returns the run record (also written to run.json)."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    cfg = resolve_config(kind, config_file, overrides)
    out = Path(out)
    ds = load_dataset(data)
    fingerprint = dataset_fingerprint(ds.root, ds.clips)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    on_gpu = torch.cuda.is_available()
    accel = Accelerator(mixed_precision=cfg.mixed_precision if on_gpu else "no",
                        cpu=not on_gpu)
    main = accel.is_main_process
    # only the main process looks at (and later writes) the run folder: no races between ranks
    train_clips = load_split(ds, "train", cfg.sample_rate)
    val_clips = load_split(ds, "val", cfg.sample_rate)
    prepare_run(out, config=cfg.to_dict(), what=WHAT, resumable=RESUMABLE_CHANGES,
                normalize=_normalize, main=main,
                data={"path": str(ds.root), "fingerprint": fingerprint,
                      "train_clips": len(train_clips), "val_clips": len(val_clips)})
    accel.wait_for_everyone()
    vocab = build_vocab([c.prompt for c in train_clips], cfg.vocab_min_count)

    ckpt_dir = latest_checkpoint(out)
    ckpt = load_checkpoint(ckpt_dir, fmt=FORMAT, what=WHAT) if ckpt_dir is not None else None
    start_step = ckpt.step if ckpt is not None else 0
    if ckpt is not None:
        vocab = vocab_from_meta(ckpt.meta) or vocab
    torch.manual_seed(cfg.seed)
    net = build_model(cfg, vocab)
    if ckpt is not None:
        net.load_state_dict(ckpt.model_state, strict=True)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr,
                           weight_decay=cfg.weight_decay)
    if ckpt is not None:
        opt.load_state_dict(ckpt.optimizer_state)
        set_rng_state(ckpt.rng)
    accel.wait_for_everyone()
    net, opt = accel.prepare(net, opt)
    raw = accel.unwrap_model(net)
    sampler = WindowSampler(train_clips, cfg.window_samples, cfg.batch_size, cfg.seed,
                            cfg.target_rms, rank=accel.process_index)
    val = fixed_windows(val_clips, cfg.window_samples, cfg.val_windows, cfg.target_rms) \
        if val_clips else None
    log = MetricsLog(out / METRICS_FILE, METRIC_FIELDS, start_step, main)
    log_every = max(1, min(cfg.val_every, 10))

    def validate() -> float | None:
        if val is None:
            return None
        raw.eval()
        losses = []
        with torch.no_grad():
            for b in range(0, len(val[2]), 64):
                mix = torch.from_numpy(val[0][b: b + 64]).to(accel.device)
                tgt = raw.stft(torch.from_numpy(val[1][b: b + 64]).to(accel.device))
                pred, _ = raw(mix, val[2][b: b + 64])
                losses.append(float(_l1(pred, tgt)) * mix.shape[0])
        raw.train()
        return sum(losses) / len(val[2])

    bar = tqdm(total=cfg.steps, initial=start_step, disable=not (progress and main),
               desc=f"train {cfg.kind}", unit="step", dynamic_ncols=True)
    t0, last_t, last_step = time.time(), time.time(), start_step
    running: list[float] = []
    step = start_step
    net.train()
    while step < cfg.steps:
        mix_np, diff_np, prompts = sampler.batch(step)
        mix = torch.from_numpy(mix_np).to(accel.device)
        with torch.no_grad():
            target = raw.stft(torch.from_numpy(diff_np).to(accel.device))
        with accel.autocast():
            pred, _ = net(mix, prompts)
            loss = _l1(pred, target)
        if not torch.isfinite(loss):
            raise TasBenchError(f"training diverged at step {step} (loss {float(loss)})",
                                hint="lower lr or disable mixed precision")
        opt.zero_grad(set_to_none=True)
        accel.backward(loss)
        opt.step()
        step += 1
        running.append(float(loss.detach()))
        bar.update(1)
        is_val = step % cfg.val_every == 0 or step == cfg.steps
        if step % log_every == 0 or is_val:
            now = time.time()
            row: dict[str, Any] = {"step": step, "train_loss": f"{np.mean(running):.6g}",
                                   "lr": opt.param_groups[0]["lr"],
                                   "wall_s": f"{now - t0:.2f}",
                                   "steps_per_s": f"{(step - last_step) / max(now - last_t, 1e-9):.4g}"}
            if is_val and main:
                v = validate()
                row["val_loss"] = None if v is None else f"{v:.6g}"
                bar.set_postfix(loss=row["train_loss"], val=row["val_loss"])
            log.write(row)
            running, last_t, last_step = [], now, step
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            accel.wait_for_everyone()
            if main:
                save_checkpoint(out, step, raw.state_dict(), model_meta(cfg, raw),
                                opt.state_dict(), {"seed": cfg.seed, "data_fingerprint": fingerprint},
                                cfg.keep_checkpoints, fmt=FORMAT)
    bar.close()
    accel.wait_for_everyone()
    record: dict[str, Any] = {}
    if main:
        if not math.isfinite(float(np.mean(running) if running else 0.0)):
            raise TasBenchError("training ended with a non-finite loss")
        save_model(out / MODEL_FILE, raw.state_dict(), model_meta(cfg, raw), fmt=FORMAT)
        record = finish_run(out, {
            "kind": cfg.kind,
            "steps": step,
            "resumed_from": start_step,
            "model_hash": cfg.model_hash(),
            "parameters": count_parameters(raw),
            "data_fingerprint": fingerprint,
            "data_path": str(ds.root),
            "seed": cfg.seed,
            "licence": "Apache-2.0",
        }, command=command)
    return record
