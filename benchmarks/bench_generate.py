"""Generation and training throughput of the reference systems.

Usage: ``python benchmarks/bench_generate.py [--clips N] [--duration S] [--train-steps K]``.
Simulates a small demo-style dataset into a temporary folder, then prints for each built-in
system the seconds of binaural audio generated per wall-clock second (wav writing included),
and for PseudoBinaural (``cpu`` preset) the training steps per second (data sampling,
forward, backward and optimiser step; checkpoint writing excluded).

TAS (``tas-demo``, its shipped sampling settings): clips per second of the project's batched
CFG sampler (all windows of all clips in fixed micro-batches, each denoiser call one forward of
``[uncond, cond]``) against a straightforward per-clip loop run in the same process (each
window of each clip on its own: two forwards per DDIM step at batch 1), as a ratio, with the
largest difference between the two outputs; and TAS training steps per second with the demo
config (``baselines/tas/demo_config.json``).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
import torch

from baselines.pseudobinaural.train import train_pseudobinaural
from tas_bench.data.simulate import simulate_dataset
from tas_bench.pipeline.generate import generate_predictions

SYSTEMS = ("mono-mono", "pseudobinaural-demo")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=8, help="test clips to generate")
    ap.add_argument("--duration", type=float, default=10.0, help="clip length in seconds")
    ap.add_argument("--train-steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=8, help="clips per generation batch")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    with tempfile.TemporaryDirectory(prefix="tas-bench-bench-") as tmp:
        data = Path(tmp) / "data"
        simulate_dataset(data, preset="demo", seed=1, n_train=8, n_val=2, n_test=args.clips,
                         duration=args.duration, progress=False)
        for name in SYSTEMS:
            s = generate_predictions(name, data, Path(tmp) / f"pred-{name}", split="test",
                                     batch_size=args.batch_size, progress=False)
            print(f"{name}: {s['audio_seconds']:.1f} s of audio in {s['wall_seconds']:.2f} s = "
                  f"{s['realtime_factor']:.1f} audio s / wall s")
        run = Path(tmp) / "run"
        steps = max(20, args.train_steps)
        train_pseudobinaural("pseudobinaural", data, run, progress=False,
                             overrides={"steps": steps, "val_every": steps,
                                        "checkpoint_every": steps})
        rows = list(csv.DictReader(open(run / "metrics.csv", encoding="utf-8")))
        # the first logged interval includes warm-up; time the rest
        t0, t1 = float(rows[0]["wall_s"]), float(rows[-1]["wall_s"])
        n = int(rows[-1]["step"]) - int(rows[0]["step"])
        print(f"pseudobinaural training (cpu preset, batch 16): {n / max(t1 - t0, 1e-9):.2f} steps/s")
        bench_tas(data, Path(tmp), steps)
    return 0


def per_clip_loop(pipe, mono: np.ndarray, prompt: str, key: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """One clip the plain way: each window alone, two denoiser forwards (uncond, cond) at
    batch 1 per DDIM step; same noise, schedule and guidance as ``TASPipeline.generate``."""
    from baselines.base import compose_binaural
    from baselines.tas.diffusion import cfg_combine, make_sampler, unet_denoiser, window_noise
    from baselines.tas.windowing import merge_windows, plan_windows

    cfg = pipe.config
    den = unet_denoiser(pipe.model.unet)
    wins, windows, starts = plan_windows([mono], pipe.window_samples, pipe.overlap_samples,
                                         cfg.target_rms)
    tok, mask = pipe.encode_text([prompt])
    mono_t = torch.from_numpy(windows)
    zm = pipe.codec.encode_mono(mono_t)
    zs = []
    for w, win in enumerate(wins):
        sched = make_sampler(cfg.scheduler)
        sched.set_timesteps(cfg.steps)
        x = window_noise(tuple(zm.shape[1:]), cfg.seed, key, win.index)[None] * sched.init_noise_sigma
        m = zm[w: w + 1]
        for t in sched.timesteps:
            tt = torch.full((1,), int(t), dtype=torch.long)
            eps_u = den(torch.cat([x, torch.zeros_like(m)], 1), tt, torch.zeros_like(tok),
                        torch.ones_like(mask))
            eps_c = den(torch.cat([x, m], 1), tt, tok, mask)
            x = sched.step(cfg_combine(eps_u, eps_c, cfg.guidance_scale), t, x, eta=0.0).prev_sample
        zs.append(x)
    d = pipe.codec.decode_diff(torch.cat(zs), mono_t).numpy().astype(np.float64)
    d = d / np.array([w.gain for w in wins])[:, None]
    return compose_binaural(mono, merge_windows(d, starts[0], pipe.window_samples,
                                                pipe.overlap_samples, mono.shape[0]))


def bench_tas(data: Path, tmp: Path, steps: int) -> None:
    """Print the TAS sampling ratio and training speed (see module docstring)."""
    import time

    from baselines.registry import load_system
    from baselines.tas.train import train_tas
    from tas_bench.data.manifest import load_dataset
    from tas_bench.runtime.audio_io import read_audio

    system = load_system("tas-demo")
    pipe = system.pipeline
    ds = load_dataset(data)
    clips = ds.split("test")
    monos = []
    for c in clips:
        a = read_audio(ds.audio_path(c), channels=2, sample_rate=pipe.sample_rate).samples
        monos.append((a[0] + a[1]).astype(np.float32))
    prompts, keys = [c.prompt for c in clips], [c.id for c in clips]
    with torch.no_grad():  # sampling only: the training below needs gradients
        t0 = time.perf_counter()
        batched = pipe.generate(monos, prompts, keys=keys)
        tb = time.perf_counter() - t0
        t0 = time.perf_counter()
        loop = [per_clip_loop(pipe, m, p, k) for m, p, k in zip(monos, prompts, keys)]
        tl = time.perf_counter() - t0
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(batched, loop))
    c = pipe.config
    print(f"tas-demo sampling ({c.steps} DDIM steps, CFG {c.guidance_scale}, micro-batch "
          f"{c.micro_batch}, {len(clips)} clips): batched {len(clips) / tb:.3f} clips/s, per-clip "
          f"loop {len(clips) / tl:.3f} clips/s, ratio {tl / tb:.2f}x (max |difference| {diff:.2e})")
    run = tmp / "tas-run"
    cfg = Path(__file__).resolve().parents[1] / "baselines" / "tas" / "demo_config.json"
    train_tas("tas", data, run, config_file=cfg, progress=False,
              overrides={"steps": steps, "val_every": steps, "checkpoint_every": steps})
    rows = list(csv.DictReader(open(run / "metrics.csv", encoding="utf-8")))
    t0, t1 = float(rows[0]["wall_s"]), float(rows[-1]["wall_s"])  # wall_s is taken before validation
    n = int(rows[-1]["step"]) - int(rows[0]["step"])
    print(f"tas training (demo config, batch {json_batch(cfg)}): {n / max(t1 - t0, 1e-9):.2f} steps/s")


def json_batch(path: Path) -> int:
    import json

    return int(json.loads(path.read_text(encoding="utf-8"))["batch_size"])


if __name__ == "__main__":
    raise SystemExit(main())
