"""``tas-bench train KIND --data DATA --out RUN [--config FILE]``: train a trainable kind.

Every kind (the PseudoBinaural and TAS systems, the spatial-QA assessor) writes the same run
folder (``tas_bench.runtime.runs``); re-running the same command after an interruption resumes from
the newest complete checkpoint in RUN. Under ``accelerate launch`` the same command trains on
one or many GPUs. ``--set FIELD=VALUE`` sets any config field of the kind (VALUE is JSON when
it parses as JSON, else a string).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tas_bench.runtime.errors import TasBenchError


def _load_plugin_kinds() -> None:
    """Import the plugin registries that register the built-in trainable kinds."""
    import importlib

    for mod in ("baselines.registry", "evaluators.registry"):
        importlib.import_module(mod)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a reference system or assessor (resumable)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", help="trainable kind, e.g. pseudobinaural | pseudobinaural-notext "
                                "(`tas-bench train list` shows them all)")
    p.add_argument("--data", default=None, help="dataset folder (manifest.jsonl + wavs)")
    p.add_argument("--out", default=None, help="run folder (created; an existing run resumes)")
    p.add_argument("--config", default=None, help="JSON or TOML file of config fields")
    p.add_argument("--preset", default=None, help="config preset of the kind (e.g. cpu | paper | tiny)")
    p.add_argument("--steps", type=int, default=None, help="total training steps")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--text-encoder", choices=["scratch", "t5"], default=None)
    p.add_argument("--t5-path", default=None, help="local FLAN-T5 folder (with --text-encoder t5)")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default=None,
                   help="GPU only; ignored on CPU")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (0 = default)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE",
                   help="set a config field (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (JSON values where they parse)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise TasBenchError(f"--set expects FIELD=VALUE, got {item!r}", field="--set")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out[key.strip()] = value
    return out


def run(args: argparse.Namespace) -> int:
    from tas_bench.runtime import runs

    _load_plugin_kinds()
    if args.kind == "list":
        for name in runs.kind_names():
            spec = runs.get_kind(name)
            print(f"{name} ({spec.role}): {spec.description}")
        return 0
    spec = runs.get_kind(args.kind)  # an unknown kind lists the trainable ones
    if not args.data or not args.out:
        raise TasBenchError("--data and --out are required")
    overrides = {"preset": args.preset, "steps": args.steps, "batch_size": args.batch_size,
                 "seed": args.seed, "text_encoder": args.text_encoder, "t5_path": args.t5_path,
                 "mixed_precision": args.mixed_precision, "torch_threads": args.threads,
                 **parse_sets(args.sets)}
    record = spec.resolve("train")(args.kind, args.data, args.out, config_file=args.config,
                                   overrides=overrides, progress=not args.no_progress,
                                   command="tas-bench " + " ".join(sys.argv[1:]))
    if record:
        print(f"trained {record['kind']} for {record['steps']} steps: {args.out} "
              f"(revision {record['revision']}); register it with "
              f"`tas-bench register NAME {args.out}`")
    return 0
