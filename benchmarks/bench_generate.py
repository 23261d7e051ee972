"""Generation and training throughput of the reference systems.

Usage: ``python benchmarks/bench_generate.py [--clips N] [--duration S] [--train-steps K]``.
Simulates a small demo-style dataset into a temporary folder, then prints for each built-in
system the seconds of binaural audio generated per wall-clock second (wav writing included),
and for PseudoBinaural (``cpu`` preset) the training steps per second (data sampling,
forward, backward and optimiser step; checkpoint writing excluded).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import torch

from baselines.pseudobinaural.train import train_pseudobinaural
from tas_bench.generate import generate_predictions
from tas_bench.simulate import simulate_dataset

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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
