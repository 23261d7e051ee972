"""Can the assessor's language model answer the spatial questions when its audio slots are
perfect? A diagnostic for the spatial-QA assessor (issue: Direction and Distance sit at the
answer priors).

    python benchmarks/qa_oracle_slots.py --train TRAIN --test TEST --out FILE.json \
        [--assessor spatial-qa-demo] [--steps 5000] [--batch-size 32] [--lr 5e-4] [--seed 0]
        [--hidden H] [--layers L]

Instead of encoder + Q-Former slots, each clip gets two *oracle* slots built from the
manifest's ground truth, one per source in manifest order (a one-source clip's second slot
is a learnt "no source" vector): a learnt embedding of the source's label plus a linear map of
its geometry (sin/cos azimuth, sin/cos elevation, distance / 10 m, and +1/-1/0 for its
left, front and above words). A fresh language model of the assessor's size (its tokenizer
and config, new random weights, seed ``--seed``) is trained on ``TRAIN``'s QA items with the
assessor's QA recipe (AdamW, 5 % warm-up then cosine, gradient norm clipped to 1), then
answers ``TEST``'s items greedily, scored with ``tas_bench.data.qa.answer_correct``, as the
``spatial_qa`` evaluator scores. Labels of ``TEST`` unseen in ``TRAIN`` get the shared
"unknown label" embedding.

The per-category accuracies (with a 95 % bootstrap CI over items) are an upper bound of what
the language model and prompt can do with this much QA training: far above the shipped
assessor's means its encoder and projector are the bottleneck, near it means the language
model is. Written to ``--out`` (JSON) and printed.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from pathlib import Path
from typing import Any

GEOMETRY = 8  # sin/cos az, sin/cos el, distance / 10 m, left, front, above
CARTESIAN = 3  # with --cartesian: x (front), y (left), z (up) / 10 m


def source_geometry(src: Any, cartesian: bool = False, position_unit: float = 10.0
                    ) -> list[float]:
    """The oracle geometry vector of one source (see module doc); angles in degrees, the
    azimuth counter-clockwise from the front as in the manifest, distance in metres. With
    ``cartesian`` the source's position (x front, y left, z up, in units of ``position_unit``
    metres, 10 by default) is appended: the coordinates the relational answers compare."""
    az, el = math.radians(src.azimuth), math.radians(src.elevation)
    words = set(src.direction)
    axis = [(1.0 if a in words else -1.0 if b in words else 0.0)
            for a, b in (("left", "right"), ("front", "behind"), ("above", "below"))]
    geo = [math.sin(az), math.cos(az), math.sin(el), math.cos(el), src.distance / 10.0, *axis]
    if cartesian:
        from tas_bench.data.prompts import position

        geo += [float(v) / position_unit for v in position(src)]
    return geo


def oracle_tables(clips: list[Any], labels: list[str], cartesian: bool = False,
                  position_unit: float = 10.0) -> tuple[Any, Any, Any]:
    """Per clip and slot (2): label index (0 = unknown, len(labels) + 1 = no source), geometry
    (N, 2, GEOMETRY [+ CARTESIAN]) and a presence mask (N, 2)."""
    import torch

    index = {lab: i + 1 for i, lab in enumerate(labels)}
    none = len(labels) + 1
    lab = torch.full((len(clips), 2), none, dtype=torch.long)
    geo = torch.zeros(len(clips), 2, GEOMETRY + (CARTESIAN if cartesian else 0))
    for i, c in enumerate(clips):
        for j, s in enumerate(c.sources[:2]):
            lab[i, j] = index.get(s.label, 0)
            geo[i, j] = torch.tensor(source_geometry(s, cartesian, position_unit))
    return lab, geo, lab != none


class OracleSlots:
    """Label embedding + linear geometry map -> (B, 2, width) slots.

    With ``text_labels`` (a callable giving the language model's input embeddings of token
    ids) and ``label_tokens`` (the token ids of each label), a known label's vector is the mean
    of its own words' input embeddings, shared with the language model, instead of a separate
    learnt vector: the slot names its sound in the words the question uses. The unknown and
    "no source" entries stay learnt vectors."""

    def __init__(self, n_labels: int, width: int, n_geometry: int = GEOMETRY,
                 text_labels: Any = None, label_tokens: list[list[int]] | None = None) -> None:
        import torch

        self.label = torch.nn.Embedding(n_labels + 2, width)
        self.geometry = torch.nn.Linear(n_geometry, width)
        torch.nn.init.normal_(self.label.weight, std=0.02)
        torch.nn.init.normal_(self.geometry.weight, std=0.02)
        self.text_labels = text_labels
        if text_labels is not None:
            if label_tokens is None or len(label_tokens) != n_labels:
                raise ValueError("text_labels needs the token ids of every label")
            longest = max(len(t) for t in label_tokens)
            self.tokens = torch.zeros(n_labels, longest, dtype=torch.long)
            self.token_mask = torch.zeros(n_labels, longest)
            for i, t in enumerate(label_tokens):
                self.tokens[i, : len(t)] = torch.tensor(t)
                self.token_mask[i, : len(t)] = 1.0

    def parameters(self) -> list[Any]:
        return [*self.label.parameters(), *self.geometry.parameters()]

    def label_table(self) -> Any:
        """(n_labels + 2, width): unknown, the labels, "no source"."""
        if self.text_labels is None:
            return self.label.weight
        import torch

        words = self.text_labels(self.tokens) * self.token_mask[..., None]
        mean = words.sum(1) / self.token_mask.sum(1, keepdim=True)
        return torch.cat([self.label.weight[:1], mean, self.label.weight[-1:]])

    def __call__(self, lab: Any, geo: Any, present: Any) -> Any:
        return self.label_table()[lab] + self.geometry(geo) * present[..., None].float()


def recombined_pairs(clips: list[Any], n: int, seed: int) -> list[Any]:
    """``n`` extra two-source clips for the relational questions, made without audio: each
    pairs two sources of ``clips`` (label and geometry kept together, distinct labels) as a
    ``relative_direction`` or ``relative_distance`` clip, with its QA items drawn by
    :func:`tas_bench.data.qa.make_qa` (pairs that allow no unambiguous question are redrawn).
    Only the oracle can use them: they test whether more relational items teach the language
    model the comparison."""
    import dataclasses

    import numpy as np

    from tas_bench.data.qa import label_key, make_qa
    from tas_bench.runtime.errors import TasBenchError

    pool = [s for c in clips for s in c.sources]
    if len({label_key(s.label) for s in pool}) < 2:
        raise TasBenchError("--extra-pairs needs sources of at least two different labels in "
                            "the train split", field="--extra-pairs")
    template = next((c for c in clips if len(c.sources) == 2), clips[0])
    rng = np.random.default_rng([seed, 3])
    out: list[Any] = []
    for _ in range(1000 + 100 * n):
        if len(out) == n:
            break
        a, b = (pool[int(i)] for i in rng.integers(0, len(pool), size=2))
        if label_key(a.label) == label_key(b.label):
            continue
        category = ("relative_direction", "relative_distance")[int(rng.integers(2))]
        try:
            qa = make_qa(category, [a, b], rng)
        except ValueError:
            continue
        out.append(dataclasses.replace(template, id=f"pair-{len(out)}", category=category,
                                       sources=[a, b], qa=qa))
    if len(out) < n:
        raise TasBenchError(f"found only {len(out)} of {n} source pairs that allow a relational "
                            "question", field="--extra-pairs")
    return out


def accuracy_with_ci(hits: list[bool]) -> dict[str, Any]:
    """Share of ``hits`` and its 95 % bootstrap CI, as every results file computes it
    (:func:`tas_bench.runtime.stats.summarize`)."""
    from tas_bench.runtime.stats import summarize

    s = summarize([float(h) for h in hits])
    return {"n": s["n"], "accuracy": s["mean"], "ci95": s["ci95"]}


def run(train: Path, test: Path, assessor: str, steps: int, batch_size: int, lr: float,
        seed: int, threads: int = 1, hidden: int | None = None,
        layers: int | None = None, extra_pairs: int = 0, cartesian: bool = False,
        train_types: list[str] | None = None, position_unit: float = 10.0,
        weight_decay: float = 0.01, text_labels: bool = False,
        curriculum_steps: int = 0, curriculum_types: list[str] | None = None
        ) -> dict[str, Any]:
    """Train the oracle-slot language model and score it (see module doc); ``hidden`` /
    ``layers`` replace the assessor's LM width (heads of 32 dims, MLP 2.6875x as the cpu
    preset's 128 / 344) and depth; ``extra_pairs`` adds that many :func:`recombined_pairs`
    clips to the training items; ``cartesian`` appends the sources' positions to the slots;
    ``train_types`` keeps only the training items of those question types; ``position_unit``
    is the unit (metres) of those positions; ``weight_decay`` AdamW's; ``text_labels`` makes
    each slot's label vector the mean input embedding of the label's words
    (:class:`OracleSlots`); for the first ``curriculum_steps`` steps the relational items
    that ask for the smaller value are left out (:func:`tas_bench.data.qa.asks_larger`) and,
    with ``curriculum_types``, only the items of those question types are drawn."""
    import numpy as np
    import torch
    from transformers import LlamaForCausalLM

    from evaluators.spatial_qa.assessor import load_assessor_run
    from evaluators.spatial_qa.data import label_vocabulary, qa_examples
    from evaluators.spatial_qa.evaluator import resolve_assessor
    from evaluators.spatial_qa.train import curriculum_examples, stage_lr_factor
    from tas_bench.data.manifest import load_dataset
    from tas_bench.data.qa import answer_correct
    from tas_bench.runtime.errors import TasBenchError

    torch.set_num_threads(threads)
    tr_clips = [c for c in load_dataset(train).clips if c.split == "train" and c.qa]
    te_clips = [c for c in load_dataset(test).clips if c.split == "test" and c.qa]
    if not tr_clips or not te_clips:
        which = "train split of --train" if not tr_clips else "test split of --test"
        raise TasBenchError(f"no QA items in the {which}", path=train if not tr_clips else test)
    loaded = load_assessor_run(resolve_assessor(assessor))
    model = loaded.model
    if loaded.structure["llm"].get("kind") == "external":
        raise TasBenchError("the oracle diagnostic trains a scratch language model; this "
                            "assessor's is external", field="--assessor")
    labels = label_vocabulary(tr_clips)
    if extra_pairs:
        tr_clips = tr_clips + recombined_pairs(tr_clips, extra_pairs, seed)
    torch.manual_seed(seed)
    config = copy.deepcopy(model.llm.config)  # the assessor's size and tokenizer, new weights
    if hidden is not None:
        config.hidden_size, config.num_attention_heads = hidden, max(1, hidden // 32)
        config.num_key_value_heads = config.num_attention_heads
        config.intermediate_size = int(round(hidden * 2.6875))
    if layers is not None:
        config.num_hidden_layers = layers
    model.llm = LlamaForCausalLM(config)
    width = model.llm.get_input_embeddings().weight.shape[1]
    label_tokens = [model.tokenizer(" " + lab, add_special_tokens=False)["input_ids"]
                    for lab in labels] if text_labels else None
    slots = OracleSlots(len(labels), width, GEOMETRY + (CARTESIAN if cartesian else 0),
                        model.llm.get_input_embeddings() if text_labels else None, label_tokens)
    tr = oracle_tables(tr_clips, labels, cartesian, position_unit)
    te = oracle_tables(te_clips, labels, cartesian, position_unit)
    examples = qa_examples(tr_clips)
    if train_types:
        examples = [e for e in examples if e.question_type in set(train_types)]
        if not examples:
            raise TasBenchError(f"no training items of the types {train_types}",
                                field="--train-types")
    first = curriculum_examples(examples, curriculum_types)
    if curriculum_types and not first:
        raise TasBenchError(f"no training items of the types {curriculum_types}",
                            field="--curriculum-types")
    params = [*model.llm.parameters(), *slots.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng([seed, 2])
    model.llm.train()
    losses = []
    for step in range(steps):
        frac = step / max(1, steps)
        for g in opt.param_groups:
            g["lr"] = lr * stage_lr_factor(frac)
        pool = first if step < curriculum_steps else examples
        ex = [pool[i] for i in rng.integers(0, len(pool), size=batch_size)]
        idx = torch.tensor([e.clip for e in ex])
        s = slots(tr[0][idx], tr[1][idx], tr[2][idx])
        loss = model.loss_from_slots(s, [e.question for e in ex], [e.answer for e in ex])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 500 == 0:
            print(f"step {step + 1}: loss {np.mean(losses[-500:]):.4f}", flush=True)
    model.llm.eval()
    items = qa_examples(te_clips)
    hits: dict[str, list[bool]] = {}
    by_type: dict[str, list[bool]] = {}
    with torch.no_grad():
        for b in range(0, len(items), 64):
            chunk = items[b:b + 64]
            idx = torch.tensor([e.clip for e in chunk])
            answers = model.answer_from_slots(slots(te[0][idx], te[1][idx], te[2][idx]),
                                              [e.question for e in chunk])
            for e, a in zip(chunk, answers, strict=True):
                ok = answer_correct(e.category, e.question_type, a, e.answer)
                hits.setdefault(e.category, []).append(ok)
                by_type.setdefault(e.question_type, []).append(ok)
    return {"train": str(train), "test": str(test), "assessor": assessor, "steps": steps,
            "batch_size": batch_size, "lr": lr, "seed": seed, "labels": len(labels),
            "llm": {"hidden": config.hidden_size, "layers": config.num_hidden_layers,
                    "heads": config.num_attention_heads, "intermediate": config.intermediate_size,
                    "parameters": int(sum(p.numel() for p in model.llm.parameters()))},
            "extra_pairs": extra_pairs, "cartesian": cartesian,
            "position_unit": position_unit if cartesian else None, "weight_decay": weight_decay,
            "text_labels": text_labels, "curriculum_steps": curriculum_steps,
            "curriculum_types": sorted(curriculum_types) if curriculum_types else None,
            "train_types": sorted(train_types) if train_types else None,
            "train_items": len(examples),
            "final_loss": float(np.mean(losses[-100:])),
            "accuracy": {k: accuracy_with_ci(v) for k, v in sorted(hits.items())},
            "accuracy_by_question_type": {k: accuracy_with_ci(v)
                                          for k, v in sorted(by_type.items())}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, type=Path, help="dataset with a train split")
    ap.add_argument("--test", required=True, type=Path, help="dataset with a test split")
    ap.add_argument("--out", required=True, type=Path, help="JSON report")
    ap.add_argument("--assessor", default="spatial-qa-demo")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, help="LM width instead of the assessor's")
    ap.add_argument("--layers", type=int, help="LM depth instead of the assessor's")
    ap.add_argument("--extra-pairs", type=int, default=0,
                    help="add this many audio-free recombined two-source clips to training")
    ap.add_argument("--cartesian", action="store_true",
                    help="append each source's x/y/z position to its oracle slot")
    ap.add_argument("--position-unit", type=float, default=10.0,
                    help="with --cartesian: the positions' unit in metres (default 10)")
    ap.add_argument("--weight-decay", type=float, default=0.01, help="AdamW's weight decay")
    ap.add_argument("--text-labels", action="store_true",
                    help="each slot's label vector = the mean input embedding of its words")
    ap.add_argument("--curriculum-steps", type=int, default=0,
                    help="leave out the items asking for the smaller value for this many steps")
    ap.add_argument("--curriculum-types", nargs="+", metavar="QUESTION_TYPE",
                    help="during the curriculum steps draw only items of these types")
    ap.add_argument("--train-types", nargs="+", metavar="QUESTION_TYPE",
                    help="train on the items of these question types only")
    a = ap.parse_args(argv)
    from tas_bench.runtime.errors import TasBenchError
    from tas_bench.runtime.fileio import write_json_atomic

    try:
        if not a.position_unit > 0:
            raise TasBenchError(f"must be a positive number of metres, got {a.position_unit}",
                                field="--position-unit")
        if a.curriculum_steps < 0:
            raise TasBenchError(f"must be >= 0, got {a.curriculum_steps}",
                                field="--curriculum-steps")
        report = run(a.train, a.test, a.assessor, a.steps, a.batch_size, a.lr, a.seed, a.threads,
                     a.hidden, a.layers, a.extra_pairs, a.cartesian, a.train_types,
                     a.position_unit, a.weight_decay, a.text_labels, a.curriculum_steps,
                     a.curriculum_types)
    except TasBenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_json_atomic(a.out, report)
    for cat, r in report["accuracy"].items():
        ci = "" if r["ci95"] is None else f" [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]"
        print(f"{cat:>10}: {100 * r['accuracy']:.1f} %{ci}  (n {r['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
