"""``tas-bench weights``: list, add, verify and download pretrained weights in the local store."""

from __future__ import annotations

import argparse
import sys

from tas_bench.runtime import weights as store


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "weights",
        help="manage the local store of pretrained weights (PANNs, VGGish, ...)",
        description=f"The store folder is ${store.ENV_VAR} or ~/.cache/tas-bench/weights.",
    )
    sub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    sub.add_parser("list", help="known and installed weights, their status and sha256")
    a = sub.add_parser("add", help="install a file you have as weight NAME")
    a.add_argument("name", metavar="NAME")
    a.add_argument("path", metavar="PATH")
    a.add_argument("--force", action="store_true", help="replace a different file of that name")
    a.add_argument("--link", action="store_true",
                   help="symlink to PATH instead of copying (PATH must stay where it is)")
    v = sub.add_parser("verify", help="rehash every installed weight (no cached hash is used) and "
                                      "compare with the published and the recorded sha256; exit 1 "
                                      "if a known weight is not official or a file changed")
    v.add_argument("name", metavar="NAME", nargs="?")
    d = sub.add_parser("download", help="download a weight (needs network; resumable)",
                       description="Download weights into the store, size and sha256 checked. "
                                   "With --if-reachable (what `make demo` runs): one line per "
                                   "file (fetched / already present / not reachable), exit 0 "
                                   "when the address cannot be reached.")
    d.add_argument("name", metavar="NAME", nargs="*")
    d.add_argument("--all", action="store_true",
                   help=f"every known official file ({', '.join(store.KNOWN)})")
    d.add_argument("--if-reachable", action="store_true",
                   help="skip files already in the store and go on, saying so, when an address "
                        "cannot be reached (exit 0); other failures exit 1")
    d.add_argument("--url", help="http(s) address to fetch from (required for names tas-bench "
                                 "does not know; one NAME, not with --if-reachable)")
    d.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
    d.add_argument("--connect-timeout", type=float, default=5.0,
                   help="with --if-reachable: seconds to wait for a connection")
    p.set_defaults(func=run, _weights_parser=p)


def _print_table(rows: list[store.WeightStatus]) -> None:
    print(f"{'NAME':32} {'STATUS':8} {'SHA256':64}  PATH")
    for r in rows:
        print(f"{r.name:32} {r.status:8} {(r.sha256 or '-'):64}  {r.path}")
        if r.note:
            print(f"{'':32} note: {r.note}")


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "weights_command", None)
    if action is None:
        args._weights_parser.print_help()
        return 2
    if action == "list":
        print(f"store: {store.weights_dir()}")
        _print_table(store.list_weights())
        return 0
    if action == "add":
        st = store.add_weight(args.name, args.path, force=args.force, link=args.link,
                              warn=lambda m: print(f"warning: {m}", file=sys.stderr))
        print(f"{st.name}: {st.status}, sha256 {st.sha256} -> {st.path}")
        return 0
    if action == "verify":
        rows = store.verify_weights(args.name)
        if not rows:
            print(f"no weights installed in {store.weights_dir()}")
            return 0
        _print_table(rows)
        bad = [r for r in rows if r.known and r.custom or "changed since" in r.note]
        return 1 if bad else 0
    if action == "download":
        return _download(args)
    raise AssertionError(action)


def _download(args: argparse.Namespace) -> int:
    from tas_bench.runtime.errors import TasBenchError

    if args.all and args.name:
        raise TasBenchError("give weight names or --all, not both", field="NAME")
    if not args.all and not args.name:
        raise TasBenchError("name the weight to download (or --all)", field="NAME")
    names = list(store.KNOWN) if args.all else args.name
    if args.url and len(names) != 1:
        raise TasBenchError("--url goes with exactly one NAME", field="--url")
    if args.if_reachable and args.url:
        raise TasBenchError("--if-reachable fetches the official files from their published "
                            "addresses; it does not take --url", field="--url")
    if args.if_reachable:
        rows = store.fetch_if_reachable(names, connect_timeout=args.connect_timeout,
                                        timeout=args.timeout,
                                        report=lambda r: print(r.line(), flush=True))
        missing = [r for r in rows if r.outcome in ("not reachable", "failed")]
        if missing:
            print(f"going on without {len(missing)} weight file(s): the generation evaluator "
                  f"(FD, FAD, KL, IS) is skipped without them; install them later with "
                  f"`tas-bench weights download NAME` or `tas-bench weights add NAME PATH` "
                  f"(store: {store.weights_dir()})")
        return 1 if any(r.outcome == "failed" for r in rows) else 0
    for name in names:
        def progress(got: int, total: int | None, name: str = name) -> None:
            if sys.stderr.isatty():
                frac = f" / {total}" if total else ""
                print(f"\r{name}: {got}{frac} bytes", end="", file=sys.stderr)

        st = store.download_weight(name, args.url, timeout=args.timeout, progress=progress)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        print(f"{st.name}: {st.status}, sha256 {st.sha256} -> {st.path}")
    return 0
