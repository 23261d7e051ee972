"""``tas-bench simulate``: make a SpatialTAS-style binaural dataset (see :mod:`tas_bench.data.simulate`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from tas_bench.data.presets import PRESETS

    p = sub.add_parser(
        "simulate", help="simulate a binaural dataset (HRTF + room + Debian sound sources)",
        description="Render one- and two-source binaural clips with prompts and QA items; "
                    "write DIR/manifest.jsonl, DIR/dataset.json and DIR/audio/{split}/*.wav (or .flac); "
                    "with --shard, one share of them into DIR/shard-I-of-N.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="demo",
                   help="split sizes: demo (small) or spatialtas (the paper's; scale with --n-*)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="global seed (same seed, same bytes)")
    p.add_argument("--hrtf", default="kemar", metavar="NAME|PATH.sofa",
                   help="'kemar' (Debian libmysofa1), 'sphere[:RADIUS_M]' (analytic spherical "
                        "head, no data) or a SOFA SimpleFreeFieldHRIR file")
    p.add_argument("--sources", type=Path, default=None, metavar="DIR",
                   help="your own sounds instead of the built-in Debian corpus: every audio "
                        "file under DIR (wav, flac, ogg, ... ; stereo is mixed down to mono), "
                        "labelled by --labels, else by its first sub-folder (DIR/dog/a.wav: "
                        "'dog'), else by its file name; silent, too short and unreadable "
                        "files are skipped and named (README: 'Your own sounds')")
    p.add_argument("--labels", type=Path, default=None, metavar="FILE.csv",
                   help="with --sources: a CSV with columns file,label[,licence][,split] "
                        "(file relative to DIR); only the files it lists are used")
    p.add_argument("--with-builtin", action="store_true",
                   help="with --sources: use the built-in Debian corpus as well")
    p.add_argument("--n-train", type=int, default=None, help="train clips (default: preset)")
    p.add_argument("--n-val", type=int, default=None, help="val clips (default: preset)")
    p.add_argument("--n-test", type=int, default=None,
                   help="test clips, balanced over the four categories (default: preset)")
    p.add_argument("--duration", type=float, default=10.0, help="clip length in seconds")
    p.add_argument("--sample-rate", type=int, default=16000, help="output rate in Hz")
    p.add_argument("--directions", choices=("measured", "continuous"), default="measured",
                   help="source directions: the HRTF's measured ones (exact HRIRs, default) or "
                        "any direction with interpolated HRIRs")
    p.add_argument("--audio-format", choices=("wav", "flac"), default="wav",
                   help="wav (PCM_16, default) or flac: the same 16-bit samples, losslessly "
                        "compressed (about 0.35x the disk; every tas-bench reader reads both)")
    p.add_argument("--shard", default=None, metavar="I/N|auto",
                   help="render only shard I of N (0-based) into OUT/shard-I-of-N; 'auto' reads "
                        "the rank from torchrun/accelerate (RANK, WORLD_SIZE) or a Slurm array "
                        "(SLURM_ARRAY_TASK_ID/_MIN/_COUNT); join the shards with "
                        "`tas-bench simulate-merge`")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: available CPUs, at most 4)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder that is not a previous tas-bench dataset")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tas_bench.data.shards import resolve_shard
    from tas_bench.data.simulate import default_workers, simulate_dataset
    from tas_bench.runtime.errors import TasBenchError

    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise TasBenchError(f"{workers} must be >= 1", field="--workers")
    shard = resolve_shard(args.shard)
    from tas_bench.data.user_sources import corpus_for_simulate

    corpus, _ = corpus_for_simulate(
        args.sources, args.labels, with_builtin=args.with_builtin, sample_rate=args.sample_rate,
        preset=args.preset, seed=args.seed, n_train=args.n_train, n_val=args.n_val,
        n_test=args.n_test, on_report=lambda r: print("\n".join(r.summary_lines()), flush=True))
    s = simulate_dataset(args.out, preset=args.preset, seed=args.seed, hrtf=args.hrtf,
                         n_train=args.n_train, n_val=args.n_val, n_test=args.n_test,
                         duration=args.duration, sample_rate=args.sample_rate,
                         progress=not args.quiet, force=args.force, workers=workers,
                         directions=args.directions, corpus=corpus,
                         audio_format=args.audio_format, shard=shard)
    print(f"simulated {s.n_clips} clip(s) into {s.out} in {s.seconds:.1f} s "
          f"(rendering {s.clips_per_second:.1f} clips/s with {workers} worker(s))")
    for split, cats in s.counts.items():
        if cats:
            detail = ", ".join(f"{c} {n}" for c, n in sorted(cats.items()))
            print(f"  {split}: {sum(cats.values())} ({detail})")
    if shard is not None:
        print(f"shard {shard[0]}/{shard[1]} done (clips {s.extra['clip_range'][0]}.."
              f"{s.extra['clip_range'][1] - 1}); when every shard is done: tas-bench "
              f"simulate-merge {s.out.parent}/shard-* --out DIR")
        return 0
    print(f"fingerprint: {s.fingerprint}")
    return 0
