"""Per-head cue and localiser figures: MIT KEMAR against the analytic spherical head.

Usage: ``python benchmarks/bench_heads.py [--single N] [--duration S] [--seed SEED]
[--heads kemar sphere ...]``.

For each head, simulates a test split of ``4 N`` clips (balanced over the four categories, so
``N`` single-source DoA clips; seed 4242 by default, used nowhere else), generates it with
``mono-mono`` and ``pseudobinaural-demo``, scores it with the ``cues`` evaluator and prints,
over the single-source clips:

- the oracle-style side agreement of the *references*: the fraction whose broadband ILD sign,
  ITD sign, and both, point to the true side (positive = left, the localiser's convention);
- left/right accuracy and undecided rate of the localiser on the references (``*_ref``), on
  Mono-Mono's outputs and on PseudoBinaural's.

Everything is written to a temporary folder (its own score cache included) and removed.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import tas_bench
from tas_bench.data.manifest import load_dataset as load_manifest

SYSTEMS = ("mono-mono", "pseudobinaural-demo")


def _true_sides(data: Path) -> dict[str, float]:
    """``{clip id: +1 (left) / -1 (right)}`` of the single-source DoA clips (SOFA azimuth)."""
    out = {}
    for c in load_manifest(data).clips:
        if c.category == "single_doa_de" and len(c.sources) == 1:
            out[c.id] = 1.0 if math.sin(math.radians(c.sources[0].azimuth)) > 0 else -1.0
    return out


def _sign_agreement(per_clip: pd.DataFrame, sides: dict[str, float]) -> dict[str, float]:
    """Fractions of single-source reference clips whose ILD sign, ITD sign, and both, equal the
    true side."""
    rows = per_clip[per_clip["id"].isin(sides)]
    truth = rows["id"].map(sides)
    ild = np.sign(rows["ild_ref_db"]) == truth  # NaN or 0 never agrees
    itd = np.sign(rows["itd_ref_us"]) == truth
    return {"n": len(rows), "ild": ild.mean(), "itd": itd.mean(), "both": (ild & itd).mean()}


def _lr(per_clip: pd.DataFrame, sides: dict[str, float], suffix: str = "") -> tuple[float, float]:
    rows = per_clip[per_clip["id"].isin(sides)]
    return rows[f"lr_correct{suffix}"].mean(), rows[f"lr_undecided{suffix}"].mean()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--single", type=int, default=100, help="single-source clips per head")
    ap.add_argument("--duration", type=float, default=2.0, help="clip length in seconds")
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--heads", nargs="+", default=["kemar", "sphere"])
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    lines = [f"bench_heads: seed {args.seed}, {args.single} single-source clips per head "
             f"(test split of {4 * args.single}), {args.duration:g} s clips, cues evaluator "
             f"(tas-bench {tas_bench.__version__})",
             "",
             "| head | n | ref ILD sign = side | ref ITD sign = side | both | "
             "L/R acc. ref | undecided ref | L/R acc. mono-mono | undecided mono-mono | "
             "L/R acc. pseudobinaural-demo | undecided pseudobinaural-demo |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tas-bench-heads-") as tmp:
        root = Path(tmp)
        for head in args.heads:
            data = root / head / "data"
            tas_bench.simulate(data, seed=args.seed, hrtf=head, n_train=0, n_val=0,
                               n_test=4 * args.single, duration=args.duration,
                               workers=args.workers)
            sides = _true_sides(data)
            per_system = {}
            for system in SYSTEMS:
                pred = tas_bench.generate(system, data, out=root / head / system)
                res = tas_bench.score(data, pred, evaluators=["cues"],
                                      cache_dir=root / "cache")
                per_system[system] = res.per_clip
            ref = per_system[SYSTEMS[0]]
            agree = _sign_agreement(ref, sides)
            acc_ref, und_ref = _lr(ref, sides, "_ref")
            cells = [head, str(agree["n"]), f"{agree['ild']:.2f}", f"{agree['itd']:.2f}",
                     f"{agree['both']:.2f}", f"{acc_ref:.2f}", f"{und_ref:.2f}"]
            for system in SYSTEMS:
                acc, und = _lr(per_system[system], sides)
                cells += [f"{acc:.2f}", f"{und:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"wall time {time.perf_counter() - t0:.0f} s"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
