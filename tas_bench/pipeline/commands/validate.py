"""``tas-bench validate DATA``: report every problem of a dataset with its line and field."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a dataset folder (manifest + audio)",
                       description="Check every manifest line and every wav; print each problem "
                                   "with its line and field, and the dataset fingerprint.")
    p.add_argument("data", type=Path, help="dataset folder")
    p.add_argument("--no-audio", action="store_true", help="check the manifest only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tas_bench.data.manifest import MANIFEST_NAME, dataset_fingerprint
    from tas_bench.data.validate import validate_dataset

    n, problems = validate_dataset(args.data, check_audio=not args.no_audio)
    for p in problems:
        print(f"{Path(args.data) / (p.file or MANIFEST_NAME)}: {p}", file=sys.stderr)
    if problems:
        print(f"tas-bench: {len(problems)} problem(s) in {args.data} ({n} valid clip line(s))",
              file=sys.stderr)
        return 1
    print(f"{args.data}: {n} clip(s), no problems")
    print(f"fingerprint: {dataset_fingerprint(args.data)}")
    return 0
