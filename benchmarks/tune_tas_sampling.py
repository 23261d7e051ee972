"""Sampling sweep for a TAS system on a tuning split (how the shipped sampling was chosen).

    python benchmarks/tune_tas_sampling.py --system tas-demo --data TUNE --out DIR \
        --setting trailing,4,3.0,0 --setting trailing,4,3.0,2 [--all-clips]

``TUNE`` is a dataset simulated with a seed that neither training nor the test split uses
(the README's figures: ``tas-bench simulate --preset demo --seed 777 --n-train 0 --n-val 0
--n-test 400``). Each ``--setting`` is ``SPACING,STEPS,GUIDANCE[,FLIPPER_GUIDANCE]``. For each,
the test clips (by default only the single-source ones, the clips the cue targets are defined
on) are generated into ``DIR/<setting>/pred`` with ``tas-bench generate``'s code and scored
with the ``cues`` evaluator (and ``signal`` with ``--signal``) into ``DIR/<setting>/res``.
Printed and written to ``DIR/summary.csv``: mean ITD / ILD error, left/right and octant
accuracy, and (``--swap``) the share of single-source clips whose broadband ILD sign flips when
"left" and "right" are exchanged in the prompt. Same seed and settings give the same numbers.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("itd_error_us", "ild_error_db", "lr_correct", "octant_correct", "stft", "env")


def parse_setting(text: str) -> dict[str, Any]:
    """``"trailing,4,3.0[,1.0]"`` -> sampling keyword arguments of ``TASPipeline.set_sampling``."""
    parts = text.split(",")
    if len(parts) not in (3, 4):
        raise SystemExit(f"--setting {text!r}: expected SPACING,STEPS,GUIDANCE[,FLIPPER_GUIDANCE]")
    try:
        s = {"timestep_spacing": parts[0], "steps": int(parts[1]),
             "guidance_scale": float(parts[2]),
             "flipper_guidance": float(parts[3]) if len(parts) == 4 else 0.0}
    except ValueError:
        raise SystemExit(f"--setting {text!r}: STEPS must be an integer, GUIDANCE a number") from None
    return s


def swap_flip_share(system: Any, data: Path, pred: Path) -> float:
    """Share of single-source test clips whose ILD sign flips under a left/right prompt swap."""
    from baselines.pseudobinaural.demo_eval import ild_db
    from tas_bench.data.manifest import load_dataset
    from tas_bench.data.prompts import swap_left_right
    from tas_bench.runtime.audio_io import read_audio

    ds = load_dataset(data)
    singles = [c for c in ds.split("test") if len(c.sources) == 1]
    monos = [read_audio(ds.audio_path(c), channels=2).samples.sum(axis=0).astype(np.float32)
             for c in singles]
    swapped = system.pipeline.generate(monos, [swap_left_right(c.prompt) for c in singles],
                                       keys=[c.id for c in singles])
    flips = []
    for c, y in zip(singles, swapped, strict=True):
        x = read_audio(pred / f"{c.id}.wav", channels=2).samples
        flips.append(np.sign(ild_db(x)) != np.sign(ild_db(y)))
    return float(np.mean(flips)) if flips else math.nan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", default="tas-demo")
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--setting", action="append", required=True)
    ap.add_argument("--all-clips", action="store_true", help="every test clip, not only one-source")
    ap.add_argument("--signal", action="store_true", help="also score STFT / ENV distances")
    ap.add_argument("--swap", action="store_true", help="also measure the prompt-swap ILD flip")
    a = ap.parse_args(argv)

    from baselines.registry import load_system
    from tas_bench.data.subset import single_source_test, subset_dataset
    from tas_bench.pipeline.api import score
    from tas_bench.pipeline.generate import generate_predictions

    settings = [parse_setting(s) for s in a.setting]
    data = (a.data if a.all_clips
            else subset_dataset(a.data, a.out / "data", keep=single_source_test))
    system = load_system(a.system)
    evaluators = ["cues"] + (["signal"] if a.signal else [])
    rows = []
    for s in settings:
        tag = f"{s['timestep_spacing']}-{s['steps']}-{s['guidance_scale']:g}-{s['flipper_guidance']:g}"
        system.pipeline.set_sampling(**s)
        pred = a.out / tag / "pred"
        gen = generate_predictions(system, data, pred, progress=False)
        res = score(data, pred, evaluators, out=a.out / tag / "res", use_cache=False)
        m = res.metrics
        row: dict[str, Any] = {"setting": tag, "clips": gen["clips"]}
        for k in METRICS:
            row[k] = float(m.loc[k, "mean"]) if k in m.index else math.nan
        if a.swap:
            row["swap_flip"] = swap_flip_share(system, data, pred)
        rows.append(row)
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in row.items()), flush=True)
    with open(a.out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
