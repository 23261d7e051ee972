"""What does a spatial-QA assessor's encoder perceive? Its geometry heads scored on test splits.

    python benchmarks/assessor_heads.py --assessor RUN_OR_NAME --data TEST [TEST ...] --out FILE.json
        [--threads 1]

For every test split (reference audio): on the one-source clips, the one-source heads'
direction words (``tas_bench.data.geometry.direction_words`` of the argmax azimuth and
elevation bins, each word scored where the source has that axis; ``words``: all of them right) and
their distance within 0.5 m; with class-bound heads (``bound_weight``), the same per source
for the one-source and for the two-source clips (``bound_accuracy`` of
``evaluators.spatial_qa.train``). These are the encoder's share of the DOA and DE questions:
the language model can only pass on what the heads' tokens hold.

With class-bound heads also ``bound_relations``: the Direction and Distance items of the
two-source clips answered by reading the class-bound heads directly -- the two named classes'
left / front / above logits or expected distances compared, the relation word applied
(:class:`tas_bench.data.qa.RelationReading`) -- and scored as the evaluator scores; per
category and per axis (D front/back, E left/right, F above/below, G distance). That is what a
language model reading the heads' relations without error would get (the "how far apart" items
and items naming a label the assessor never saw are counted as ``skipped``). Written to
``--out`` (JSON) and printed.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any


def one_source_words(heads: dict[str, Any], clips: list[Any]) -> dict[str, float]:
    """Accuracy of the one-source heads' direction words and distance (within 0.5 m) over
    ``clips`` (one-source clips, rows of ``heads`` in the same order)."""
    import numpy as np

    from evaluators.spatial_qa.encoder import DISTANCE_STEP
    from tas_bench.data.geometry import direction_words

    az = heads["az"].argmax(-1).float().tolist()
    el = (heads["el"].argmax(-1).float() - 90.0 + 0.5).tolist()
    dist = (heads["dist"].argmax(-1).float() * DISTANCE_STEP).tolist()
    ok: dict[str, list[bool]] = {"left": [], "front": [], "above": [], "words": [],
                                 "dist_within_0.5": []}
    for i, c in enumerate(clips):
        s = c.sources[0]
        words = set(s.direction)
        predicted = set(direction_words(az[i], el[i]))
        pred = {w: w in predicted for w in ("left", "front", "above")}
        good = []
        for w, other in (("left", "right"), ("front", "behind"), ("above", "below")):
            if words & {w, other}:
                ok[w].append(pred[w] == (w in words))
                good.append(ok[w][-1])
        ok["words"].append(all(good))
        ok["dist_within_0.5"].append(abs(dist[i] - s.distance) <= 0.5 + 1e-9)
    return {k: float(np.mean(v)) if v else math.nan for k, v in ok.items()}


def bound_relations(heads: dict[str, Any], clips: list[Any], labels: list[str]) -> dict[str, Any]:
    """Accuracy of the relational items of ``clips`` answered from the class-bound heads
    (rows of ``heads`` in the order of ``clips``; see the module doc)."""
    import numpy as np

    from evaluators.spatial_qa.projector import bound_geometry
    from tas_bench.data.qa import answer_correct, relation_readings

    geo = bound_geometry(heads)  # left, front, above logits; expected distance / 10 m
    axis = {"E": 0, "D": 1, "F": 2, "G": 3}
    index = {lab: i for i, lab in enumerate(labels)}
    hits: dict[str, list[bool]] = {}
    skipped = 0
    for row, clip in enumerate(clips):
        for item in clip.qa:
            if item.category not in ("Direction", "Distance"):
                continue
            known = [r for r in relation_readings(item.question_type, item.question)
                     if r.a.strip() in index and r.b.strip() in index]
            if not known:
                skipped += 1
                continue
            r = known[0]
            va = float(geo[row, index[r.a.strip()], axis[r.rtype]])
            vb = float(geo[row, index[r.b.strip()], axis[r.rtype]])
            ok = answer_correct(item.category, item.question_type, r.answer(va > vb), item.answer)
            hits.setdefault(item.category, []).append(ok)
            hits.setdefault(f"axis_{r.rtype}", []).append(ok)
    return {**{k: {"accuracy": float(np.mean(v)), "items": len(v)} for k, v in sorted(hits.items())},
            "skipped": skipped}


def head_report(loaded: Any, root: Path) -> dict[str, Any]:
    """The heads' accuracies on ``root``'s test split (see the module doc)."""
    import torch

    from evaluators.spatial_qa import data as qa_data
    from evaluators.spatial_qa.train import bound_accuracy
    from tas_bench.data.manifest import dataset_fingerprint, load_dataset

    enc = loaded.model.encoder.eval()
    labels = loaded.structure["labels"]
    ds = load_dataset(root)
    clips = ds.split("test")
    feats = qa_data.split_features(enc.front, ds, clips)
    with torch.no_grad():
        h = enc.heads(enc.forward_features(feats))
    geo = qa_data.geometry_labels(clips, labels)
    one = [i for i, c in enumerate(clips) if len(c.sources) == 1]
    two = [i for i, c in enumerate(clips) if len(c.sources) == 2]
    out: dict[str, Any] = {"path": str(root), "fingerprint": dataset_fingerprint(root),
                           "one_source_clips": len(one), "two_source_clips": len(two),
                           "one_source_heads": one_source_words({k: v[one] for k, v in h.items()},
                                                                [clips[i] for i in one])}
    if "bound_dir" in h:
        for name, idx in (("bound_heads_one_source", one), ("bound_heads_two_source", two)):
            out[name] = bound_accuracy({k: v[idx] for k, v in h.items()},
                                       {k: v[idx] for k, v in geo.items()}) if idx else None
        if two:
            out["bound_relations"] = bound_relations({k: v[two] for k, v in h.items()},
                                                     [clips[i] for i in two], labels)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assessor", required=True, help="assessor run folder or registered name")
    ap.add_argument("--data", required=True, type=Path, nargs="+", help="datasets with a test split")
    ap.add_argument("--out", required=True, type=Path, help="JSON report")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    import json

    import torch

    from evaluators.spatial_qa.assessor import load_assessor_run
    from evaluators.spatial_qa.evaluator import resolve_assessor
    from tas_bench.runtime.errors import TasBenchError

    torch.set_num_threads(a.threads)
    try:
        loaded = load_assessor_run(resolve_assessor(a.assessor))
        reports = [head_report(loaded, d) for d in a.data]
    except TasBenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = {"assessor": {"name": loaded.name, "sha256": loaded.checkpoint_sha256,
                           "encoder": loaded.structure["encoder"]}, "splits": reports}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    for r in reports:
        print(r["path"], f"({r['one_source_clips']} one-source, {r['two_source_clips']} two-source clips)")
        for key in ("one_source_heads", "bound_heads_one_source", "bound_heads_two_source"):
            if r.get(key):
                print(f"  {key}: " + ", ".join(f"{k} {v:.3f}" for k, v in r[key].items()))
        if r.get("bound_relations"):
            print("  bound_relations: " + ", ".join(
                f"{k} {v['accuracy']:.3f} ({v['items']})" if isinstance(v, dict) else f"{k} {v}"
                for k, v in r["bound_relations"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
