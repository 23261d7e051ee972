"""Text encoders for the text-conditioned PseudoBinaural: a pluggable ``prompt -> vector`` module.

* :class:`ScratchTextEncoder` (default, needs no download): lower-cased regex word tokens, a
  fixed vocabulary built from the training prompts (saved with the checkpoint as JSON; unknown
  words -> ``<unk>``), prompts truncated to ``max_tokens`` tokens, a word embedding and a
  bidirectional GRU mean-pooled over the tokens. Prompts of a batch are right-padded to the
  longest; the GRU runs over packed sequences, so padding never reaches a prompt's states
  (the backward direction starts at its own last token) and a prompt's vector does not depend
  on the other prompts of its batch. An empty prompt maps to a learned "no text"
  vector; a prompt in another language is mostly ``<unk>`` tokens and so behaves close to it.
* :class:`T5TextEncoder`: a FLAN-T5 encoder loaded from a local folder
  (``T5EncoderModel.from_pretrained(path, local_files_only=True)``), frozen, mean-pooled and
  projected; prompts truncated to ``t5_max_length`` T5 tokens. Its weights are not stored in our
  checkpoints; the checkpoint records a fingerprint of the folder instead.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tas_bench.errors import TasBenchError
from tas_bench.fileio import sha256_file, stable_hash

PAD, UNK = "<pad>", "<unk>"
_WORD_RE = re.compile(r"[a-z]+|\d+(?:\.\d+)?")


def tokenize(text: str) -> list[str]:
    """Lower-cased word and number tokens of ``text`` ("5.5m" -> ["5.5", "m"])."""
    return _WORD_RE.findall(text.lower())


def build_vocab(prompts: Iterable[str], min_count: int = 1) -> list[str]:
    """The vocabulary (``<pad>``, ``<unk>``, then words by descending count, ties alphabetical)."""
    counts = Counter(t for p in prompts for t in tokenize(p))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return [PAD, UNK, *words]


class ScratchTextEncoder(nn.Module):
    """Word embedding + bidirectional GRU, mean-pooled; outputs ``(B, text_dim)``."""

    def __init__(self, vocab: list[str], word_dim: int, text_dim: int, max_tokens: int) -> None:
        super().__init__()
        if len(vocab) < 2 or vocab[:2] != [PAD, UNK]:
            raise TasBenchError("text vocabulary must start with <pad>, <unk>", field="vocab")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_tokens = max_tokens
        self.embed = nn.Embedding(len(vocab), word_dim, padding_idx=0)
        self.gru = nn.GRU(word_dim, text_dim // 2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * (text_dim // 2), text_dim)
        self.null = nn.Parameter(torch.zeros(text_dim))

    def encode_ids(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``(B, L)`` and lengths ``(B,)``; empty prompts have length 0."""
        seqs = [[self.index.get(t, 1) for t in tokenize(p)][: self.max_tokens] for p in prompts]
        width = max(1, max(len(s) for s in seqs))
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        return ids, torch.tensor([len(s) for s in seqs], dtype=torch.long)

    def forward(self, prompts: list[str]) -> torch.Tensor:
        device = self.null.device
        ids, lengths = self.encode_ids(prompts)
        ids, lengths = ids.to(device), lengths.to(device)
        emb = self.embed(ids)
        if bool((lengths == ids.shape[1]).all()):
            h, _ = self.gru(emb)  # no padding at all: the plain call (same numbers as packed)
        else:
            packed = pack_padded_sequence(emb, lengths.clamp(min=1).cpu(), batch_first=True,
                                          enforce_sorted=False)
            h, _ = self.gru(packed)
            h, _ = pad_packed_sequence(h, batch_first=True, total_length=ids.shape[1])
        mask = (torch.arange(ids.shape[1], device=device)[None, :] < lengths[:, None]).to(h.dtype)
        pooled = (h * mask[..., None]).sum(1) / lengths.clamp(min=1)[:, None].to(h.dtype)
        vec = torch.tanh(self.out(pooled))
        empty = (lengths == 0)[:, None]
        return torch.where(empty, torch.tanh(self.null)[None, :].expand_as(vec), vec)


def t5_fingerprint(path: str | Path) -> str:
    """Identity of a local T5 folder: sha256 of its small files, (name, size) of weight files."""
    root = Path(path)
    parts: dict[str, Any] = {}
    for p in sorted(root.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        big = p.suffix in (".safetensors", ".bin", ".pt", ".h5", ".msgpack")
        parts[p.name] = f"size:{p.stat().st_size}" if big else sha256_file(p)
    return stable_hash(parts)


class T5TextEncoder(nn.Module):
    """Frozen FLAN-T5 encoder from a local folder, mean-pooled and projected to ``text_dim``."""

    def __init__(self, path: str | Path, text_dim: int, max_length: int) -> None:
        super().__init__()
        root = Path(path)
        if not root.is_dir():
            raise TasBenchError("FLAN-T5 folder not found", path=root,
                                hint="give a local folder holding a T5 encoder and its tokenizer")
        try:
            from transformers import AutoTokenizer, T5EncoderModel
        except ImportError:
            raise TasBenchError("the 't5' text encoder needs `pip install transformers sentencepiece`") from None
        try:
            tok = AutoTokenizer.from_pretrained(str(root), local_files_only=True)
            enc = T5EncoderModel.from_pretrained(str(root), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise TasBenchError(f"cannot load a T5 encoder and tokenizer from it ({exc})", path=root) from None
        enc.eval()
        for p in enc.parameters():
            p.requires_grad_(False)
        # kept outside the module tree: frozen, not stored in our checkpoints
        self._t5 = [enc]
        self.tokenizer = tok
        self.max_length = max_length
        self.fingerprint = t5_fingerprint(root)
        self.out = nn.Linear(enc.config.d_model, text_dim)
        self.null = nn.Parameter(torch.zeros(text_dim))

    def forward(self, prompts: list[str]) -> torch.Tensor:
        device = self.null.device
        enc = self._t5[0]
        if next(enc.parameters()).device != device:
            enc.to(device)
        null = torch.tanh(self.null)[None, :].expand(len(prompts), -1)
        keep = [i for i, p in enumerate(prompts) if p.strip()]
        if not keep:
            return null
        batch = self.tokenizer([prompts[i] for i in keep], padding=True, truncation=True,
                               max_length=self.max_length, return_tensors="pt")
        ids, att = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        if ids.shape[1] == 0:  # a tokenizer that produced no tokens at all
            return null
        with torch.no_grad():
            h = enc(input_ids=ids, attention_mask=att).last_hidden_state
        m = att.to(h.dtype)[..., None]
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        vec = torch.tanh(self.out(pooled.float()))
        has_tokens = (att.sum(1) > 0)[:, None]
        vec = torch.where(has_tokens, vec, null[: len(keep)])
        out = null.clone()
        out[torch.tensor(keep, device=device)] = vec
        return out
