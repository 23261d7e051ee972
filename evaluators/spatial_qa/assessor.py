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

from dataclasses import dataclass
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
        """(B, 2, N) audio at 32 kHz -> (B, n_queries, llm_width) audio slots."""
        return self.projector(self.encoder(wav))

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
        slots = self.audio_embeddings(audio)
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
        slots = self.audio_embeddings(audio)
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
        return [self.tokenizer.decode(g, skip_special_tokens=True).strip() for g in generated]

    @torch.no_grad()
    def answer_one_by_one(self, audio: torch.Tensor, questions: list[str], *,
                          max_new_tokens: int = 12) -> list[str]:
        """The straightforward reference: one ``llm.generate()`` call per item (benchmarks)."""
        answers = []
        for i, q in enumerate(questions):
            slots = self.audio_embeddings(audio[i: i + 1])
            p = torch.tensor(self._prompt_ids(q), device=slots.device)
            embeds = torch.cat([slots[0], self._embed(p).to(slots.dtype)])[None]
            out = self.llm.generate(inputs_embeds=embeds,
                                    attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long,
                                                              device=slots.device),
                                    max_new_tokens=max_new_tokens, do_sample=False,
                                    eos_token_id=self.tokenizer.eos_token_id,
                                    pad_token_id=self.tokenizer.pad_token_id)
            answers.append(self.tokenizer.decode(out[0], skip_special_tokens=True).strip())
        return answers
