"""How much of a one-source clip's direction and distance do its clip-level interaural cues
hold? A diagnostic for the spatial-QA encoder (issue: DOA and DE far below target).

    python benchmarks/probe_clip_cues.py --train TRAIN --test TEST [TEST ...] --out FILE.json
        [--threads 1] [--seed 0]

For every one-source clip of ``TRAIN``'s train split and of each ``TEST``'s test split, the
reference audio goes through the assessor's preparation (32 kHz, -14 dBFS) and the ``lr4lt``
front end, whose clip-level maps (:func:`evaluators.spatial_qa.encoder.clip_level_cues`: ILD
in nats and interaural coherence, 128 mel bands each) give 256 numbers per clip. Standardised, they
feed a logistic regression and a one-hidden-layer MLP (256 units, scikit-learn, seeded), fitted
on the train clips and scored on the test clips, for: the three direction words exactly (the
DOA question), each word alone (left/right, front/back, above/below; horizontal sources have
no vertical word and are left out of that one), and the distance within 0.5 m (the DE
question; classes of 0.5 m).

Reading: a probe far above the encoder's own heads says the information is in the audio and
the encoder does not extract it; the probe is a lower bound of what the clip-level cues hold
(a linear model and one small MLP). Written to ``--out`` (JSON, with 95 % bootstrap CIs over
clips) and printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def clip_cue_table(root: Path, split: str) -> tuple[Any, list[dict[str, Any]]]:
    """(N, 256) clip-level cues of the one-source clips of ``root``'s ``split`` and their
    labels (``words``: the direction words joined by ", ", ``left`` / ``front`` / ``above``:
    bool or None when the axis has no word, ``distance``: metres)."""
    import numpy as np
    import torch

    from evaluators.spatial_qa.data import prepare_audio
    from evaluators.spatial_qa.encoder import SpatialFrontEnd
    from tas_bench.data.manifest import load_dataset
    from tas_bench.runtime.audio_io import read_audio

    front = SpatialFrontEnd(16, long_term=True)
    ds = load_dataset(root)
    rows, labels = [], []
    for c in ds.split(split):
        if len(c.sources) != 1:
            continue
        a = read_audio(ds.audio_path(c), channels=2, dtype="float64")
        w = torch.from_numpy(np.ascontiguousarray(prepare_audio(a.samples, a.sample_rate)))
        with torch.no_grad():
            rows.append(front.clip_cues(front.raw(w[None].float()))[0].numpy())
        s = c.sources[0]
        d = set(s.direction)
        labels.append({"words": ", ".join(s.direction), "distance": float(s.distance),
                       **{w: (w in d) if (d & {w, o}) else None
                          for w, o in (("left", "right"), ("front", "behind"),
                                       ("above", "below"))}})
    return np.array(rows), labels


def probe(xtr: Any, ytr: list[dict[str, Any]], xte: Any, yte: list[dict[str, Any]],
          seed: int = 0) -> dict[str, Any]:
    """Test accuracies (with 95 % bootstrap CIs) of a logistic regression and an MLP per
    target; see the module doc."""
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tas_bench.runtime.stats import summarize

    def fit_score(target: str, model: str) -> dict[str, Any]:
        def value(y: dict[str, Any]) -> Any:
            return round(2 * y["distance"]) if target == "distance" else y[target]
        tr = [i for i, y in enumerate(ytr) if value(y) is not None]
        te = [i for i, y in enumerate(yte) if value(y) is not None]
        if len({value(ytr[i]) for i in tr}) < 2 or not te:
            return {"accuracy": None, "ci95": None, "n_test": len(te),
                    "skipped": "fewer than two classes in the train clips or no test clip"}
        clf = (LogisticRegression(C=0.1, max_iter=5000) if model == "logistic" else
               MLPClassifier((256,), alpha=1e-2, max_iter=500, random_state=seed))
        m = make_pipeline(StandardScaler(), clf)
        with warnings.catch_warnings():  # an MLP stopped at max_iter is still a valid probe
            warnings.simplefilter("ignore", ConvergenceWarning)
            m.fit(xtr[tr], np.array([str(value(ytr[i])) for i in tr]))
        pred = m.predict(xte[te])
        if target == "distance":
            ok = np.array([abs(int(p) / 2 - yte[i]["distance"]) <= 0.5 + 1e-9
                           for p, i in zip(pred, te)], dtype=float)
        else:
            ok = np.array([p == str(value(yte[i])) for p, i in zip(pred, te)], dtype=float)
        s = summarize(ok)
        return {"accuracy": s["mean"], "ci95": s["ci95"], "n_test": len(te)}

    return {t: {m: fit_score(t, m) for m in ("logistic", "mlp")}
            for t in ("words", "left", "front", "above", "distance")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, type=Path, help="dataset with a train split")
    ap.add_argument("--test", required=True, type=Path, nargs="+",
                    help="datasets with a test split")
    ap.add_argument("--out", required=True, type=Path, help="JSON report")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    import json

    import numpy as np
    import torch

    from tas_bench.data.manifest import dataset_fingerprint
    from tas_bench.runtime.errors import TasBenchError

    torch.set_num_threads(a.threads)
    try:
        xtr, ytr = clip_cue_table(a.train, "train")
        parts = [clip_cue_table(t, "test") for t in a.test]
        if not len(xtr) or not sum(len(p[1]) for p in parts):
            raise TasBenchError("no one-source clips to fit or to test on", field="--train/--test")
    except TasBenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    xte = np.concatenate([p[0] for p in parts if len(p[1])])
    yte = [y for p in parts for y in p[1]]
    report = {"train": {"path": str(a.train), "fingerprint": dataset_fingerprint(a.train),
                        "one_source_clips": len(ytr)},
              "test": [{"path": str(t), "fingerprint": dataset_fingerprint(t),
                        "one_source_clips": len(p[1])} for t, p in zip(a.test, parts)],
              "features": "clip_level_cues: ILD (nats) and coherence, 128 mel bands each",
              "seed": a.seed, "results": probe(xtr, ytr, xte, yte, a.seed)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    for target, r in report["results"].items():
        print(f"{target:9s} " + "  ".join(
            f"{m} skipped ({v['skipped']})" if v["accuracy"] is None else
            f"{m} {v['accuracy']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}] (n={v['n_test']})"
            for m, v in r.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
