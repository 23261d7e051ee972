"""Train PseudoBinaural: ``train_pseudobinaural(kind, data, out, ...)``.

Runs on CPU and under ``accelerate launch`` on one or many GPUs unchanged (Accelerator; mixed
precision from the config, on GPU only). L1 loss on the (Re, Im) difference spectrogram;
Adam (lr 1e-3, weight decay 5e-4). Validation on the val split every ``val_every`` steps;
a checkpoint (model + optimizer + step + RNG) every ``checkpoint_every`` steps; a killed run
restarted with the same command resumes from its newest complete checkpoint. Batches depend only
on (seed, step, process), so an interrupted-and-resumed run follows an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines.pseudobinaural.checkpoint import (
    CONFIG_FILE,
    DATA_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    list_checkpoints,
    load_checkpoint,
    read_json,
    revision,
    save_checkpoint,
    save_model,
)
from baselines.pseudobinaural.config import PBConfig, config_from_dict, resolve_config
from baselines.pseudobinaural.data import WindowSampler, fixed_windows, load_split
from baselines.pseudobinaural.system import build_model, count_parameters, model_meta
from baselines.pseudobinaural.text_encoder import build_vocab
from tas_bench.errors import TasBenchError
from tas_bench.fileio import sha256_file, write_json_atomic, write_text_atomic
from tas_bench.manifest import dataset_fingerprint, load_dataset

METRIC_FIELDS = ("step", "train_loss", "val_loss", "lr", "wall_s", "steps_per_s")
#: Config fields that may change when a run is resumed (length and bookkeeping only).
RESUMABLE_CHANGES = {"steps", "val_every", "checkpoint_every", "keep_checkpoints",
                     "mixed_precision", "torch_threads", "val_windows"}


def _git_commit() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def _check_same_run(out: Path, cfg: PBConfig, fingerprint: str) -> None:
    old = config_from_dict(read_json(out / CONFIG_FILE, "config"), where=str(out / CONFIG_FILE))
    diff = sorted(k for k, v in cfg.to_dict().items()
                  if k not in RESUMABLE_CHANGES and old.to_dict()[k] != v)
    if diff:
        raise TasBenchError(f"holds a run with another config (fields {diff}); use a new --out "
                            "or the same config to resume", path=out)
    data = read_json(out / DATA_FILE, "data record")
    if data.get("fingerprint") != fingerprint:
        raise TasBenchError("holds a run trained on other data (dataset fingerprint differs)",
                            path=out)


def _read_metrics(path: Path, upto: int) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            try:
                if int(row.get("step") or -1) <= upto:
                    rows.append({k: row.get(k) or "" for k in METRIC_FIELDS})
            except ValueError:
                continue  # a line cut by a kill
    return rows


class _MetricsLog:
    def __init__(self, path: Path, start_step: int, main: bool) -> None:
        self.path, self.main = path, main
        if main:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
            w.writeheader()
            w.writerows(_read_metrics(path, start_step))
            write_text_atomic(path, buf.getvalue())

    def write(self, row: dict[str, Any]) -> None:
        if not self.main:
            return
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            csv.DictWriter(f, fieldnames=METRIC_FIELDS).writerow(
                {k: ("" if row.get(k) is None else row[k]) for k in METRIC_FIELDS})


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
    if main and (out / CONFIG_FILE).is_file():
        _check_same_run(out, cfg, fingerprint)
    elif main and out.exists() and any(out.iterdir()):
        raise TasBenchError("output folder exists and is not a PseudoBinaural run; choose a new "
                            "--out", path=out)
    accel.wait_for_everyone()

    train_clips = load_split(ds, "train", cfg.sample_rate)
    val_clips = load_split(ds, "val", cfg.sample_rate)
    vocab = build_vocab([c.prompt for c in train_clips], cfg.vocab_min_count)

    ckpts = list_checkpoints(out)
    start_step, opt_state, rng_state = 0, None, None
    if ckpts:
        model_state, meta, opt_state, rng_state, st = load_checkpoint(ckpts[-1])
        start_step = int(st["step"])
        if "vocab" in meta:
            vocab = __import__("json").loads(meta["vocab"])
    torch.manual_seed(cfg.seed)
    net = build_model(cfg, vocab)
    if ckpts:
        net.load_state_dict(model_state, strict=True)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr,
                           weight_decay=cfg.weight_decay)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    if rng_state is not None:
        torch.set_rng_state(rng_state)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / CONFIG_FILE, cfg.to_dict())
        write_json_atomic(out / DATA_FILE, {"path": str(ds.root), "fingerprint": fingerprint,
                                            "train_clips": len(train_clips),
                                            "val_clips": len(val_clips)})
    accel.wait_for_everyone()
    net, opt = accel.prepare(net, opt)
    raw = accel.unwrap_model(net)
    sampler = WindowSampler(train_clips, cfg.window_samples, cfg.batch_size, cfg.seed,
                            cfg.target_rms, rank=accel.process_index)
    val = fixed_windows(val_clips, cfg.window_samples, cfg.val_windows, cfg.target_rms) \
        if val_clips else None
    log = _MetricsLog(out / METRICS_FILE, start_step, main)
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
                                cfg.keep_checkpoints)
    bar.close()
    accel.wait_for_everyone()
    record: dict[str, Any] = {}
    if main:
        save_model(out / MODEL_FILE, raw.state_dict(), model_meta(cfg, raw))
        sha = sha256_file(out / MODEL_FILE)
        record = {
            "kind": cfg.kind,
            "steps": step,
            "resumed_from": start_step,
            "checkpoint_sha256": sha,
            "model_hash": cfg.model_hash(),
            "config_sha256": sha256_file(out / CONFIG_FILE),
            "revision": revision(sha, cfg.model_hash()),
            "parameters": count_parameters(raw),
            "data_fingerprint": fingerprint,
            "data_path": str(ds.root),
            "seed": cfg.seed,
            "command": command or " ".join(sys.argv),
            "git_commit": _git_commit(),
            "torch": torch.__version__,
            "licence": "Apache-2.0",
        }
        if not math.isfinite(float(np.mean(running) if running else 0.0)):
            raise TasBenchError("training ended with a non-finite loss")
        write_json_atomic(out / RUN_FILE, record)
    return record
