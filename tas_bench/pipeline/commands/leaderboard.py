"""``tas-bench leaderboard``: build tables and the static HTML page from results folders.

Exit status: 0 when the board was built (problems with single results folders are printed as
warnings and listed on the page); 1 with ``--strict`` when any results folder was left out;
2 (via TasBenchError) when the results folder is missing or the output cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leaderboard.significance import DEFAULT_ALPHA, DEFAULT_BOOTSTRAP, DEFAULT_SEED


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``leaderboard`` sub-command."""
    p = subparsers.add_parser(
        "leaderboard", help="build leaderboard tables (Markdown, CSV, LaTeX) and index.html",
        description="Read every results folder under --results and write tables 2-4, the "
                    "extended table and a static HTML page to --out.")
    p.add_argument("--results", required=True, type=Path, metavar="DIR",
                   help="folder holding results folders (each with results.json, per_clip.csv)")
    p.add_argument("--out", required=True, type=Path, metavar="BOARD", help="output folder")
    p.add_argument("--no-published", action="store_true",
                   help="leave out the paper's published rows")
    p.add_argument("--no-figures", action="store_true", help="do not draw per-system figures")
    p.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, metavar="B",
                   help=f"paired-bootstrap resamples for significance marks (default {DEFAULT_BOOTSTRAP})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"bootstrap RNG seed (default {DEFAULT_SEED})")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help=f"p-value threshold of the † mark (default {DEFAULT_ALPHA})")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if any results folder had to be left out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the board and print a short summary; see the module docstring for exit codes."""
    from leaderboard.build import build_leaderboard
    from leaderboard.significance import BootstrapConfig
    from tas_bench.runtime.errors import TasBenchError

    if args.bootstrap < 1:
        raise TasBenchError("must be at least 1", field="--bootstrap")
    if not 0.0 < args.alpha < 1.0:
        raise TasBenchError("must be between 0 and 1", field="--alpha")
    s = build_leaderboard(args.results, args.out, include_published=not args.no_published,
                          bootstrap=BootstrapConfig(args.bootstrap, args.seed, args.alpha),
                          figures=not args.no_figures)
    for prob in s.problems:  # the board is still built: these are warnings, even with --strict
        kind = "left out" if prob.severity == "error" else "note"
        print(f"tas-bench: warning ({kind}): {prob.path}: {prob.message}", file=sys.stderr)
    print(f"leaderboard: {s.n_measured} measured result(s), {s.n_published} published row(s), "
          f"{len(s.errors)} results folder(s) left out, {len(s.problems)} problem(s)")
    print(f"tables: {', '.join(str(p) for p in s.files if p.suffix in ('.md',))}")
    print(f"page: {s.index_html}")
    if args.strict and s.errors:
        print("tas-bench: --strict: some results folders were left out", file=sys.stderr)
        return 1
    return 0
