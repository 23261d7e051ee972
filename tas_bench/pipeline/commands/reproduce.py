"""``tas-bench reproduce``: the whole chain, each stage skipped when already complete."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="simulate -> generate -> score -> leaderboard",
                       description="Run the benchmark end to end on a simulated dataset: every "
                                   "registered system is generated and scored, then the "
                                   "leaderboard is built. Completed stages are skipped.")
    p.add_argument("--preset", choices=["demo", "spatialtas"], default="demo")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--seed", type=int, default=None, help="dataset seed (default: the benchmark seed)")
    p.add_argument("--n-test", type=int, default=None, help="test clips (default: the preset's)")
    p.add_argument("--systems", nargs="+", metavar="NAME", help="systems (default: all registered)")
    p.add_argument("--evaluators", nargs="+", metavar="NAME", help="evaluators (default: all that can run)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tas_bench.pipeline.reproduce import BENCHMARK_SEED, reproduce

    t0 = time.perf_counter()
    summary = reproduce(args.preset, args.out, seed=BENCHMARK_SEED if args.seed is None else args.seed,
                        systems=args.systems, evaluators=args.evaluators, n_test=args.n_test,
                        progress=not args.no_progress)
    print(f"\ndone in {time.perf_counter() - t0:.1f} s:")
    width = max(len(st.name) for st in summary.stages)
    for st in summary.stages:
        print(f"  {st.name:<{width}}  {st.status:<8} {st.seconds:7.1f} s  {st.detail}")
    print(f"leaderboard page: {summary.board}")
    return 0
