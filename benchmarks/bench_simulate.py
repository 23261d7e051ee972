"""Simulator throughput: ten-second binaural clips per second (target >= 20 on 2 cores).

Usage: ``python benchmarks/bench_simulate.py [--clips N] [--workers W] [--duration S]``.
The source corpus and HRTF are prepared once before timing (a cold corpus build is reported
separately), then ``N`` clips are simulated into a temporary folder, wav writing included.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tas_bench.data.simulate import default_workers, simulate_dataset
from tas_bench.data.source_corpus import build_corpus

TARGET = 20.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--duration", type=float, default=10.0)
    args = ap.parse_args()
    workers = args.workers or default_workers()
    t0 = time.perf_counter()
    corpus = build_corpus(16000)
    t_corpus = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="tas-bench-bench-") as tmp:
        n_test = max(4, args.clips // 5)
        s = simulate_dataset(Path(tmp) / "ds", preset="demo", seed=0, n_train=args.clips - n_test,
                             n_val=0, n_test=n_test, duration=args.duration, progress=False,
                             workers=workers, corpus=corpus)
    rate = s.clips_per_second
    print(f"corpus ready in {t_corpus:.2f} s ({len(corpus.items)} sources)")
    print(f"simulated {s.n_clips} x {args.duration:g} s clips in {s.seconds:.2f} s with "
          f"{workers} worker(s) (rendering + writing {s.extra['render_seconds']:.2f} s): "
          f"{rate:.1f} clips/s (target >= {TARGET:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
