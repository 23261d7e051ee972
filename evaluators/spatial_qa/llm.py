"""The assessor's causal LM, loaded one way for both cases (transformers ``from_pretrained``).

- External: a local causal-LM folder (e.g. Llama-3.1-8B) loaded with
  ``AutoModelForCausalLM.from_pretrained(path, local_files_only=True)`` and its tokenizer with
  ``AutoTokenizer.from_pretrained``; frozen, with peft LoRA (r 8, alpha 32, dropout 0.05 on
  ``q_proj`` and ``v_proj``; REFERENCE.md §6). Only the LoRA weights are trained and saved,
  with the folder's fingerprint.
- CPU default: a small ``LlamaForCausalLM`` trained from scratch with a BPE tokenizer trained
  on the dataset's QA text (``tokenizers``), both written with ``save_pretrained`` to a folder
  and read back through the same loader as an external model.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.text import QA_SPECIAL_TOKENS as SPECIAL
from tas_bench.runtime.text import train_qa_tokenizer

__all__ = ["LORA", "SPECIAL", "ScratchLLMConfig", "check_tokenizer_matches", "llm_fingerprint",
           "load_llm", "new_scratch_llm", "train_qa_tokenizer"]

LORA = {"r": 8, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}


@dataclass(frozen=True)
class ScratchLLMConfig:
    """Size of the from-scratch LLM of the cpu preset."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 344
    vocab: int = 1024
    max_positions: int = 512

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_scratch_llm(tokenizer: Any, cfg: ScratchLLMConfig, out: Path) -> Any:
    """A randomly initialised ``LlamaForCausalLM`` sized by ``cfg`` for ``tokenizer``, saved to
    ``out`` with ``save_pretrained`` (safetensors); returns the model."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=cfg.hidden,
                         intermediate_size=cfg.intermediate, num_hidden_layers=cfg.layers,
                         num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
                         max_position_embeddings=cfg.max_positions,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    return model


def _require_folder(path: Path) -> None:
    if not path.is_dir():
        raise TasBenchError("not a folder; expected a transformers causal-LM folder "
                            "(config.json, *.safetensors, tokenizer files)", path=path)
    missing = [n for n in ("config.json",) if not (path / n).is_file()]
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        missing.append("*.safetensors")
    if not ((path / "tokenizer.json").is_file() or (path / "tokenizer.model").is_file()):
        missing.append("tokenizer.json")
    if missing:
        raise TasBenchError(f"incomplete LLM folder: missing {', '.join(missing)} (expected the "
                            "layout save_pretrained writes: config.json, model*.safetensors, "
                            "tokenizer.json, tokenizer_config.json)", path=path)


def load_llm(path: Path, *, lora: bool, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) from a local folder, never from a hub. ``lora=True`` freezes the model
    and attaches peft LoRA adapters (:data:`LORA`); otherwise every parameter trains."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    _require_folder(path)
    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True,
                                                     dtype=dtype or torch.float32)
    except (OSError, ValueError) as exc:
        raise TasBenchError(f"cannot load the LLM ({str(exc).splitlines()[0]})", path=path) from None
    check_tokenizer_matches(tok, model, path)
    if lora:
        from peft import LoraConfig, get_peft_model

        for p in model.parameters():
            p.requires_grad_(False)
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **LORA))
    return model, tok


def check_tokenizer_matches(tok: Any, model: Any, path: Path) -> None:
    """Refuse a tokenizer whose ids do not fit the model's embedding table or that lacks an
    end-of-sequence token."""
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tok) > rows:
        raise TasBenchError(f"tokenizer has {len(tok)} tokens but the model's embedding table "
                            f"has {rows} rows: tokenizer and LLM do not match", path=path)
    if tok.eos_token_id is None:
        raise TasBenchError("tokenizer has no end-of-sequence token", path=path)
    cfg_eos = getattr(model.config, "eos_token_id", None)
    eos_ids = cfg_eos if isinstance(cfg_eos, list) else [cfg_eos]
    if cfg_eos is not None and tok.eos_token_id not in eos_ids:
        raise TasBenchError(f"tokenizer eos id {tok.eos_token_id} differs from the model's "
                            f"{cfg_eos}: tokenizer and LLM do not match", path=path)


def _stat_key(p: Path) -> tuple[str, int, int, int, int]:
    st = p.stat()
    return (str(p.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@lru_cache(maxsize=64)
def _file_sha(key: tuple[str, int, int, int, int]) -> str:
    h = hashlib.sha256()
    with open(key[0], "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def llm_fingerprint(path: Path) -> str:
    """sha256 over the names and contents of every file of an LLM folder (weights, config,
    tokenizer), hashed once per process and file state (inode, size, mtime, ctime)."""
    path = Path(path)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file() and not q.name.startswith(".")):
        h.update(os.fsencode(str(p.relative_to(path))) + b"\0")
        h.update(_file_sha(_stat_key(p)).encode() + b"\n")
    return h.hexdigest()
