"""Registered systems against one of them on a test split: every per-clip metric's mean and the
leaderboard's one-sided paired bootstrap, in one reproducible command.

    python benchmarks/compare_systems.py --data TEST --out DIR \
        --systems tas-demo mono-mono --against pseudobinaural-demo [--single-source] \
        [--evaluators cues signal] [--bootstrap 2000] [--seed 0] [--threads 1]

For each system (``--against`` included) the test clips of ``TEST`` (with ``--single-source``
only the one-source ones, where left/right and octant accuracy are defined; their subset folder
is ``DIR/data``) are generated into ``DIR/pred/<system>`` with ``tas-bench generate``'s code
(resumable) and scored into ``DIR/res/<system>`` as ``tas-bench score`` does. For every
per-clip metric with a direction, each system is compared with ``--against`` over the clips
both scored (:func:`leaderboard.significance.paired_bootstrap`, the test behind the
leaderboard's † marks): ``diff`` is the mean difference in the metric's unit, positive when
the system is better, and ``p`` the share of resampled mean differences on the wrong side.
Printed and written to ``DIR/comparison.csv`` (``DIR/comparison.json`` adds the dataset
fingerprint, the systems' revisions and the bootstrap settings). Same data, systems and seed
give the same file.

Use it to measure a difference with more clips than the demo test split has: 50 single-source
clips give a 95 % CI of about ±13 points on an accuracy; ``--n-test 3200`` gives 800.

    python benchmarks/compare_systems.py --pool DIR1 DIR2 ... --out DIR \
        --systems tas-demo --against pseudobinaural-demo

pools the per-clip results of earlier runs (each ``DIRi`` an ``--out`` of this script) into one
comparison over all their clips (ids prefixed with their dataset's fingerprint), so that a
difference is tested once on every split measured rather than split by split. Refused: a
split pooled twice, or a system whose results in some ``DIRi`` are of another revision than
the registered one.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Any


def compare(per_clip: dict[str, Any], metrics: Any, against: str, n_boot: int,
            seed: int) -> list[dict[str, Any]]:
    """Rows (system, metric, n, mean, against_mean, diff, p) for every per-clip metric with a
    direction; ``per_clip`` maps a system to its per-clip DataFrame (``id`` + metric columns),
    ``metrics`` is the against-system's metrics table (for the directions). The cues themselves
    (``itd_pred_us`` ..., the leaderboard's informational columns) are left out; ceilings
    measured on the references (``*_ref``) get their mean and no test."""
    from leaderboard.collect import INFORMATIONAL
    from leaderboard.significance import BootstrapConfig, paired_bootstrap

    cfg = BootstrapConfig(n_boot=n_boot, seed=seed)
    rows = []
    base = per_clip[against].set_index("id")
    for name, table in per_clip.items():
        t = table.set_index("id")
        for metric, spec in metrics.iterrows():
            hib = spec["higher_is_better"]
            if (not spec["per_clip"] or hib is None or metric in INFORMATIONAL
                    or metric not in t or metric not in base):
                continue
            a = {k: float(v) for k, v in t[metric].items() if not math.isnan(float(v))}
            b = {k: float(v) for k, v in base[metric].items() if not math.isnan(float(v))}
            shared = sorted(set(a) & set(b))
            row: dict[str, Any] = {
                "system": name, "metric": metric, "n": len(shared),
                "mean": float(sum(a[k] for k in shared) / len(shared)) if shared else math.nan,
                "against": against,
                "against_mean": float(sum(b[k] for k in shared) / len(shared)) if shared else math.nan,
                "diff": math.nan, "p": math.nan}
            if name != against and not metric.endswith("_ref"):
                res = paired_bootstrap(a, b, higher_is_better=bool(hib), config=cfg)
                if res is not None:
                    row["diff"], row["p"] = res.mean_diff, res.p_value
            rows.append(row)
    return rows


def pooled_per_clip(dirs: list[Path], names: list[str], against: str, revisions: dict[str, Any]
                    ) -> tuple[dict[str, Any], Any, list[dict[str, Any]]]:
    """Per-clip tables of ``names`` over the results of several earlier runs (``dirs``, each
    holding ``res/<system>``), ids prefixed with the first 12 hex digits of their dataset's
    fingerprint; the first run's metrics table of ``against`` (one of ``names``); and
    one record per run (folder, dataset fingerprint, clips). A dataset met twice, or a
    system's results of another revision than ``revisions[name]``, raise ``TasBenchError``."""
    import pandas as pd

    from tas_bench.pipeline.api import load_results
    from tas_bench.runtime.errors import TasBenchError

    tables: dict[str, list[Any]] = {n: [] for n in names}
    runs, seen, metrics = [], {}, None
    for d in dirs:
        fingerprint = None
        for name in names:
            res = load_results(d / "res" / name)
            rev = res.system.get("revision")
            if rev != revisions[name]:
                raise TasBenchError(f"results of {name} are of revision {rev}, the registered "
                                    f"system is {revisions[name]}: regenerate them",
                                    path=d / "res" / name)
            fp = str(res.dataset.get("fingerprint"))
            if fingerprint is None:
                fingerprint = fp
                if fp in seen:
                    raise TasBenchError(f"the same dataset ({fp[:12]}) as {seen[fp]}: a split "
                                        "can be pooled once", path=d)
                seen[fp] = d
            elif fp != fingerprint:
                raise TasBenchError(f"results of {name} are on dataset {fp[:12]}, the others "
                                    f"on {fingerprint[:12]}", path=d / "res" / name)
            t = res.per_clip.copy()
            t["id"] = [f"{fp[:12]}:{i}" for i in t["id"]]
            tables[name].append(t)
            if metrics is None and name == against:
                metrics = res.metrics
        runs.append({"dir": str(d.resolve()), "dataset_fingerprint": fingerprint,
                     "clips": int(len(tables[against][-1]))})
    return {n: pd.concat(ts, ignore_index=True) for n, ts in tables.items()}, metrics, runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path)
    src.add_argument("--pool", nargs="+", type=Path,
                     help="earlier --out folders of this script, compared as one split")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--systems", nargs="+", required=True)
    ap.add_argument("--against", required=True, help="the system every other is compared with")
    ap.add_argument("--single-source", action="store_true", help="only one-source test clips")
    ap.add_argument("--evaluators", nargs="+", default=["cues"])
    ap.add_argument("--bootstrap", type=int, default=2000, help="resamples (the leaderboard's)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed (the leaderboard's)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--batch-size", type=int, default=8)
    a = ap.parse_args(argv)

    import torch

    from baselines.registry import describe, load_system
    from tas_bench.data.manifest import dataset_fingerprint
    from tas_bench.data.subset import single_source_test, subset_dataset
    from tas_bench.pipeline.api import score
    from tas_bench.pipeline.generate import generate_predictions
    from tas_bench.runtime.errors import TasBenchError

    torch.set_num_threads(a.threads)
    names = list(dict.fromkeys([*a.systems, a.against]))
    if a.pool:
        try:
            revisions = {n: describe(n).get("revision") for n in names}  # no weights loaded
            per_clip, metrics, runs = pooled_per_clip(a.pool, names, a.against, revisions)
        except TasBenchError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return _write(a, compare(per_clip, metrics, a.against, a.bootstrap, a.seed),
                      {"pooled": runs, "systems": revisions})
    try:
        data = subset_dataset(a.data, a.out / "data", keep=single_source_test) \
            if a.single_source else a.data
        per_clip, revisions, metrics = {}, {}, None
        for name in names:
            system = load_system(name)
            revisions[name] = system.card().get("revision")
            pred = a.out / "pred" / name
            gen = generate_predictions(system, data, pred, batch_size=a.batch_size, progress=False)
            res = score(data, pred, a.evaluators, out=a.out / "res" / name, system_name=name,
                        progress=False)
            per_clip[name] = res.per_clip
            if name == a.against:
                metrics = res.metrics
            print(f"{name}: {gen['clips']} clips generated and scored", flush=True)
    except TasBenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = compare(per_clip, metrics, a.against, a.bootstrap, a.seed)
    return _write(a, rows, {"data": str(Path(data).resolve()),
                            "dataset_fingerprint": dataset_fingerprint(data),
                            "systems": revisions, "evaluators": a.evaluators})


def _write(a: argparse.Namespace, rows: list[dict[str, Any]], about: dict[str, Any]) -> int:
    """``rows`` to ``a.out``/comparison.csv and comparison.json (with ``about``), and printed."""
    from tas_bench.runtime.fileio import write_json_atomic

    a.out.mkdir(parents=True, exist_ok=True)
    with open(a.out / "comparison.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    write_json_atomic(a.out / "comparison.json", {
        **about, "against": a.against,
        "bootstrap": {"n_boot": a.bootstrap, "seed": a.seed, "test": "one-sided paired"},
        "rows": [{k: None if isinstance(v, float) and math.isnan(v) else v
                  for k, v in r.items()} for r in rows]})
    for r in rows:
        tail = "" if math.isnan(r["p"]) else f"  diff {r['diff']:+.4g}  p {r['p']:.4f}"
        print(f"{r['system']:>24} {r['metric']:>20}  n {r['n']:4d}  mean {r['mean']:.4g}"
              f"  ({a.against} {r['against_mean']:.4g}){tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
