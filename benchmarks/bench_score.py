"""Scoring performance on simulated 10-s clips. Prints ratios against references run here.

1. signal metrics: batched :class:`evaluators.signal.SignalEvaluator` vs the per-file reference
   loop (librosa STFT per channel, scipy.signal.hilbert) - clips/s, speed-up, max relative
   difference per metric (target: >= 10x, each metric equal to 1e-6 relative);
2. backbones: the generation evaluator's per-clip work vs the bare Cnn14 + VGGish forward passes
   on the same audio (randomly initialised weights registered as custom) - overhead
   (target <= 25 %);
3. cache: a cold ``score`` run vs the same run again (target >= 20x faster);
4. memory: peak RSS of ``tas-bench score`` at N and 4N clips in fresh processes (flat in N).

Usage: ``python benchmarks/bench_score.py [--n 16] [--seconds 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _simulate(out: Path, n: int, seconds: float) -> None:
    from tas_bench.data.simulate import simulate_dataset

    simulate_dataset(out, preset="demo", seed=7, n_train=0, n_val=0, n_test=n, duration=seconds,
                     progress=False, force=True)


def _predictions(data: Path, pred: Path) -> None:
    """Mono-Mono outputs plus a little noise (so no distance is exactly zero)."""
    from tas_bench.data.manifest import load_dataset
    from tas_bench.runtime.audio_io import read_audio, write_wav

    ds = load_dataset(data)
    rng = np.random.default_rng(0)
    pred.mkdir(parents=True, exist_ok=True)
    for c in ds.clips:
        x = read_audio(ds.audio_path(c)).samples.astype(np.float64)
        m = x.sum(0) / 2
        y = np.stack([m, m]) + 1e-3 * rng.standard_normal(x.shape)
        write_wav(pred / f"{c.id}.wav", y, c.sample_rate, subtype="FLOAT")


def _inputs(data: Path, pred: Path, sr: int):  # noqa: ANN202
    from evaluators.base import ClipInput
    from tas_bench.data.manifest import load_dataset
    from tas_bench.runtime.audio_io import read_audio

    ds = load_dataset(data)
    out = []
    for c in ds.clips:
        ref = read_audio(ds.audio_path(c), sample_rate=sr, dtype="float64").samples
        p = read_audio(pred / f"{c.id}.wav", sample_rate=sr, dtype="float64").samples
        out.append(ClipInput(c, p, ref, sr))
    return out


def bench_signal(inputs) -> None:  # noqa: ANN001
    from reference_signal import reference_signal_metrics

    from evaluators.signal import SignalEvaluator

    ev = SignalEvaluator()
    ev.process_batch(inputs[:1])  # warm up both sides (thread pool, first-call allocations)
    reference_signal_metrics(inputs[0].pred, inputs[0].ref)
    t0 = time.perf_counter()
    ref_vals = [reference_signal_metrics(b.pred, b.ref) for b in inputs]
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    outs = []
    for s in range(0, len(inputs), ev.batch_size):
        outs.extend(ev.process_batch(inputs[s:s + ev.batch_size]))
    t_fast = time.perf_counter() - t0
    worst: dict[str, float] = {}
    for r, o in zip(ref_vals, outs):
        for k, v in r.items():
            rel = abs(o.values[k] - v) / max(abs(v), 1e-12)
            worst[k] = max(worst.get(k, 0.0), rel)
    n = len(inputs)
    print(f"signal metrics ({ev.threads} torch thread(s)): reference loop {n / t_ref:7.2f} clips/s, "
          f"batched {n / t_fast:7.2f} clips/s, speed-up {t_ref / t_fast:5.1f}x")
    print("  worst relative difference per metric (target <= 1e-6): "
          + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    bad = [k for k, v in worst.items() if v > 1e-6]
    print("  all within 1e-6" if not bad else f"  ABOVE 1e-6: {', '.join(bad)}")


def _register_random_backbones(root: Path) -> dict[str, str]:
    import torch

    from evaluators.generation.cnn14 import build_cnn14
    from evaluators.generation.vggish import build_vggish
    from tas_bench.runtime.weights import add_weight

    torch.manual_seed(0)
    root.mkdir(parents=True, exist_ok=True)
    names = {}
    for name, model in (("bench-cnn14-random", build_cnn14(16000)), ("bench-vggish-random", build_vggish())):
        path = root / f"{name}.pth"
        torch.save(model.state_dict(), path)
        add_weight(name, path, force=True)
        names[name] = str(path)
    return names


def bench_backbones(inputs) -> None:  # noqa: ANN001
    import torch

    from evaluators.generation.evaluator import GenerationEvaluator

    ev = GenerationEvaluator(cnn14_weights="bench-cnn14-random", vggish_weights="bench-vggish-random",
                             channel_policy="left", fad_channel_policy="left")
    ev.process_batch(inputs[:1])  # load the models once, warm up
    cnn14, vggish = ev._load_cnn14(), ev._load_vggish()  # noqa: SLF001 - the evaluator's own modules
    t0 = time.perf_counter()
    for s in range(0, len(inputs), ev.batch_size):
        ev.process_batch(inputs[s:s + ev.batch_size])
    t_ev = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in inputs:
            for x in (b.pred, b.ref):
                cnn14(torch.from_numpy(x[0].astype(np.float32))[None, :])
                vggish.embed(x[0])
    t_bare = time.perf_counter() - t0
    n = len(inputs)
    print(f"backbones (random-init Cnn14 16k + VGGish, pred and ref): bare forward {n / t_bare:6.2f} clips/s, "
          f"evaluator {n / t_ev:6.2f} clips/s, overhead {100 * (t_ev / t_bare - 1):+.1f} %")


def _score_cmd(data: Path, pred: Path, out: Path, cache: Path, evaluators: list[str],
               config: dict | None = None) -> list[str]:
    code = ("import resource, sys, time, json; from pathlib import Path; "
            "from tas_bench.pipeline.scoring import ScoreOptions, score; t=time.perf_counter(); "
            f"s = score(ScoreOptions(data=Path({str(data)!r}), pred=Path({str(pred)!r}), out=Path({str(out)!r}), "
            f"evaluators={evaluators!r}, evaluator_config={config or {}!r}, cache_dir=Path({str(cache)!r}), progress=False)); "
            "print(json.dumps({'seconds': time.perf_counter()-t, 'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024, 'misses': s.cache_misses}))")
    return [sys.executable, "-c", code]


def _run(cmd: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="clips (N); the memory check also runs 4N")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--signal-only", action="store_true",
                    help="only the signal-metric check (speed-up and per-metric agreement)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-score-"))
    os.environ["TAS_BENCH_WEIGHTS"] = str(tmp / "weights")
    data, pred = tmp / "data", tmp / "pred"
    _simulate(data, args.n, args.seconds)
    _predictions(data, pred)
    inputs = _inputs(data, pred, 16000)
    print(f"{args.n} simulated clips of {args.seconds:g} s, 16 kHz binaural")
    bench_signal(inputs)
    if args.signal_only:
        return
    _register_random_backbones(tmp / "weights-src")
    bench_backbones(inputs)

    evs = ["signal", "cues", "generation"]
    cfg = {"generation": {"cnn14_weights": "bench-cnn14-random", "vggish_weights": "bench-vggish-random"}}
    cold = _run(_score_cmd(data, pred, tmp / "res-cold", tmp / "cache", evs, cfg))
    warm = _run(_score_cmd(data, pred, tmp / "res-warm", tmp / "cache", evs, cfg))
    print(f"cache (signal+cues+generation): cold {cold['seconds']:.2f} s, cached rerun "
          f"{warm['seconds']:.2f} s ({cold['seconds'] / warm['seconds']:.1f}x faster, "
          f"{warm['misses']} misses)")
    if not args.skip_memory:
        rows = []
        for n in (args.n, 4 * args.n):
            d, p = tmp / f"mem{n}", tmp / f"mempred{n}"
            _simulate(d, n, args.seconds)
            _predictions(d, p)
            r = _run(_score_cmd(d, p, tmp / f"memres{n}", tmp / f"memcache{n}", ["signal", "cues"]))
            rows.append((n, r["rss_mb"], r["seconds"]))
        (n1, r1, _), (n4, r4, _) = rows
        print(f"peak RSS (signal+cues, cold): N={n1}: {r1:.0f} MB, 4N={n4}: {r4:.0f} MB "
              f"(ratio {r4 / r1:.2f})")
    print(f"work folder: {tmp}")


if __name__ == "__main__":
    main()
