"""``tas-bench score``: score a folder of binaural predictions against a dataset."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tas_bench.runtime.errors import TasBenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score predictions against a dataset",
                       description="Pair PRED/{id}.wav with the dataset's clips, run the evaluators, "
                                   "write RES/results.json and RES/per_clip.csv.")
    p.add_argument("--data", required=True, type=Path, help="dataset folder (manifest.jsonl)")
    p.add_argument("--pred", required=True, type=Path, help="folder of {id}.wav predictions")
    p.add_argument("--out", type=Path, help="results folder (required unless --shard)")
    p.add_argument("--evaluators", nargs="+", metavar="NAME",
                   help="evaluators to run (default: every registered one that can run)")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="EV.KEY=VALUE",
                   help="evaluator option, e.g. signal.normalize=false (repeatable)")
    p.add_argument("--split", default="test", help="split to score ('all' for every clip)")
    p.add_argument("--system-name", help="system name recorded in results (default: PRED/system.json)")
    p.add_argument("--cache-dir", type=Path, help="cache folder (default $TAS_BENCH_CACHE or ~/.cache/tas-bench/cache)")
    p.add_argument("--no-cache", action="store_true", help="compute everything, store nothing")
    p.add_argument("--save-embeddings", action="store_true",
                   help="also write backbone embeddings/logits to RES/embeddings/EVALUATOR/{id}.npz")
    p.add_argument("--shard", metavar="I/N", help="compute shard I of N into the cache and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise TasBenchError(f"--shard expects I/N, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise TasBenchError(f"--shard {text}: need 0 <= I < N")
    return i, n


def run(args: argparse.Namespace) -> int:
    from tas_bench.pipeline.scoring import ScoreOptions, parse_evaluator_options, score

    shard = _parse_shard(args.shard) if args.shard else None
    if args.out is None and shard is None:
        raise TasBenchError("--out is required")
    if shard is None:  # before any work, also before the shards of a distributed run
        from tas_bench.runtime.audio_io import check_output_folder
        from tas_bench.runtime.results import PER_CLIP_NAME, RESULTS_NAME

        check_output_folder(args.out, inputs=(args.pred, args.data),
                            file_names=(RESULTS_NAME, PER_CLIP_NAME, "embeddings"))
    opts = ScoreOptions(
        data=args.data, pred=args.pred, out=args.out, evaluators=args.evaluators,
        evaluator_config=parse_evaluator_options(args.options),
        split=None if args.split == "all" else args.split, system_name=args.system_name,
        cache_dir=args.cache_dir, use_cache=not args.no_cache, save_embeddings=args.save_embeddings,
        progress=not args.no_progress, shard=shard,
    )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and shard is None:
        return _run_distributed(opts)
    summary = score(opts)
    _report(summary)
    return 1 if summary.invalid else 0


def _run_distributed(opts) -> int:  # noqa: ANN001
    """Under ``accelerate launch`` / ``torchrun`` (WORLD_SIZE > 1): every process fills the cache
    with its shard, then the main process assembles the results from the cache (exact: the same
    code path as one process)."""
    from dataclasses import replace

    import torch
    from accelerate import PartialState

    from tas_bench.pipeline.scoring import score

    # without GPUs, a CPU (gloo) process group; under `accelerate launch --multi_gpu`, NCCL
    state = PartialState(cpu=not torch.cuda.is_available())
    if opts.use_cache is False:
        raise TasBenchError("distributed scoring needs the cache (it is how shards hand results over)")
    score(replace(opts, shard=(state.process_index, state.num_processes), progress=opts.progress and state.is_main_process))
    state.wait_for_everyone()
    status = 0
    if state.is_main_process:
        summary = score(replace(opts, progress=False))
        _report(summary)
        status = 1 if summary.invalid else 0
    state.wait_for_everyone()
    return status


def _report(summary) -> None:  # noqa: ANN001
    if summary.results_path is None:
        print(f"shard done: {summary.n_valid} clip(s), cache hits {summary.cache_hits}, "
              f"misses {summary.cache_misses}, {summary.seconds:.1f} s")
        return
    print(f"scored {summary.n_valid}/{summary.n_clips} clip(s) in {summary.seconds:.1f} s "
          f"(cache hits {summary.cache_hits}, misses {summary.cache_misses})")
    for name, m in summary.metrics.items():
        if m.get("mean") is None:
            continue
        ci = m.get("ci95")
        ci_txt = f"  95% CI [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""
        print(f"  {name:<20} {m['mean']:.4g}{ci_txt}  (n={m['n']})")
    for name, reason in summary.skipped.items():
        print(f"  skipped {name}: {reason}")
    if summary.invalid:
        print(f"{len(summary.invalid)} invalid prediction file(s):", file=sys.stderr)
        for b in summary.invalid[:20]:
            print(f"  {b['path']}: {b['reason']}", file=sys.stderr)
    print(f"results: {summary.results_path}")
