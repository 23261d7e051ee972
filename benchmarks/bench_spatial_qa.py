"""Spatial-QA assessor throughput on this machine (CPU), each against a reference run here.

1. QA answers per second: batched greedy decoding with the KV cache
   (:meth:`SpatialQAAssessor.answer_from_slots`) vs one ``llm.generate()`` call per item
   (:meth:`SpatialQAAssessor.answer_one_by_one`), from the same audio slots (the encoder is
   measured on its own below), same answers checked equal;
2. encoder clips per second (10-s binaural clips at 32 kHz, the cpu preset).

Uses the shipped ``spatial-qa-demo`` assessor when it is present, else a randomly initialised
one of the cpu preset (the speed does not depend on the weights).

Usage: ``python benchmarks/bench_spatial_qa.py [--items 64] [--batch 32]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = ["In which direction is the dog?", "How far away is the dog?",
             "Is the dog to the left of the bell?",
             "Of the dog and the bell, which is closer to the listener?"]


def _assessor():  # noqa: ANN202
    from evaluators.spatial_qa.evaluator import SHIPPED

    if (SHIPPED / "spatial-qa-demo" / "model.safetensors").is_file():
        from evaluators.spatial_qa.assessor import load_assessor_run

        return load_assessor_run(SHIPPED / "spatial-qa-demo").model, "spatial-qa-demo"
    from evaluators.spatial_qa.assessor import PROJECTOR_PRESETS, PROMPT, SpatialQAAssessor
    from evaluators.spatial_qa.encoder import SpatialAudioEncoder, encoder_config
    from evaluators.spatial_qa.llm import (
        ScratchLLMConfig,
        load_llm,
        new_scratch_llm,
        train_qa_tokenizer,
    )
    from evaluators.spatial_qa.projector import QFormerProjector

    d = Path(tempfile.mkdtemp(prefix="bench-qa-"))
    tok = train_qa_tokenizer([PROMPT.format(question=q) for q in QUESTIONS] +
                             ["left, front, above", "3.5m", "Yes", "No", "dog", "bell"], d,
                             vocab_size=400)
    new_scratch_llm(tok, ScratchLLMConfig(vocab=400), d)
    llm, tok = load_llm(d, lora=False)
    enc = SpatialAudioEncoder(encoder_config("cpu"))
    pc = PROJECTOR_PRESETS["cpu"]
    proj = QFormerProjector(enc.config.dim, llm.config.hidden_size, pc.n_queries, pc.n_layers,
                            pc.heads)
    return SpatialQAAssessor(enc, proj, llm, tok).eval(), "random cpu preset"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--clips", type=int, default=16)
    args = ap.parse_args()
    torch.manual_seed(0)
    model, what = _assessor()
    print(f"assessor: {what}, {torch.get_num_threads()} torch thread(s)")
    qs = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.items)]
    with torch.no_grad():
        audio = torch.randn(args.items, 2, 32000) * 0.05
        slots = model.audio_embeddings(audio)  # decoding is measured apart from the encoder
        model.answer_from_slots(slots[:2], qs[:2])  # warm-up
        model.answer_one_by_one(None, qs[:2], slots=slots[:2])
        t0 = time.perf_counter()
        batched = []
        for s in range(0, args.items, args.batch):
            batched += model.answer_from_slots(slots[s:s + args.batch], qs[s:s + args.batch])
        t_b = time.perf_counter() - t0
        t0 = time.perf_counter()
        single = model.answer_one_by_one(None, qs, slots=slots)
        t_s = time.perf_counter() - t0
        same = sum(a == b for a, b in zip(batched, single))
        print(f"QA decoding (from audio slots): batched (batch {args.batch}, KV cache) "
              f"{args.items / t_b:8.1f} items/s, one generate() per item {args.items / t_s:8.1f} "
              f"items/s, ratio {t_s / t_b:5.1f}x; identical answers {same}/{args.items}")
        clips = torch.randn(args.clips, 2, 320000) * 0.05
        model.encoder(clips[:1])
        t0 = time.perf_counter()
        for s in range(0, args.clips, 8):
            model.encoder(clips[s:s + 8])
        t_e = time.perf_counter() - t0
        print(f"encoder ({model.encoder.config.preset} preset): {args.clips / t_e:7.1f} ten-second "
              "clips/s")


if __name__ == "__main__":
    main()
