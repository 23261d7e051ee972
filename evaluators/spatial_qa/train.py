"""Training the spatial-QA assessor: encoder pretraining on geometry, then QA fine-tuning.

Stage 1 (``pretrain_steps``): the encoder and its heads on the dataset's geometry labels (the
first source of single-source clips for azimuth / elevation / distance, every clip's labels
for the class head), with the published loss weights. Stage 2 (``qa_steps``): encoder,
projector and LM (or LoRA adapters on an external LM) on the QA items with the LM loss on the
answer tokens. Front-end features are computed once per clip (:func:`data.clip_features`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluators.spatial_qa import data as qa_data
from evaluators.spatial_qa.assessor import (
    PROJECTOR_PRESETS,
    PROMPT,
    ProjectorConfig,
    SpatialQAAssessor,
)
from evaluators.spatial_qa.encoder import SpatialAudioEncoder, encoder_config, pretraining_loss
from evaluators.spatial_qa.llm import (
    ScratchLLMConfig,
    load_llm,
    new_scratch_llm,
    train_qa_tokenizer,
)
from evaluators.spatial_qa.projector import QFormerProjector


@dataclass
class AssessorTrainConfig:
    """Everything that decides a trained assessor (recorded with the checkpoint)."""

    preset: str = "cpu"
    pretrain_steps: int = 1500
    qa_steps: int = 3000
    batch_size: int = 32
    lr: float = 1e-3
    qa_lr: float = 5e-4
    weight_decay: float = 0.01
    seed: int = 0
    llm: ScratchLLMConfig = field(default_factory=ScratchLLMConfig)
    projector: ProjectorConfig | None = None
    encoder_overrides: dict[str, Any] = field(default_factory=dict)
    max_new_tokens: int = 12

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return d


def build_assessor(cfg: AssessorTrainConfig, clips: list[Any], work: Path,
                   llm_path: Path | None) -> tuple[SpatialQAAssessor, list[str], dict[str, Any]]:
    """A freshly initialised assessor for ``clips`` (seeded by ``cfg.seed``); returns
    (assessor, class labels, llm meta)."""
    torch.manual_seed(cfg.seed)
    labels = qa_data.label_vocabulary(clips)
    enc_cfg = encoder_config(cfg.preset, n_classes=max(1, len(labels)), **cfg.encoder_overrides)
    if llm_path is None:
        texts = [PROMPT.format(question=q.question) for c in clips for q in c.qa]
        texts += [" " + q.answer for c in clips for q in c.qa]
        tok = train_qa_tokenizer(texts, work / "llm", vocab_size=cfg.llm.vocab)
        new_scratch_llm(tok, cfg.llm, work / "llm")
        llm, tok = load_llm(work / "llm", lora=False)
        llm_meta: dict[str, Any] = {"kind": "scratch", **cfg.llm.to_dict()}
    else:
        from evaluators.spatial_qa.llm import llm_fingerprint

        llm, tok = load_llm(llm_path, lora=True)
        llm_meta = {"kind": "external", "fingerprint": llm_fingerprint(llm_path),
                    "name": llm_path.name}
    width = llm.get_input_embeddings().weight.shape[1]
    pc = cfg.projector or PROJECTOR_PRESETS[cfg.preset]
    proj = QFormerProjector(enc_cfg.dim, width, pc.n_queries, pc.n_layers, pc.heads)
    enc = SpatialAudioEncoder(enc_cfg)
    return SpatialQAAssessor(enc, proj, llm, tok), labels, llm_meta


def _batches(n: int, batch: int, rng: np.random.Generator) -> Any:
    while True:
        order = rng.permutation(n)
        for s in range(0, n - batch + 1 if n >= batch else 1, batch):
            yield order[s: s + batch]


def train_assessor(a: SpatialQAAssessor, feats: torch.Tensor, geo: dict[str, torch.Tensor],
                   single: torch.Tensor, examples: list[qa_data.QAExample],
                   cfg: AssessorTrainConfig, *, log: Callable[[dict[str, Any]], None],
                   start_step: int = 0, optimizer_state: dict[str, Any] | None = None,
                   checkpoint: Callable[[int, Any], None] | None = None,
                   checkpoint_every: int = 500) -> None:
    """Run both stages from ``start_step`` (0 .. pretrain_steps + qa_steps); ``log`` receives a
    row per step; ``checkpoint(step, optimizer)`` is called every ``checkpoint_every`` steps and
    at the end. Batches are drawn from a generator seeded by (seed, stage) and fast-forwarded,
    so a resumed run sees the same batches as an uninterrupted one."""
    total = cfg.pretrain_steps + cfg.qa_steps
    a.train()
    step = start_step
    params_pre = list(a.encoder.parameters())
    params_qa = [p for p in a.parameters() if p.requires_grad]

    def stage_of(s: int) -> str:
        return "pretrain" if s < cfg.pretrain_steps else "qa"

    opt = None

    def make_opt(stage: str) -> torch.optim.Optimizer:
        ps = params_pre if stage == "pretrain" else params_qa
        return torch.optim.AdamW(ps, lr=cfg.lr if stage == "pretrain" else cfg.qa_lr,
                                 weight_decay=cfg.weight_decay)

    single_idx = torch.nonzero(single).flatten().numpy()
    pre_rng = np.random.default_rng([cfg.seed, 1])
    qa_rng = np.random.default_rng([cfg.seed, 2])
    pre_it = _batches(len(single_idx), min(cfg.batch_size, max(1, len(single_idx))), pre_rng)
    qa_it = _batches(len(examples), min(cfg.batch_size, len(examples)), qa_rng)
    for s in range(start_step):  # fast-forward the batch streams
        next(pre_it if s < cfg.pretrain_steps else qa_it)
    torch.manual_seed(cfg.seed + start_step)
    cur_stage = None
    while step < total:
        stage = stage_of(step)
        if stage != cur_stage:
            opt = make_opt(stage)
            if optimizer_state is not None and stage_of(start_step) == stage and step == start_step:
                opt.load_state_dict(optimizer_state)
            cur_stage = stage
        assert opt is not None
        t0 = time.perf_counter()
        frac = (step - (0 if stage == "pretrain" else cfg.pretrain_steps)) / max(
            1, cfg.pretrain_steps if stage == "pretrain" else cfg.qa_steps)
        base = cfg.lr if stage == "pretrain" else cfg.qa_lr
        for g in opt.param_groups:  # cosine decay with 5 % warm-up
            g["lr"] = base * min(1.0, frac / 0.05 + 1e-3) * 0.5 * (1 + math.cos(math.pi * frac))
        if stage == "pretrain":
            idx = single_idx[next(pre_it)]
            tokens = a.encoder.forward_features(feats[idx])
            loss, parts = pretraining_loss(a.encoder.heads(tokens), geo["az"][idx],
                                           geo["el"][idx], geo["dist"][idx], geo["cls"][idx])
        else:
            ex = [examples[i] for i in next(qa_it)]
            idx = torch.tensor([e.clip for e in ex])
            slots = a.projector(a.encoder.forward_features(feats[idx]))
            loss = a.loss_from_slots(slots, [e.question for e in ex], [e.answer for e in ex])
            parts = {}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        step += 1
        log({"step": step, "stage": stage, "loss": float(loss.detach()),
             "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0, **parts})
        if checkpoint is not None and (step % checkpoint_every == 0 or step == total):
            checkpoint(step, opt)
    a.eval()


def direction_accuracy_of_heads(a: SpatialQAAssessor, feats: torch.Tensor,
                                geo: dict[str, torch.Tensor]) -> dict[str, float]:
    """Encoder-head diagnostics on held-out clips: azimuth within 20 deg, elevation within
    20 deg, distance within 0.5 m (BAT's encoder metrics)."""
    with torch.no_grad():
        h = a.encoder.heads(a.encoder.forward_features(feats))
    az = h["az"].argmax(-1).float()
    el = h["el"].argmax(-1).float()
    dist = h["dist"].argmax(-1).float()
    daz = torch.remainder(az - geo["az"].float() + 180, 360) - 180
    return {"az_within_20": float((daz.abs() <= 20).float().mean()),
            "el_within_20": float(((el - geo["el"].float()).abs() <= 20).float().mean()),
            "dist_within_0.5": float(((dist - geo["dist"].float()).abs() <= 1).float().mean()),
            "lr_sign": float(((torch.sin(torch.deg2rad(az)) > 0) ==
                              (torch.sin(torch.deg2rad(geo["az"].float())) > 0)).float().mean())}


