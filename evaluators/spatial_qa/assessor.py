"""The spatial-QA assessor: encoder -> projector -> causal LM, BAT's prompt, greedy answers.

Sequence layout (SLAM-LLM / BAT): ``[audio slots][prompt][answer][eos]``, the audio slots being
the projector's ``n_queries`` embeddings, the prompt BAT's template around the question
(:data:`PROMPT`, starting with the tokenizer's BOS token). The training loss is the LM's
cross-entropy on the answer tokens and the EOS only.

Decoding is greedy, batched, with the LM's KV cache: prompts are left-padded (attention mask 0,
position ids counted from each row's first real token), so a row's answer does not depend on
the other rows of the batch; at most ``max_new_tokens`` tokens per answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from evaluators.spatial_qa.encoder import SpatialAudioEncoder
from evaluators.spatial_qa.projector import QFormerProjector

PROMPT = ("Based on the audio you've heard, refer to the instruction and provide a response."
          "\n\n### Instruction:\n{question}\n\n### Response:")
IGNORE = -100


@dataclass(frozen=True)
class ProjectorConfig:
    """Q-Former shape: ``n_queries`` audio slots, ``n_layers`` layers, ``heads`` heads."""

    n_queries: int = 8
    n_layers: int = 1
    heads: int = 4
    #: two class-bound source slots after the queries (:class:`~evaluators.spatial_qa.projector.
    #: BoundSourceSlots`); needs an encoder with class-bound heads
    bound_slots: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["bound_slots"]:  # assessors made before the option keep their model hash
            del d["bound_slots"]
        return d


def build_projector(encoder: SpatialAudioEncoder, llm_width: int, config: ProjectorConfig
                    ) -> QFormerProjector:
    """The projector ``config`` describes, from ``encoder``'s width to ``llm_width``."""
    enc = encoder.config
    if config.bound_slots and not enc.bound_heads:
        from tas_bench.runtime.errors import TasBenchError

        raise TasBenchError("bound_slots needs an encoder with class-bound heads (bound_weight > 0)",
                            field="projector.bound_slots")
    return QFormerProjector(enc.dim, llm_width, config.n_queries, config.n_layers, config.heads,
                            bound_classes=enc.n_classes if config.bound_slots else 0)


PROJECTOR_PRESETS = {"paper": ProjectorConfig(n_queries=64, n_layers=8, heads=12),
                     "cpu": ProjectorConfig(n_queries=8, n_layers=1, heads=4)}


class SpatialQAAssessor(nn.Module):
    """Answers spatial questions about binaural audio (see module doc)."""

    def __init__(self, encoder: SpatialAudioEncoder, projector: QFormerProjector, llm: Any,
                 tokenizer: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector
        self.llm = llm
        self.tokenizer = tokenizer

    # ---- pieces ---------------------------------------------------------------------------
    def audio_embeddings(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 2, N) audio at 32 kHz -> (B, n_slots, llm_width) audio slots."""
        return self.slots_from_tokens(self.encoder(wav))

    def slots_from_tokens(self, tokens: torch.Tensor, *, train_heads: bool = True) -> torch.Tensor:
        """The projector's audio slots (B, n_slots, llm_width) of encoder ``tokens`` (with
        bound source slots, from the encoder's heads on the same tokens too; without
        ``train_heads`` no gradient reaches the heads, as for a frozen encoder)."""
        heads = None
        if self.projector.bound is not None:
            with torch.set_grad_enabled(train_heads and torch.is_grad_enabled()):
                heads = self.encoder.heads(tokens)
        return self.projector(tokens, heads)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.llm.get_input_embeddings()(ids)

    def _prompt_ids(self, question: str) -> list[int]:
        tok = self.tokenizer
        ids = tok(PROMPT.format(question=question), add_special_tokens=False)["input_ids"]
        return [tok.bos_token_id, *ids] if tok.bos_token_id is not None else list(ids)

    def _answer_ids(self, answer: str) -> list[int]:
        ids = self.tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"]
        return [*ids, self.tokenizer.eos_token_id]

    # ---- training ---------------------------------------------------------------------------
    def loss(self, audio: torch.Tensor, questions: list[str], answers: list[str]) -> torch.Tensor:
        """Mean cross-entropy over answer + EOS tokens of a batch (right-padded rows).

        ``audio`` (B, 2, N) at 32 kHz holds one row per (question, answer) pair.
        """
        return self.loss_from_slots(self.audio_embeddings(audio), questions, answers)

    def loss_from_slots(self, slots: torch.Tensor, questions: list[str], answers: list[str]
                        ) -> torch.Tensor:
        """:meth:`loss` from precomputed audio slots (B, n_queries, llm_width)."""
        b, n_slots, width = slots.shape
        rows = [(self._prompt_ids(q), self._answer_ids(a)) for q, a in zip(questions, answers)]
        length = n_slots + max(len(p) + len(a) for p, a in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((b, length - n_slots), pad, dtype=torch.long)
        labels = torch.full((b, length), IGNORE, dtype=torch.long)
        mask = torch.zeros(b, length, dtype=torch.long)
        for i, (p, a) in enumerate(rows):
            seq = p + a
            ids[i, : len(seq)] = torch.tensor(seq)
            labels[i, n_slots + len(p): n_slots + len(seq)] = torch.tensor(a)
            mask[i, : n_slots + len(seq)] = 1
        embeds = torch.cat([slots, self._embed(ids.to(slots.device)).to(slots.dtype)], dim=1)
        out = self.llm(inputs_embeds=embeds, attention_mask=mask.to(slots.device),
                       labels=labels.to(slots.device), use_cache=False)
        return out.loss

    # ---- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def answer(self, audio: torch.Tensor, questions: list[str], *, max_new_tokens: int = 12
               ) -> list[str]:
        """Greedy answers, one per (audio row, question), batched with a KV cache."""
        return self.answer_from_slots(self.audio_embeddings(audio), questions,
                                      max_new_tokens=max_new_tokens)

    @torch.no_grad()
    def answer_from_slots(self, slots: torch.Tensor, questions: list[str], *,
                          max_new_tokens: int = 12, return_ids: bool = False) -> Any:
        """:meth:`answer` from precomputed audio slots (B, n_queries, llm_width); with
        ``return_ids`` also the generated token ids of each row (EOS excluded)."""
        b, n_slots, _ = slots.shape
        prompts = [self._prompt_ids(q) for q in questions]
        plen = max(len(p) for p in prompts)
        length = n_slots + plen
        pad = self.tokenizer.pad_token_id
        eos = self.tokenizer.eos_token_id
        dev = slots.device
        embeds = torch.zeros(b, length, slots.shape[-1], dtype=slots.dtype, device=dev)
        mask = torch.zeros(b, length, dtype=torch.long, device=dev)
        for i, p in enumerate(prompts):
            start = plen - len(p)  # left padding
            row = torch.cat([slots[i], self._embed(torch.tensor(p, device=dev)).to(slots.dtype)])
            embeds[i, start:] = row
            mask[i, start:] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=True)
        past = out.cache
        next_tok = out.logits[:, -1].argmax(-1)
        done = torch.zeros(b, dtype=torch.bool, device=dev)
        generated: list[list[int]] = [[] for _ in range(b)]
        last_pos = pos[:, -1]
        for _ in range(max_new_tokens):
            for i in range(b):
                if not done[i] and int(next_tok[i]) != eos:
                    generated[i].append(int(next_tok[i]))
            done |= next_tok == eos
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones(b, 1, dtype=mask.dtype, device=dev)], dim=1)
            last_pos = last_pos + 1
            tok_in = torch.where(done, torch.full_like(next_tok, pad), next_tok)
            out = self.llm(input_ids=tok_in[:, None], attention_mask=mask,
                           position_ids=last_pos[:, None], cache=past, use_cache=True)
            past = out.cache
            next_tok = out.logits[:, -1].argmax(-1)
        texts = [self.tokenizer.decode(g, skip_special_tokens=True).strip() for g in generated]
        return (texts, generated) if return_ids else texts

    @torch.no_grad()
    def answer_one_by_one(self, audio: torch.Tensor | None, questions: list[str], *,
                          max_new_tokens: int = 12, slots: torch.Tensor | None = None
                          ) -> list[str]:
        """The straightforward reference: one ``llm.generate()`` call per item (benchmarks);
        from ``audio`` or from precomputed audio ``slots``."""
        answers = []
        for i, q in enumerate(questions):
            one = slots[i: i + 1] if slots is not None else self.audio_embeddings(audio[i: i + 1])
            slots_i = one
            p = torch.tensor(self._prompt_ids(q), device=slots_i.device)
            embeds = torch.cat([slots_i[0], self._embed(p).to(slots_i.dtype)])[None]
            out = self.llm.generate(inputs_embeds=embeds,
                                    attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long,
                                                              device=slots_i.device),
                                    max_new_tokens=max_new_tokens, do_sample=False,
                                    eos_token_id=self.tokenizer.eos_token_id,
                                    pad_token_id=self.tokenizer.pad_token_id)
            answers.append(self.tokenizer.decode(out[0], skip_special_tokens=True).strip())
        return answers


# ---- persistence: the shared run-folder format (tas_bench.runtime.runs) ------------------------------
FORMAT = "tas-bench-spatial-qa/1"
WHAT = "spatial-QA assessor"
KINDS = ("assessor",)
LLM_SUBFOLDER = "llm"


def assessor_structure(a: SpatialQAAssessor, projector: ProjectorConfig, llm: dict[str, Any],
                       labels: list[str]) -> dict[str, Any]:
    """What decides the shapes of an assessor's tensors (hashed into ``model_hash``)."""
    return {"encoder": a.encoder.config.to_dict(), "projector": projector.to_dict(),
            "llm": llm, "labels": labels}


def trainable_state(a: SpatialQAAssessor, *, external: bool, with_llm: bool) -> dict[str, Any]:
    """Tensors to save: encoder and projector, plus the LoRA adapters (external LLM) or, with
    ``with_llm``, the whole scratch LM (checkpoints for resume; the final scratch LM goes to
    ``llm/`` through ``save_pretrained``)."""
    state = {f"encoder.{k}": v for k, v in a.encoder.state_dict().items()}
    state.update({f"projector.{k}": v for k, v in a.projector.state_dict().items()})
    if external:
        from peft import get_peft_model_state_dict

        state.update({f"lora.{k}": v for k, v in get_peft_model_state_dict(a.llm).items()})
    elif with_llm:
        state.update({f"llm.{k}": v for k, v in a.llm.state_dict().items()})
    return state


def load_trainable_state(a: SpatialQAAssessor, tensors: dict[str, Any], *, external: bool,
                         where: Any) -> None:
    """Inverse of :func:`trainable_state` (``llm.*`` tensors are loaded when present)."""
    from tas_bench.runtime.errors import TasBenchError

    def part(prefix: str) -> dict[str, Any]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    try:
        a.encoder.load_state_dict(part("encoder."))
        a.projector.load_state_dict(part("projector."))
        if external:
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(a.llm, part("lora."))
        elif part("llm."):
            a.llm.load_state_dict(part("llm."))
    except RuntimeError as exc:
        raise TasBenchError(f"weights do not fit the recorded config ({str(exc).splitlines()[0]})",
                            path=where) from None


class LoadedAssessor:
    """A finished assessor run opened for inference (what the kind's ``load`` returns)."""

    def __init__(self, model: SpatialQAAssessor, config: dict[str, Any], structure: dict[str, Any],
                 checkpoint_sha256: str, model_hash: str, name: str, root: Any) -> None:
        self.model = model
        self.config = config
        self.structure = structure
        self.checkpoint_sha256 = checkpoint_sha256
        self.model_hash = model_hash
        self.name = name
        self.root = root

    def card(self) -> dict[str, Any]:
        from tas_bench.runtime.runs import revision

        return {"name": self.name, "kind": "assessor",
                "revision": revision(self.checkpoint_sha256, self.model_hash),
                "checkpoint_sha256": self.checkpoint_sha256, "model_hash": self.model_hash,
                "encoder_preset": self.structure["encoder"]["preset"], "llm": self.structure["llm"]}


def load_assessor_run(path: Any, *, name: str | None = None, expect_sha256: str | None = None,
                      device: str = "cpu", llm_path: Any = None, preset: str | None = None
                      ) -> LoadedAssessor:
    """Open a finished assessor run (or shipped folder) for inference.

    ``llm_path`` is required when the assessor was trained on an external LLM; that folder's
    fingerprint must equal the recorded one. ``preset``, when given, must equal the encoder
    preset the checkpoint was trained for. A scratch LM is read from ``llm/`` (its weights'
    sha256 is recorded in the model file).
    """
    import json
    from pathlib import Path

    from evaluators.spatial_qa.encoder import EncoderConfig
    from evaluators.spatial_qa.llm import llm_fingerprint, load_llm
    from tas_bench.runtime.errors import TasBenchError
    from tas_bench.runtime.fileio import sha256_file, stable_hash
    from tas_bench.runtime.runs import open_model_dir

    md = open_model_dir(path, fmt=FORMAT, what=WHAT, kinds=KINDS, expect_sha256=expect_sha256)
    try:
        structure = json.loads(md.meta["assessor"])
        enc_cfg = EncoderConfig(**structure["encoder"])
        proj_cfg = ProjectorConfig(**structure["projector"])
        llm_meta = dict(structure["llm"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TasBenchError(f"malformed assessor metadata ({exc})", path=md.model_path) from None
    md.check_model(kind=md.config["kind"], model_hash=stable_hash(structure))
    if preset is not None and enc_cfg.preset != preset:
        raise TasBenchError(f"checkpoint was trained for encoder preset {enc_cfg.preset!r}, "
                            f"not {preset!r}", path=md.model_path)
    external = llm_meta.get("kind") == "external"
    if external:
        if llm_path is None:
            raise TasBenchError("this assessor was trained on an external LLM: pass its folder "
                                f"(fingerprint {str(llm_meta.get('fingerprint'))[:12]}…) as "
                                "spatial_qa.llm_path", path=md.root)
        fp = llm_fingerprint(Path(llm_path))
        if fp != llm_meta.get("fingerprint"):
            raise TasBenchError(f"LLM folder fingerprint {fp[:12]}… differs from the one the "
                                f"assessor was trained on ({str(llm_meta.get('fingerprint'))[:12]}…)",
                                path=llm_path)
        llm, tok = load_llm(Path(llm_path), lora=True)
    else:
        llm_dir = md.root / LLM_SUBFOLDER
        weights = llm_dir / "model.safetensors"
        if not weights.is_file() or sha256_file(weights) != md.meta.get("llm_sha256"):
            raise TasBenchError("the scratch LLM's weights are missing or differ from the ones "
                                "recorded in model.safetensors", path=weights)
        llm, tok = load_llm(llm_dir, lora=False)
    enc = SpatialAudioEncoder(enc_cfg)
    width = llm.get_input_embeddings().weight.shape[1]
    model = SpatialQAAssessor(enc, build_projector(enc, width, proj_cfg), llm, tok)
    load_trainable_state(model, md.tensors, external=external, where=md.model_path)
    model.eval().to(device)
    return LoadedAssessor(model, md.config, structure, md.sha256, md.meta["model_hash"],
                          name or md.config.get("name") or Path(path).name, md.root)
