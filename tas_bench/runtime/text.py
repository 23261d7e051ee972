"""Text encoders and tokenizers shared by every trainable model (PseudoBinaural, TAS, spatial QA).

API (imports torch: import this module from model code only)::

    tokenize(text) -> list[str]                      # lower-cased word / number tokens
    build_vocab(prompts, min_count=1) -> list[str]   # ["<pad>", "<unk>", words by count]
    token_ids(prompts, vocab_index, max_tokens) -> (ids (B, L) long, lengths (B,) long)

    enc = build_text_encoder("scratch", vocab=vocab, text_dim=128, word_dim=64, max_tokens=48)
    enc = build_text_encoder("t5", t5_path=DIR, text_dim=128, t5_max_length=64, finetune=False)
    out = enc.encode(prompts)    # TextEncoding: tokens (B, L, enc.token_dim), mask (B, L) bool,
                                 #               pooled (B, text_dim) in [-1, 1]
    vec = enc(prompts)           # == enc.encode(prompts).pooled (what PseudoBinaural uses)
    meta = text_encoder_meta(enc)               # str metadata to store beside the weights
    check_text_encoder_meta(enc, meta, where)   # refuses a T5 folder other than the trained one
    vocab_from_meta(meta) -> list[str] | None
    train_qa_tokenizer(texts, out_dir, vocab_size=1024)  # BPE tokenizer of the spatial-QA LLM

* :class:`ScratchTextEncoder` (needs no download): word tokens of :func:`tokenize`, a fixed
  vocabulary built from the training prompts (stored with the checkpoint as JSON metadata;
  unknown words -> ``<unk>``), prompts cut to ``max_tokens`` tokens, a word embedding and a
  bidirectional GRU. ``tokens`` are the GRU states (``token_dim = 2 * (text_dim // 2)``);
  ``pooled`` is ``tanh(Linear(mean of the states over the prompt's tokens))``. Prompts of a
  batch are right-padded to the longest; the GRU runs over packed sequences, so padding never
  reaches a prompt's states and a prompt's encoding does not depend on its batch mates
  (up to BLAS rounding of different batch shapes).
* :class:`T5TextEncoder`: a FLAN-T5 encoder from a local folder
  (``T5EncoderModel.from_pretrained(path, local_files_only=True)``; nothing is downloaded),
  prompts cut to ``t5_max_length`` T5 tokens; ``tokens`` are its last hidden states
  (``token_dim = d_model``), ``pooled`` is ``tanh(Linear(masked mean))``. Frozen and kept out
  of the module tree by default (its weights are not in our checkpoints; the checkpoint
  records :func:`t5_fingerprint` of the folder); ``finetune=True`` makes it a trainable
  submodule ``t5`` whose weights are then saved with the model.

An empty prompt (or one with no tokens) has an all-False ``mask`` row, zero ``tokens`` and a
learned "no text" ``pooled`` vector (``tanh(null)``). A prompt in a foreign language is mostly
``<unk>`` tokens for the scratch encoder and so behaves close to no text. Users of ``tokens``
for cross-attention must handle all-False mask rows (e.g. attend to a learned null token).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import sha256_file, stable_hash

PAD, UNK = "<pad>", "<unk>"
_WORD_RE = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
#: Suffixes of weight files, fingerprinted by (name, size) instead of a full hash.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".h5", ".msgpack")


def tokenize(text: str) -> list[str]:
    """Lower-cased word and number tokens of ``text`` ("5.5m" -> ["5.5", "m"])."""
    return _WORD_RE.findall(text.lower())


def build_vocab(prompts: Iterable[str], min_count: int = 1) -> list[str]:
    """The vocabulary (``<pad>``, ``<unk>``, then words by descending count, ties alphabetical)."""
    counts = Counter(t for p in prompts for t in tokenize(p))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return [PAD, UNK, *words]


def token_ids(prompts: list[str], index: Mapping[str, int], max_tokens: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``(B, L)`` right-padded with 0 (``<pad>``), and lengths ``(B,)``.

    Unknown words map to 1 (``<unk>``); prompts are cut to ``max_tokens`` tokens;
    ``L = max(1, longest)``, so an all-empty batch still has one (padding) column.
    """
    seqs = [[index.get(t, 1) for t in tokenize(p)][:max_tokens] for p in prompts]
    width = max(1, max((len(s) for s in seqs), default=0))
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, torch.tensor([len(s) for s in seqs], dtype=torch.long)


@dataclass
class TextEncoding:
    """Per-token states ``tokens (B, L, D)``, ``mask (B, L)`` (True = a real token) and the
    pooled prompt vector ``pooled (B, text_dim)``."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor


class ScratchTextEncoder(nn.Module):
    """Word embedding + bidirectional GRU trained from scratch (see module doc).

    Parameter names (``embed``, ``gru``, ``out``, ``null``) are part of the checkpoint format.
    """

    def __init__(self, vocab: list[str], word_dim: int, text_dim: int, max_tokens: int) -> None:
        super().__init__()
        if len(vocab) < 2 or list(vocab[:2]) != [PAD, UNK]:
            raise TasBenchError("text vocabulary must start with <pad>, <unk>", field="vocab")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_tokens = max_tokens
        self.text_dim = text_dim
        self.token_dim = 2 * (text_dim // 2)
        self.embed = nn.Embedding(len(vocab), word_dim, padding_idx=0)
        self.gru = nn.GRU(word_dim, text_dim // 2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(self.token_dim, text_dim)
        self.null = nn.Parameter(torch.zeros(text_dim))

    def encode_ids(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``(B, L)`` and lengths ``(B,)`` (see :func:`token_ids`)."""
        return token_ids(prompts, self.index, self.max_tokens)

    def encode(self, prompts: list[str]) -> TextEncoding:
        """Per-token GRU states, their mask and the pooled vector of each prompt."""
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
        mask = torch.arange(ids.shape[1], device=device)[None, :] < lengths[:, None]
        maskf = mask.to(h.dtype)
        tokens = h * maskf[..., None]
        pooled = tokens.sum(1) / lengths.clamp(min=1)[:, None].to(h.dtype)
        vec = torch.tanh(self.out(pooled))
        empty = (lengths == 0)[:, None]
        vec = torch.where(empty, torch.tanh(self.null)[None, :].expand_as(vec), vec)
        return TextEncoding(tokens=tokens, mask=mask, pooled=vec)

    def forward(self, prompts: list[str]) -> torch.Tensor:
        """The pooled vectors ``(B, text_dim)``."""
        return self.encode(prompts).pooled


def t5_fingerprint(path: str | Path) -> str:
    """Identity of a local T5 folder: sha256 of its small files, (name, size) of weight files."""
    root = Path(path)
    parts: dict[str, Any] = {}
    for p in sorted(root.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        big = p.suffix in _WEIGHT_SUFFIXES
        parts[p.name] = f"size:{p.stat().st_size}" if big else sha256_file(p)
    return stable_hash(parts)


def load_t5(path: str | Path) -> tuple[Any, nn.Module]:
    """``(tokenizer, T5EncoderModel)`` from a local folder, never from the network.

    A missing folder, missing ``transformers`` or a folder that holds no T5 encoder and
    tokenizer is a :class:`TasBenchError` naming the folder.
    """
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
    return tok, enc


class T5TextEncoder(nn.Module):
    """FLAN-T5 encoder from a local folder + a pooled projection to ``text_dim`` (module doc).

    Parameter names (``out``, ``null``; ``t5.*`` when fine-tuned) are part of the checkpoint
    format.
    """

    def __init__(self, path: str | Path, text_dim: int, max_length: int,
                 finetune: bool = False) -> None:
        super().__init__()
        tok, enc = load_t5(path)
        self.finetune = finetune
        if finetune:
            self.t5 = enc
        else:
            enc.eval()
            for p in enc.parameters():
                p.requires_grad_(False)
            self._frozen = [enc]  # outside the module tree: not trained, not in our checkpoints
        self.tokenizer = tok
        self.max_length = max_length
        self.text_dim = text_dim
        self.token_dim = int(enc.config.d_model)
        self.fingerprint = t5_fingerprint(path)
        self.out = nn.Linear(self.token_dim, text_dim)
        self.null = nn.Parameter(torch.zeros(text_dim))

    @property
    def t5_model(self) -> nn.Module:
        """The T5 encoder (trainable submodule or the frozen outside copy)."""
        return self.t5 if self.finetune else self._frozen[0]

    def encode(self, prompts: list[str]) -> TextEncoding:
        """Per-token T5 states, their mask and the pooled vector of each prompt."""
        device = self.null.device
        enc = self.t5_model
        if next(enc.parameters()).device != device:
            enc.to(device)
        b = len(prompts)
        null = torch.tanh(self.null)[None, :].expand(b, -1)
        keep = [i for i, p in enumerate(prompts) if p.strip()]
        empty = TextEncoding(tokens=torch.zeros(b, 1, self.token_dim, device=device),
                             mask=torch.zeros(b, 1, dtype=torch.bool, device=device),
                             pooled=null)
        if not keep:
            return empty
        batch = self.tokenizer([prompts[i] for i in keep], padding=True, truncation=True,
                               max_length=self.max_length, return_tensors="pt")
        ids, att = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        if ids.shape[1] == 0:  # a tokenizer that produced no tokens at all
            return empty
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            h = enc(input_ids=ids, attention_mask=att).last_hidden_state
        m = att.to(h.dtype)[..., None]
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        vec = torch.tanh(self.out(pooled.float()))
        has_tokens = (att.sum(1) > 0)[:, None]
        vec = torch.where(has_tokens, vec, null[: len(keep)])
        rows = torch.tensor(keep, device=device)
        out = null.clone()
        out[rows] = vec
        tokens = torch.zeros(b, ids.shape[1], self.token_dim, device=device, dtype=h.dtype)
        tokens[rows] = h * m
        mask = torch.zeros(b, ids.shape[1], dtype=torch.bool, device=device)
        mask[rows] = att.bool()
        return TextEncoding(tokens=tokens, mask=mask, pooled=out)

    def forward(self, prompts: list[str]) -> torch.Tensor:
        """The pooled vectors ``(B, text_dim)``."""
        return self.encode(prompts).pooled


TextEncoder = ScratchTextEncoder | T5TextEncoder


def build_text_encoder(kind: str, *, text_dim: int, vocab: list[str] | None = None,
                       word_dim: int = 64, max_tokens: int = 48, t5_path: str | Path | None = None,
                       t5_max_length: int = 64, finetune: bool = False) -> TextEncoder:
    """A fresh text encoder: ``kind`` ``"scratch"`` (needs ``vocab``) or ``"t5"`` (``t5_path``)."""
    if kind == "t5":
        if not t5_path:
            raise TasBenchError("text encoder 't5' needs t5_path: a local FLAN-T5 folder",
                                field="t5_path")
        return T5TextEncoder(t5_path, text_dim, t5_max_length, finetune=finetune)
    if kind == "scratch":
        if vocab is None:
            raise TasBenchError("the scratch text encoder needs a vocabulary", field="vocab")
        return ScratchTextEncoder(vocab, word_dim, text_dim, max_tokens)
    raise TasBenchError(f"unknown text encoder {kind!r}; expected 'scratch' or 't5'",
                        field="text_encoder")


def text_encoder_meta(enc: nn.Module) -> dict[str, str]:
    """String metadata to store with the weights: the scratch vocabulary (JSON) or the
    fingerprint of the T5 folder, so weights never travel without their tokenizer's identity."""
    if isinstance(enc, ScratchTextEncoder):
        return {"vocab": json.dumps(enc.vocab)}
    if isinstance(enc, T5TextEncoder):
        return {"t5_fingerprint": enc.fingerprint}
    return {}


def vocab_from_meta(meta: Mapping[str, str]) -> list[str] | None:
    """The scratch vocabulary stored by :func:`text_encoder_meta`, or ``None``."""
    return json.loads(meta["vocab"]) if "vocab" in meta else None


def check_text_encoder_meta(enc: nn.Module, meta: Mapping[str, str],
                            where: str | Path | None = None) -> None:
    """Refuse a T5 folder that differs from the one the checkpoint was trained with."""
    want = meta.get("t5_fingerprint")
    if want is not None and getattr(enc, "fingerprint", None) != want:
        raise TasBenchError("the FLAN-T5 folder differs from the one this checkpoint was trained "
                            "with", path=where)


#: special tokens of the spatial-QA assessor's scratch tokenizer
QA_SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>",
                     "unk_token": "<unk>"}


def train_qa_tokenizer(texts: Iterable[str], out: Path, vocab_size: int = 1024) -> Any:
    """Train a byte-level BPE tokenizer (the spatial-QA assessor's scratch LLM) of at most
    ``vocab_size`` tokens on ``texts`` and save it to ``out`` (transformers layout, loadable
    with ``AutoTokenizer.from_pretrained(out)``); returns it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=QA_SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size,
                                  special_tokens=list(QA_SPECIAL_TOKENS.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(sorted(set(texts)), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **QA_SPECIAL_TOKENS)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    return fast
