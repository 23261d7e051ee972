"""``tas-bench generate --system NAME --data DATA --split test --out PRED``: predictions.

Writes PRED/{id}.wav for every clip of the split and PRED/system.json (system card + dataset
fingerprint). Resumable: rerunning skips the wavs already written.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="spatialize every clip of a dataset split (resumable)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", required=True, help="system name (see `tas-bench ls systems`)")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--out", required=True, help="predictions folder")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tas_bench.pipeline.generate import generate_predictions

    s = generate_predictions(args.system, args.data, args.out, split=args.split,
                             batch_size=args.batch_size, progress=not args.no_progress,
                             device=args.device)
    print(f"{s['system']} ({s['revision']}): {s['generated']} generated, {s['skipped']} already "
          f"present, {s['clips']} clips in {s['out']}")
    return 0
