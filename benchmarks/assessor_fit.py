"""Does a spatial-QA assessor generalise or fit its training clips? Its accuracy per QA
category on a split of a dataset, straight from the dataset's QA items.

    python benchmarks/assessor_fit.py --assessor RUN_OR_NAME --data DATA --split train \
        --out FILE.json [--two-source] [--clips 300] [--categories Direction Distance] [--threads 2]

Scores the first ``--clips`` clips of ``--split`` (with ``--two-source`` only two-source clips)
with ``evaluators.spatial_qa.train.evaluate_qa`` -- the trainer's validation scoring: greedy
answers, ``tas_bench.data.qa.answer_correct`` per item, accuracy over items. Run on the
assessor's own training split and on a held-out split, the difference is how much of the
training accuracy is fitted to those clips (for the class-bound-slot assessors: Direction
73 % on training clips, 50 % on unseen ones; evaluators/checkpoints/spatial-qa-demo/README.md,
"Relations"). Written to ``--out`` (JSON) and printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assessor", required=True, help="assessor run folder or registered name")
    ap.add_argument("--data", required=True, type=Path, help="dataset folder")
    ap.add_argument("--split", default="train", help="split to score (default: train)")
    ap.add_argument("--out", required=True, type=Path, help="JSON report")
    ap.add_argument("--two-source", action="store_true", help="only the two-source clips")
    ap.add_argument("--clips", type=int, default=300, help="at most this many clips (first ones)")
    ap.add_argument("--categories", nargs="+", default=None,
                    help="only the items of these QA categories (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    import json

    import torch

    from evaluators.spatial_qa import data as qa_data
    from evaluators.spatial_qa.assessor import load_assessor_run
    from evaluators.spatial_qa.evaluator import resolve_assessor
    from evaluators.spatial_qa.train import evaluate_qa
    from tas_bench.data.manifest import dataset_fingerprint, load_dataset
    from tas_bench.runtime.errors import TasBenchError

    torch.set_num_threads(a.threads)
    try:
        if a.clips < 1:
            raise TasBenchError(f"expected a positive number of clips, got {a.clips}", field="--clips")
        loaded = load_assessor_run(resolve_assessor(a.assessor))
        ds = load_dataset(a.data)
        clips = [c for c in ds.clips if c.split == a.split
                 and (not a.two_source or len(c.sources) == 2)][: a.clips]
        items = [e for e in qa_data.qa_examples(clips)
                 if a.categories is None or e.category in a.categories]
        if not items:
            raise TasBenchError(f"no QA items in split {a.split!r} with these filters", path=a.data)
        model = loaded.model
        feats = qa_data.split_features(model.encoder.front, ds, clips)
        acc = evaluate_qa(model, feats, items,
                          max_new_tokens=int(loaded.config.get("max_new_tokens", 12)))
    except TasBenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = {c: sum(e.category == c for e in items) for c in acc}
    report = {"assessor": {"name": loaded.name, "sha256": loaded.checkpoint_sha256},
              "data": {"path": str(a.data), "fingerprint": dataset_fingerprint(a.data),
                       "split": a.split, "clips": len(clips), "two_source": a.two_source},
              "accuracy": {c: {"accuracy": v, "items": counts[c]} for c, v in sorted(acc.items())}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{loaded.name} on {a.data} ({a.split}, {len(clips)} clips): " + ", ".join(
        f"{c} {v['accuracy']:.3f} ({v['items']})" for c, v in report["accuracy"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
