"""Check a PseudoBinaural system against Mono-Mono on a demo test split (the shipped card's figures).

``python -m baselines.pseudobinaural.demo_eval --data TEST_DATA --out DIR [--system NAME]``
generates predictions for Mono-Mono and the system, then reports:

* STFT and ENV distances (REFERENCE.md §3, via ``evaluators.signal``), mean over test clips;
* on single-source clips, the share whose output ILD = 10·log10(ΣL²/ΣR²) has the sign of the
  prompt's lateral word (left -> positive), for the system and for the reference;
* the share of single-source clips whose ILD sign flips when "left" and "right" are swapped in
  the prompt (``tas_bench.data.prompts.swap_left_right``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tas_bench.data.manifest import load_dataset
from tas_bench.runtime.audio_io import read_audio
from tas_bench.runtime.fileio import write_json_atomic


def ild_db(x: np.ndarray) -> float:
    """Interaural level difference in dB, positive when the left channel is louder."""
    el, er = float(np.sum(np.square(x[0], dtype=np.float64))), float(np.sum(np.square(x[1], dtype=np.float64)))
    return 10.0 * np.log10((el + 1e-12) / (er + 1e-12))


def evaluate(system: str | Any, data: str | Path, out: str | Path,
             baseline: str = "mono-mono") -> dict[str, Any]:
    """Figures for ``system`` (a name or a loaded System) and ``baseline`` on the test split of
    ``data`` (see module doc)."""
    from baselines.registry import load_system
    from evaluators.signal import signal_metrics_batch
    from tas_bench.data.prompts import swap_left_right
    from tas_bench.pipeline.generate import generate_predictions

    ds = load_dataset(data)
    clips = ds.split("test")
    out = Path(out)
    report: dict[str, Any] = {"data": str(ds.root), "n_test": len(clips), "systems": {}}
    refs = {c.id: read_audio(ds.audio_path(c), channels=2).samples for c in clips}
    singles = [c for c in clips if len(c.sources) == 1]
    report["n_single_source"] = len(singles)
    sysobj = load_system(system) if isinstance(system, str) else system
    for name, obj in ((baseline, baseline), (sysobj.name, sysobj)):
        gen = generate_predictions(obj, ds.root, out / name, split="test", progress=False)
        preds = {c.id: read_audio(out / name / f"{c.id}.wav", channels=2,
                                  sample_rate=ds.clips[0].sample_rate).samples for c in clips}
        m = {"stft": [], "env": []}
        for c in clips:
            r = signal_metrics_batch(preds[c.id][None], refs[c.id][None])
            m["stft"].append(float(r["stft"][0]))
            m["env"].append(float(r["env"][0]))
        want = [1.0 if c.sources[0].direction[0] == "left" else -1.0 for c in singles]
        got = [np.sign(ild_db(preds[c.id])) for c in singles]
        report["systems"][name] = {
            "revision": gen["revision"],
            "stft": float(np.mean(m["stft"])), "env": float(np.mean(m["env"])),
            "lateral_accuracy": float(np.mean([g == w for g, w in zip(got, want)])) if singles else None,
        }
    ref_sign = [np.sign(ild_db(refs[c.id])) for c in singles]
    want = [1.0 if c.sources[0].direction[0] == "left" else -1.0 for c in singles]
    report["reference_lateral_accuracy"] = float(np.mean([g == w for g, w in zip(ref_sign, want)]))
    flips = []
    for c in singles:
        mono = refs[c.id][0] + refs[c.id][1]
        a, b = sysobj.spatialize_batch([mono, mono], [c.prompt, swap_left_right(c.prompt)],
                                       c.sample_rate)
        flips.append(np.sign(ild_db(a)) != np.sign(ild_db(b)))
    report["swap_flip_rate"] = float(np.mean(flips)) if flips else None
    return report


def lateral_check(system: str | Any, data: str | Path) -> dict[str, Any]:
    """Only the single-source figures (lateral accuracy, swap flip rate) on a test split."""
    from baselines.registry import load_system
    from tas_bench.data.prompts import swap_left_right

    ds = load_dataset(data)
    singles = [c for c in ds.split("test") if len(c.sources) == 1]
    sysobj = load_system(system) if isinstance(system, str) else system
    hits, flips, ref_hits = [], [], []
    for c in singles:
        ref = read_audio(ds.audio_path(c), channels=2).samples
        want = 1.0 if c.sources[0].direction[0] == "left" else -1.0
        mono = ref[0] + ref[1]
        a, b = sysobj.spatialize_batch([mono, mono], [c.prompt, swap_left_right(c.prompt)],
                                       c.sample_rate)
        hits.append(np.sign(ild_db(a)) == want)
        flips.append(np.sign(ild_db(a)) != np.sign(ild_db(b)))
        ref_hits.append(np.sign(ild_db(ref)) == want)
    return {"data": str(ds.root), "n_single_source": len(singles),
            "lateral_accuracy": float(np.mean(hits)), "swap_flip_rate": float(np.mean(flips)),
            "reference_lateral_accuracy": float(np.mean(ref_hits))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--system", default="pseudobinaural-demo")
    ap.add_argument("--json", default=None, help="also write the report here")
    ap.add_argument("--lateral-only", action="store_true",
                    help="only the single-source lateral accuracy and swap flip rate")
    a = ap.parse_args(argv)
    rep = lateral_check(a.system, a.data) if a.lateral_only else evaluate(a.system, a.data, a.out)
    if a.json:
        write_json_atomic(a.json, rep)
    json.dump(rep, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
