"""The ``spatial_qa`` evaluator: Table 2's understanding gaps (DOA, DE, Direction, Distance).

For every QA item of a scored clip the assessor answers twice, on the reference audio and on
the prediction; :func:`tas_bench.data.qa.answer_correct` scores each answer against the manifest's
truth (REFERENCE.md §6 Decision). Per clip and category: accuracy on the reference
(``*_acc_ref``), on the prediction (``*_acc_pred``) and the gap
``100 x (acc_ref - acc_pred)`` in percentage points (``*_gap``, lower is better; NaN for a clip
without items of that category). The runner averages over clips (each clip weighs the same),
with the bootstrap CI; the leaderboard's paired bootstrap compares systems on the gaps.

An answer the scorer cannot read is wrong and counted (``unparseable_pred`` /
``unparseable_ref``: fraction of a clip's items). Items of a category outside the four are
left out and counted in ``unknown_items``. Every answer is kept (``answers`` array, written
by the runner to ``qa_answers.jsonl`` in the results folder). Reference answers depend only on
the reference audio, the questions and the assessor, so they are cached under that key (when
the runner hands a cache) and computed once per dataset and assessor, not per system.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from evaluators.base import ClipInput, ClipOutput, Evaluator, MetricSpec
from tas_bench.runtime.errors import TasBenchError

CATEGORIES = ("DOA", "DE", "Direction", "Distance")
DEFAULT_ASSESSOR = "spatial-qa-demo"
SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


def _metrics() -> tuple[MetricSpec, ...]:
    out = []
    for cat in CATEGORIES:
        k = cat.lower()
        out.append(MetricSpec(f"{k}_gap", False, "pp",
                              f"{cat} accuracy on the reference minus on the prediction"))
        out.append(MetricSpec(f"{k}_acc_ref", True, "fraction", f"{cat} accuracy, reference audio"))
        out.append(MetricSpec(f"{k}_acc_pred", True, "fraction", f"{cat} accuracy, prediction"))
    out.append(MetricSpec("unparseable_pred", False, "fraction",
                          "answers on the prediction the scorer cannot read"))
    out.append(MetricSpec("unparseable_ref", False, "fraction",
                          "answers on the reference the scorer cannot read"))
    out.append(MetricSpec("unknown_items", False, "count",
                          "QA items of a category outside DOA/DE/Direction/Distance (left out)"))
    return tuple(out)


def resolve_assessor(name: str) -> Path:
    """Folder of an assessor: a path, a shipped name, or one registered with
    ``tas-bench register NAME RUN``."""
    from tas_bench.runtime.systems_store import registered_run_folder

    p = Path(name)
    if p.is_dir():
        return p
    shipped = SHIPPED / name
    if shipped.is_dir():
        return shipped
    folder = registered_run_folder("assessor", name)
    if folder is not None:
        return Path(folder)
    raise TasBenchError(f"no assessor named {name!r} (a run folder, a shipped assessor in "
                        f"{SHIPPED}, or one registered with `tas-bench register`)",
                        field="spatial_qa.assessor")


def _parseable(category: str, answer: str, truth: str = "") -> bool:
    from tas_bench.data.qa import normalize_answer, parse_direction, parse_distance, states_vertical

    if category == "DOA":  # a horizontal truth ("left, front") asks for two words only
        return parse_direction(answer, vertical=states_vertical(truth) or not truth) is not None
    if category == "DE":
        return parse_distance(answer) is not None
    return bool(normalize_answer(answer))


class SpatialQAEvaluator(Evaluator):
    """Accuracy gaps of a spatial-QA assessor between reference and prediction (module doc).

    Options: ``assessor`` (name or folder, default ``spatial-qa-demo``), ``llm_path`` (the LLM
    folder of an assessor trained on an external LLM), ``max_new_tokens`` (answer bound, 12),
    ``device`` ("cpu").
    """

    name: ClassVar[str] = "spatial_qa"
    version: ClassVar[str] = "1.0"
    needs: ClassVar[tuple[str, ...]] = ("qa",)
    sample_rate: int = 32000
    batch_size: int = 8
    metrics: ClassVar[tuple[MetricSpec, ...]] = _metrics()

    def __init__(self, assessor: str = DEFAULT_ASSESSOR, llm_path: str | None = None,
                 max_new_tokens: int = 12, device: str = "cpu") -> None:
        if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or not 1 <= max_new_tokens <= 256:
            raise TasBenchError(f"expected an integer in [1, 256], got {max_new_tokens!r}",
                                field="spatial_qa.max_new_tokens")
        self.assessor_name = assessor
        self.llm_path = llm_path
        self.max_new_tokens = max_new_tokens
        self.device = device
        self._model: Any = None
        self._identity: dict[str, Any] | None = None
        self.aux_cache: Any = None  # set by the runner: an OutputCache, or None

    # ---- identity ----------------------------------------------------------------------------
    def _folder(self) -> Path:
        return resolve_assessor(self.assessor_name)

    def identity(self) -> dict[str, Any]:
        """Name, revision and weight hashes of the assessor (recorded like a backbone's)."""
        if self._identity is None:
            card = self._load().card()
            self._identity = {"name": self.assessor_name, "revision": card["revision"],
                              "encoder_preset": card["encoder_preset"], "llm": card["llm"],
                              "sha256": card["checkpoint_sha256"],
                              "model_hash": card["model_hash"]}
        return self._identity

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "max_new_tokens": self.max_new_tokens,
                "assessor": self.assessor_name}

    def weights_info(self) -> dict[str, dict[str, Any]]:
        ident = self.identity()
        return {f"assessor:{ident['name']}": {"role": "assessor", "sha256": ident["sha256"],
                                             "revision": ident["revision"],
                                             "llm": ident["llm"], "custom": False}}

    def check_requirements(self, dataset: Any) -> str | None:
        if not any(c.qa for c in dataset.clips):
            return "the dataset has no QA items"
        try:
            self.identity()
        except TasBenchError as exc:
            return str(exc)
        return None

    def _load(self) -> Any:
        """The loaded assessor run (:class:`evaluators.spatial_qa.assessor.LoadedAssessor`)."""
        if self._model is None:
            from evaluators.spatial_qa.assessor import load_assessor_run

            self._model = load_assessor_run(self._folder(), name=self.assessor_name,
                                            llm_path=self.llm_path, device=self.device)
        return self._model

    # ---- answering ---------------------------------------------------------------------------
    def _answers(self, audio: list[np.ndarray], questions: list[list[str]]) -> list[list[str]]:
        """Answers to each clip's questions: every clip encoded once (alone, so its length alone
        decides its features), then all questions decoded in batches from the audio slots."""
        import torch

        from evaluators.spatial_qa.encoder import loudness_normalize

        model = self._load().model
        slots, rows_q, owner = [], [], []
        with torch.no_grad():
            for i, (x, qs) in enumerate(zip(audio, questions)):
                if not qs:
                    continue
                wav = torch.from_numpy(np.ascontiguousarray(loudness_normalize(x)))[None]
                emb = model.audio_embeddings(wav.float().to(self.device))
                for q in qs:
                    slots.append(emb)
                    rows_q.append(q)
                    owner.append(i)
        out: list[list[str]] = [[] for _ in audio]
        step = 32
        for s in range(0, len(rows_q), step):
            answers = model.answer_from_slots(torch.cat(slots[s: s + step]), rows_q[s: s + step],
                                              max_new_tokens=self.max_new_tokens)
            for j, a in enumerate(answers):
                out[owner[s + j]].append(a)
        return out

    def _ref_key(self, item: ClipInput, questions: list[str]) -> str:
        h = hashlib.sha256(np.ascontiguousarray(item.ref, dtype=np.float64).tobytes()).hexdigest()
        return hashlib.sha256(json.dumps({"evaluator": self.name, "version": self.version,
                                          "config": self.config(),
                                          "assessor": self.identity()["sha256"], "ref": h,
                                          "questions": questions}, sort_keys=True)
                              .encode()).hexdigest()

    def _reference_answers(self, batch: list[ClipInput], questions: list[list[str]]
                           ) -> list[list[str]]:
        cache = self.aux_cache
        out: list[list[str] | None] = [None] * len(batch)
        keys = [self._ref_key(b, q) for b, q in zip(batch, questions)]
        if cache is not None:
            for i, k in enumerate(keys):
                hit = cache.get(k)
                if hit is not None and "ref_answers" in hit.arrays:
                    out[i] = json.loads(bytes(hit.arrays["ref_answers"]).decode("utf-8"))
        todo = [i for i, o in enumerate(out) if o is None]
        fresh = self._answers([batch[i].ref for i in todo], [questions[i] for i in todo])
        for i, ans in zip(todo, fresh):
            out[i] = ans
            if cache is not None:
                blob = np.frombuffer(json.dumps(ans).encode("utf-8"), dtype=np.uint8)
                cache.put(keys[i], ClipOutput(values={}, arrays={"ref_answers": blob}))
        return [o or [] for o in out]

    def process_batch(self, batch: list[ClipInput]) -> list[ClipOutput]:
        from tas_bench.data.qa import answer_correct

        items = [[q for q in b.clip.qa if q.category in CATEGORIES] for b in batch]
        unknown = [len(b.clip.qa) - len(it) for b, it in zip(batch, items)]
        questions = [[q.question for q in it] for it in items]
        ref_ans = self._reference_answers(batch, questions)
        pred_ans = self._answers([b.pred for b in batch], questions)
        outs = []
        for b, it, ra, pa, unk in zip(batch, items, ref_ans, pred_ans, unknown):
            values: dict[str, float] = {}
            records = []
            for cat in CATEGORIES:
                idx = [i for i, q in enumerate(it) if q.category == cat]
                k = cat.lower()
                if not idx:
                    values.update({f"{k}_acc_ref": float("nan"), f"{k}_acc_pred": float("nan"),
                                   f"{k}_gap": float("nan")})
                    continue
                rc = [answer_correct(cat, it[i].question_type, ra[i], it[i].answer) for i in idx]
                pc = [answer_correct(cat, it[i].question_type, pa[i], it[i].answer) for i in idx]
                values[f"{k}_acc_ref"] = float(np.mean(rc))
                values[f"{k}_acc_pred"] = float(np.mean(pc))
                values[f"{k}_gap"] = 100.0 * (values[f"{k}_acc_ref"] - values[f"{k}_acc_pred"])
            n = max(1, len(it))
            values["unparseable_pred"] = (sum(not _parseable(q.category, a, q.answer)
                                              for q, a in zip(it, pa)) / n if it else float("nan"))
            values["unparseable_ref"] = (sum(not _parseable(q.category, a, q.answer)
                                             for q, a in zip(it, ra)) / n if it else float("nan"))
            values["unknown_items"] = float(unk)
            for q, r, p in zip(it, ra, pa):
                records.append({"clip": b.clip.id, "category": q.category,
                                "question_type": q.question_type, "question": q.question,
                                "truth": q.answer, "answer_ref": r, "answer_pred": p,
                                "correct_ref": answer_correct(q.category, q.question_type, r, q.answer),
                                "correct_pred": answer_correct(q.category, q.question_type, p, q.answer)})
            blob = np.frombuffer(json.dumps(records, sort_keys=True).encode("utf-8"), dtype=np.uint8)
            outs.append(ClipOutput(values=values, arrays={"answers": blob}))
        return outs

    def result_files(self, outputs: dict[str, ClipOutput]) -> dict[str, bytes]:
        """``qa_answers.jsonl``: every answer of every clip, in the runner's clip order."""
        lines = []
        for out in outputs.values():
            if "answers" in out.arrays:
                for rec in json.loads(bytes(out.arrays["answers"]).decode("utf-8")):
                    lines.append(json.dumps(rec, sort_keys=True))
        return {"qa_answers.jsonl": ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")}
