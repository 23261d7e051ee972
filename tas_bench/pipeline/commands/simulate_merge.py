"""``tas-bench simulate-merge SHARD... --out DIR``: join the shard folders of a
``tas-bench simulate --shard I/N`` run into one dataset (see :mod:`tas_bench.data.shards`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate-merge", help="join the shard folders of `simulate --shard I/N` into one dataset",
        description="Check that the shard folders are all N shards of one simulate run (same "
                    "configuration and seed, none missing or twice), then write DIR with the "
                    "files a single-process simulate would have written, byte for byte; "
                    "DIR/manifest.jsonl is written last.")
    p.add_argument("shards", nargs="+", type=Path, metavar="SHARD",
                   help="shard folders (OUT/shard-I-of-N), in any order")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset folder")
    p.add_argument("--link", action="store_true",
                   help="hard-link the audio files instead of copying them (no extra disk; "
                        "the shards and DIR must be on one filesystem)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder that is not a previous tas-bench dataset")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tas_bench.data.shards import merge_shards

    s = merge_shards(args.shards, args.out, force=args.force, link=args.link,
                     progress=not args.quiet)
    print(f"merged {s.shards} shard(s), {s.n_clips} clip(s) into {s.out} in {s.seconds:.1f} s")
    for split, cats in s.counts.items():
        if cats:
            detail = ", ".join(f"{c} {n}" for c, n in sorted(cats.items()))
            print(f"  {split}: {sum(cats.values())} ({detail})")
    print(f"fingerprint: {s.fingerprint}")
    return 0
