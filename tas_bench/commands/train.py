"""``tas-bench train KIND --data DATA --out RUN [--config FILE]``: train a reference system.

Re-running the same command after an interruption resumes from the newest checkpoint in RUN.
Under ``accelerate launch`` the same command trains on one or many GPUs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tas_bench.errors import TasBenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a reference system (resumable)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", help="system kind: pseudobinaural | pseudobinaural-notext")
    p.add_argument("--data", required=True, help="dataset folder (manifest.jsonl + wavs)")
    p.add_argument("--out", required=True, help="run folder (created; an existing run resumes)")
    p.add_argument("--config", default=None, help="JSON or TOML file of config fields")
    p.add_argument("--preset", default=None, help="cpu (default) | paper | tiny")
    p.add_argument("--steps", type=int, default=None, help="total training steps")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--text-encoder", choices=["scratch", "t5"], default=None)
    p.add_argument("--t5-path", default=None, help="local FLAN-T5 folder (with --text-encoder t5)")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default=None,
                   help="GPU only; ignored on CPU")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (0 = default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from baselines.registry import TRAINABLE

    if args.kind not in TRAINABLE:
        raise TasBenchError(f"cannot train {args.kind!r}; trainable kinds: {', '.join(sorted(TRAINABLE))}")
    mod, _, attr = TRAINABLE[args.kind].partition(":")
    train = getattr(importlib.import_module(mod), attr)
    overrides = {"preset": args.preset, "steps": args.steps, "batch_size": args.batch_size,
                 "seed": args.seed, "text_encoder": args.text_encoder, "t5_path": args.t5_path,
                 "mixed_precision": args.mixed_precision, "torch_threads": args.threads}
    record = train(args.kind, args.data, args.out, config_file=args.config, overrides=overrides,
                   progress=not args.no_progress, command="tas-bench " + " ".join(sys.argv[1:]))
    if record:
        print(f"trained {record['kind']} for {record['steps']} steps: {args.out} "
              f"(revision {record['revision']}); register it with "
              f"`tas-bench register NAME {args.out}`")
    return 0
