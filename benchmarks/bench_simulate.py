"""Simulator throughput, and the full-scale projection of the ``spatialtas`` preset.

Throughput (default): ten-second binaural clips per second (target >= 20 on 2 cores).
``python benchmarks/bench_simulate.py [--clips N] [--workers W] [--duration S]``: the source
corpus and HRTF are prepared once before timing (a cold corpus build is reported separately),
then ``N`` clips are simulated into a temporary folder, wav writing included.

Scale (``--scale``): slices of the real ``spatialtas`` preset (376,104 / 732 / 4,000 clips of
10 s), each rendered exactly as a cluster job would, as shard 0 of ``--shard-counts`` (e.g.
``0/190`` = clips 0..2003), in a fresh process per run (``--workers`` processes; 1 by default
so that CPU time per clip is clean), once per audio format. Per run it reports wall time,
process CPU time (user + sys, the process and its workers: the machine may be shared, so wall
time alone says little), peak RSS (the main process and the largest worker), and the bytes of
audio and manifest written. Per-clip CPU is the difference between the two sizes divided by the
difference in clips (set-up costs cancel); peak RSS at the two sizes shows memory is flat in N.
The projection multiplies per-clip figures by the preset's 380,836 clips::

    flock /tmp/tas-train.lock nice python benchmarks/bench_simulate.py --scale \\
        --shard-counts 760 190 --formats wav flac
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tas_bench.data.presets import PRESETS
from tas_bench.data.simulate import default_workers, simulate_dataset
from tas_bench.data.source_corpus import build_corpus

TARGET = 20.0


def _cpu_s() -> float:
    """User + sys CPU seconds of this process and its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _du(root: Path, suffix: str) -> int:
    return sum(p.stat().st_size for p in root.rglob(f"*{suffix}") if p.is_file())


def child(out: Path, count: int, audio_format: str, workers: int) -> dict:
    """One measured run in this (fresh) process: shard 0 of ``count`` of spatialtas."""
    t0, c0 = time.perf_counter(), _cpu_s()
    s = simulate_dataset(out, preset="spatialtas", seed=0, progress=False, workers=workers,
                         audio_format=audio_format, shard=(0, count), force=True)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    suffix = ".flac" if audio_format == "flac" else ".wav"
    return {"format": audio_format, "shard": f"0/{count}", "clips": s.n_clips,
            "workers": workers, "wall_s": wall, "cpu_s": cpu,
            "render_wall_s": s.extra["render_seconds"], "peak_rss_bytes": me,
            "peak_worker_rss_bytes": kids if workers > 1 else 0,
            "audio_bytes": _du(s.out, suffix), "manifest_bytes": s.extra["manifest_bytes"]}


def scale(args: argparse.Namespace) -> int:
    total = sum(PRESETS["spatialtas"].values())
    build_corpus(16000)  # the decoded-source cache, so no run pays for a cold build
    rows = []
    with tempfile.TemporaryDirectory(prefix="tas-bench-scale-", dir=args.tmp) as tmp:
        for fmt in args.formats:
            for count in args.shard_counts:
                out = Path(tmp) / f"{fmt}-{count}"
                cmd = [sys.executable, __file__, "--child", str(out), str(count), fmt,
                       str(args.workers)]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    return proc.returncode
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"{fmt:4s} shard 0/{count:<4d} {row['clips']:5d} clips: wall "
                      f"{row['wall_s']:7.1f} s, CPU {row['cpu_s']:7.1f} s, peak RSS "
                      f"{row['peak_rss_bytes'] / 2**20:6.0f} MiB (worker "
                      f"{row['peak_worker_rss_bytes'] / 2**20:.0f} MiB), audio "
                      f"{row['audio_bytes'] / row['clips'] / 1e3:.1f} kB/clip, manifest "
                      f"{row['manifest_bytes'] / row['clips']:.0f} B/clip", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    print(f"\nprojection for the full spatialtas preset ({total:,} clips of 10 s):")
    for fmt in args.formats:
        r = sorted((x for x in rows if x["format"] == fmt), key=lambda x: x["clips"])
        small, big = r[0], r[-1]
        per_clip_cpu = ((big["cpu_s"] - small["cpu_s"]) / (big["clips"] - small["clips"])
                        if len(r) > 1 and big["clips"] > small["clips"] else big["cpu_s"] / big["clips"])
        fixed = big["cpu_s"] - per_clip_cpu * big["clips"]
        audio = big["audio_bytes"] / big["clips"] * total
        manifest = big["manifest_bytes"] / big["clips"] * total
        rss = "/".join(f"{x['peak_rss_bytes'] / 2**20:.0f}" for x in r)
        print(f"  {fmt}: disk {audio / 1e9:.0f} GB audio + {manifest / 1e9:.2f} GB manifest; "
              f"{per_clip_cpu * total / 3600:.1f} core-hours ({per_clip_cpu * 1e3:.0f} ms CPU "
              f"per clip, + {fixed:.0f} s set-up per process); peak RSS {rss} MiB at "
              f"{'/'.join(str(x['clips']) for x in r)} clips (flat in N, per process)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        out, count, fmt, workers = sys.argv[2:6]
        print(json.dumps(child(Path(out), int(count), fmt, int(workers))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--scale", action="store_true",
                    help="measure slices of the spatialtas preset and project the full preset")
    ap.add_argument("--shard-counts", type=int, nargs="+", default=[760, 190],
                    help="with --scale: render shard 0 of each count (760: 501 clips, "
                         "190: 2004 clips)")
    ap.add_argument("--formats", nargs="+", default=["wav", "flac"], choices=["wav", "flac"])
    ap.add_argument("--tmp", default=None, help="with --scale: folder for the temporary data")
    ap.add_argument("--json", default=None, help="with --scale: also write the rows here")
    args = ap.parse_args()
    if args.scale:
        args.workers = args.workers or 1
        return scale(args)
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
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
