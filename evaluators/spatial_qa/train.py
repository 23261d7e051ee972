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
import torch.nn.functional as F

from evaluators.spatial_qa import data as qa_data
from evaluators.spatial_qa.assessor import (
    PROJECTOR_PRESETS,
    PROMPT,
    ProjectorConfig,
    SpatialQAAssessor,
    build_projector,
)
from evaluators.spatial_qa.encoder import (
    N_AZIMUTH,
    SpatialAudioEncoder,
    bound_loss,
    encoder_config,
    pretraining_loss,
)
from evaluators.spatial_qa.llm import (
    ScratchLLMConfig,
    load_llm,
    new_scratch_llm,
    train_qa_tokenizer,
)
from tas_bench.data.qa import QUESTION_TYPES, asks_larger
from tas_bench.runtime.errors import TasBenchError


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
    #: pretraining: each example mirrored left/right with p = 0.5 (ears swapped, sin IPD negated,
    #: azimuth mirrored), which doubles the directions seen and ties the side to the ILD/IPD sign
    mirror_augment: bool = True
    #: QA stage: also fine-tune the encoder (BAT) or keep the pretrained one frozen
    qa_train_encoder: bool = True
    #: weight of the class (BCE) term in pretraining; None: the preset's (paper: the published
    #: 1250; cpu: 10). Measured on the cpu preset (fast probe, 150 steps): with 1250 the DoA
    #: token stays at chance on left/right (0.51), with 10 the azimuth head gets the side of
    #: 99 % of held-out clips
    cls_weight: float | None = None
    #: weight of the class-bound geometry loss (:func:`~evaluators.spatial_qa.encoder.bound_loss`)
    #: in pretraining; > 0 adds the class-bound heads and pretrains on every clip (one or two
    #: sources; the one-source heads still learn from the one-source clips only); 0: Spatial-AST's
    #: pretraining on one-source clips
    bound_weight: float = 0.0
    #: the first ``qa_curriculum`` QA steps leave out the relational items that ask for the
    #: smaller value ("to the right of", "behind", "lower", "closer";
    #: :func:`tas_bench.data.qa.asks_larger`): the comparison is learnt on the others first,
    #: the flip by the relation word after (measured with oracle slots: without it the scratch
    #: LM stays at the Direction prior)
    qa_curriculum: int = 0
    #: question types the curriculum steps draw from (empty: every type). Measured with oracle
    #: slots: only a stage on the Direction types alone (MIXUP_DIRECTION,
    #: MIXUP_NONBINARY_DIRECTION) lifted Direction in the full mix
    qa_curriculum_types: list[str] = field(default_factory=list)
    #: QA stage: add the relational items every two-source training clip's geometry allows
    #: beyond those of its own category (:func:`~evaluators.spatial_qa.data.
    #: pair_relation_examples`): more clips behind the Direction and Distance items
    qa_every_pair: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("bound_weight", "qa_curriculum", "qa_curriculum_types", "qa_every_pair"):
            if not d[k]:  # runs made before the field existed keep their config
                del d[k]
        return d


def build_assessor(cfg: AssessorTrainConfig, clips: list[Any], work: Path,
                   llm_path: Path | None) -> tuple[SpatialQAAssessor, list[str], dict[str, Any]]:
    """A freshly initialised assessor for ``clips`` (seeded by ``cfg.seed``); returns
    (assessor, class labels, llm meta)."""
    torch.manual_seed(cfg.seed)
    labels = qa_data.label_vocabulary(clips)
    bound = {"bound_heads": True} if cfg.bound_weight > 0 else {}
    enc_cfg = encoder_config(cfg.preset, n_classes=max(1, len(labels)),
                             **{**bound, **cfg.encoder_overrides})
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
    enc = SpatialAudioEncoder(enc_cfg)
    return SpatialQAAssessor(enc, build_projector(enc, width, pc), llm, tok), labels, llm_meta


#: class-term weight of each preset's pretraining loss when the config does not set one
PRESET_CLS_WEIGHT = {"paper": 1250.0, "cpu": 10.0}


def pretraining_cls_weight(cfg: AssessorTrainConfig) -> float:
    """Weight of the class BCE term in pretraining: ``cfg.cls_weight`` or the preset's."""
    return float(cfg.cls_weight) if cfg.cls_weight is not None else PRESET_CLS_WEIGHT[cfg.preset]


def mirror_features(x: torch.Tensor) -> torch.Tensor:
    """Front-end features (B, C, T, 128) of the same clips with the ears swapped: log-mel L and
    R exchanged, cos IPD kept, sin IPD negated (IPD = angle R - angle L changes sign); with the
    clip-level maps (C = 6) the ILD negated and the coherence kept."""
    maps = [x[:, 1], x[:, 0], x[:, 2], -x[:, 3]]
    if x.shape[1] == 6:
        maps += [-x[:, 4], x[:, 5]]
    return torch.stack(maps, dim=1)


def pretraining_batch(feats: torch.Tensor, geo: dict[str, torch.Tensor], idx: np.ndarray,
                      cfg: AssessorTrainConfig, step: int
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One geometry-pretraining batch exactly as the trainer feeds it: the features of clips
    ``idx`` (B, 4, frames, 128) and their targets (``az``, ``el``, ``dist``, ``cls``), with
    ``cfg.mirror_augment`` each clip mirrored with p = 0.5 (seeded by (seed, step): a resumed
    run draws the same flips) -- ears swapped and azimuth ``az -> (360 - az) mod 360``."""
    x, az = feats[idx].float(), geo["az"][idx]
    tgt = {k: v[idx] for k, v in geo.items() if k != "az"}
    if cfg.mirror_augment:
        flip_rng = np.random.default_rng([cfg.seed, 3, step])
        flip = torch.from_numpy(flip_rng.random(len(idx)) < 0.5)
        x = torch.where(flip[:, None, None, None], mirror_features(x), x)
        az = torch.where(flip, (N_AZIMUTH - az) % N_AZIMUTH, az)
        if "words" in tgt:  # every source changes side: left <-> right
            w = tgt["words"].clone()
            w[..., 0] = torch.where(flip[:, None], 1.0 - w[..., 0], w[..., 0])
            tgt["words"] = w
    return x, {"az": az, **tgt}


def pretraining_step_loss(a: SpatialQAAssessor, x: torch.Tensor, tgt: dict[str, torch.Tensor],
                          single: torch.Tensor, cfg: AssessorTrainConfig
                          ) -> tuple[torch.Tensor, dict[str, float]]:
    """Pretraining loss of one batch: the Spatial-AST terms (the one-source heads on the rows
    ``single`` marks, the class term on every row) plus ``cfg.bound_weight`` x the class-bound
    loss when the encoder has those heads."""
    logits = a.encoder.heads(a.encoder.forward_features(x))
    w = {"cls": pretraining_cls_weight(cfg)}
    if not cfg.bound_weight:
        return pretraining_loss(logits, tgt["az"], tgt["el"], tgt["dist"], tgt["cls"], w)
    # one-source heads on the one-source rows (class weight 0 there); the class term on all
    one = {k: logits[k][single] for k in ("az", "el", "dist", "cls")}
    if bool(single.any()):
        loss, parts = pretraining_loss(one, tgt["az"][single], tgt["el"][single],
                                       tgt["dist"][single], tgt["cls"][single], {"cls": 0.0})
    else:
        loss, parts = logits["az"].sum() * 0.0, {}
    cls_all = F.binary_cross_entropy_with_logits(logits["cls"], tgt["cls"])
    loss = loss + w["cls"] * cls_all
    parts["cls"] = float(cls_all.detach())
    b, bparts = bound_loss(logits, tgt["present"], tgt["words"], tgt["word_mask"],
                           tgt["bound_dist"])
    return loss + cfg.bound_weight * b, {**parts, **bparts}


def _batches(n: int, batch: int, rng: np.random.Generator) -> Any:
    while True:
        order = rng.permutation(n)
        for s in range(0, n - batch + 1 if n >= batch else 1, batch):
            yield order[s: s + batch]


def curriculum_examples(examples: list[qa_data.QAExample], types: list[str] | None = None
                        ) -> list[qa_data.QAExample]:
    """The items of the QA curriculum's first steps: all but the relational items that ask
    for the smaller value (:func:`tas_bench.data.qa.asks_larger` is False), and with
    ``types`` only those of these question types."""
    return [e for e in examples if asks_larger(e.question_type, e.question) is not False
            and (not types or e.question_type in types)]


class QABatches:
    """The QA stage's batches: call with the QA step (0, 1, ... in order) to get its examples.

    Drawn without replacement per epoch from a generator seeded by (seed, 2); during the first
    ``cfg.qa_curriculum`` steps from :func:`curriculum_examples` with its own generator
    (seed, 3), so a run without the curriculum draws what it drew before the option existed.
    Calling it for every step from 0 reproduces an uninterrupted run's batches (resume)."""

    def __init__(self, examples: list[qa_data.QAExample], cfg: AssessorTrainConfig) -> None:
        self.examples = examples
        self.first = (curriculum_examples(examples, cfg.qa_curriculum_types)
                      if cfg.qa_curriculum else [])
        if cfg.qa_curriculum and not self.first:
            raise TasBenchError("the QA curriculum has no training items (types "
                                f"{cfg.qa_curriculum_types or 'all'})", field="qa_curriculum_types")
        self.curriculum = cfg.qa_curriculum
        self._all = _batches(len(examples), min(cfg.batch_size, len(examples)),
                             np.random.default_rng([cfg.seed, 2]))
        self._first = _batches(len(self.first), min(cfg.batch_size, max(1, len(self.first))),
                               np.random.default_rng([cfg.seed, 3]))

    def __call__(self, qa_step: int) -> list[qa_data.QAExample]:
        if qa_step < self.curriculum:
            return [self.first[i] for i in next(self._first)]
        return [self.examples[i] for i in next(self._all)]


def stage_lr_factor(frac: float) -> float:
    """Multiplier of a stage's base lr at ``frac`` (0..1) of the stage: 5 % linear warm-up
    (from 1e-3) times a cosine decay to 0 at the stage's end."""
    return min(1.0, frac / 0.05 + 1e-3) * 0.5 * (1 + math.cos(math.pi * frac))


def train_assessor(a: SpatialQAAssessor, feats: torch.Tensor, geo: dict[str, torch.Tensor],
                   single: torch.Tensor, examples: list[qa_data.QAExample],
                   cfg: AssessorTrainConfig, *, log: Callable[[dict[str, Any], bool], None],
                   start_step: int = 0, optimizer_state: dict[str, Any] | None = None,
                   checkpoint: Callable[[int, Any], None] | None = None,
                   checkpoint_every: int = 500) -> None:
    """Run both stages from ``start_step`` (0 .. pretrain_steps + qa_steps); ``log(row,
    pretraining)`` receives a row per step; ``checkpoint(step, optimizer)`` is called every ``checkpoint_every`` steps and
    at the end. Batches are drawn from a generator seeded by (seed, stage) and fast-forwarded,
    so a resumed run sees the same batches as an uninterrupted one."""
    total = cfg.pretrain_steps + cfg.qa_steps
    a.train()
    step = start_step
    params_pre = list(a.encoder.parameters())
    enc_ids = {id(p) for p in params_pre}
    params_qa = [p for p in a.parameters() if p.requires_grad
                 and (cfg.qa_train_encoder or id(p) not in enc_ids)]

    def stage_of(s: int) -> str:
        return "pretrain" if s < cfg.pretrain_steps else "qa"

    opt = None

    def make_opt(stage: str) -> torch.optim.Optimizer:
        ps = params_pre if stage == "pretrain" else params_qa
        return torch.optim.AdamW(ps, lr=cfg.lr if stage == "pretrain" else cfg.qa_lr,
                                 weight_decay=cfg.weight_decay)

    # Spatial-AST pretrains on one-source clips; the class-bound heads learn from every clip
    single_idx = (np.arange(len(single)) if cfg.bound_weight
                  else torch.nonzero(single).flatten().numpy())
    pre_rng = np.random.default_rng([cfg.seed, 1])
    pre_it = _batches(len(single_idx), min(cfg.batch_size, max(1, len(single_idx))), pre_rng)
    qa_batch = QABatches(examples, cfg)
    for s in range(start_step):  # fast-forward the batch streams
        if s < cfg.pretrain_steps:
            next(pre_it)
        else:
            qa_batch(s - cfg.pretrain_steps)
    cur_stage = None
    while step < total:
        stage = stage_of(step)
        if stage != cur_stage:
            opt = make_opt(stage)
            # a checkpoint's optimizer belongs to the stage of the step before it: at the stage
            # boundary the new stage starts with a fresh optimizer, as in an uninterrupted run
            if (optimizer_state is not None and step == start_step and start_step > 0
                    and stage_of(start_step - 1) == stage):
                opt.load_state_dict(optimizer_state)
            cur_stage = stage
        assert opt is not None
        t0 = time.perf_counter()
        frac = (step - (0 if stage == "pretrain" else cfg.pretrain_steps)) / max(
            1, cfg.pretrain_steps if stage == "pretrain" else cfg.qa_steps)
        base = cfg.lr if stage == "pretrain" else cfg.qa_lr
        for g in opt.param_groups:
            g["lr"] = base * stage_lr_factor(frac)
        if stage == "pretrain":
            bidx = single_idx[next(pre_it)]
            x, tgt = pretraining_batch(feats, geo, bidx, cfg, step)
            loss, parts = pretraining_step_loss(a, x, tgt, single[bidx], cfg)
        else:
            ex = qa_batch(step - cfg.pretrain_steps)
            idx = torch.tensor([e.clip for e in ex])
            if cfg.qa_train_encoder:
                tokens = a.encoder.forward_features(feats[idx].float())
            else:  # frozen: no graph through the encoder (eval mode: its BatchNorm stats stay)
                a.encoder.eval()
                with torch.no_grad():
                    tokens = a.encoder.forward_features(feats[idx].float())
            slots = a.slots_from_tokens(tokens, train_heads=cfg.qa_train_encoder)
            loss = a.loss_from_slots(slots, [e.question for e in ex], [e.answer for e in ex])
            parts = {}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if stage == "qa":
            # not in pretraining: the class term's weight (1250) would dominate the clipped norm
            # and starve the geometry heads (measured: azimuth accuracy fell as training went on)
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        step += 1
        log({"step": step, "stage": stage, "loss": float(loss.detach()),
             "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0, **parts},
            stage == "pretrain")
        if checkpoint is not None and (step % checkpoint_every == 0 or step == total):
            checkpoint(step, opt)
    a.eval()


def direction_accuracy_of_heads(a: SpatialQAAssessor, feats: torch.Tensor,
                                geo: dict[str, torch.Tensor]) -> dict[str, float]:
    """Encoder-head diagnostics on held-out clips: azimuth within 20 deg, elevation within
    20 deg, distance within 0.5 m (BAT's encoder metrics)."""
    was_training = a.encoder.training
    a.encoder.eval()  # running BatchNorm stats: held-out clips must not update them
    with torch.no_grad():
        h = a.encoder.heads(a.encoder.forward_features(feats))
    a.encoder.train(was_training)
    az = h["az"].argmax(-1).float()
    el = h["el"].argmax(-1).float()
    dist = h["dist"].argmax(-1).float()
    daz = torch.remainder(az - geo["az"].float() + 180, 360) - 180
    return {"az_within_20": float((daz.abs() <= 20).float().mean()),
            "el_within_20": float(((el - geo["el"].float()).abs() <= 20).float().mean()),
            "dist_within_0.5": float(((dist - geo["dist"].float()).abs() <= 1).float().mean()),
            "lr_sign": float(((torch.sin(torch.deg2rad(az)) > 0) ==
                              (torch.sin(torch.deg2rad(geo["az"].float())) > 0)).float().mean())}




def bound_accuracy(logits: dict[str, torch.Tensor], geo: dict[str, torch.Tensor]
                   ) -> dict[str, float]:
    """Accuracy of the class-bound heads over the (clip, class present) pairs of ``geo``:
    per axis the direction word (left/right, front/behind, above/below where the source has
    one), all of its words at once (``words``), and the distance bin within 0.5 m."""
    present = geo["present"]
    pred = logits["bound_dir"] > 0
    truth = geo["words"] > 0.5
    m = geo["word_mask"] & present[..., None]
    out: dict[str, float] = {}
    for i, name in enumerate(("left_right", "front_back", "up_down")):
        sel = m[..., i]
        out[name] = float((pred[..., i] == truth[..., i])[sel].float().mean()) if bool(sel.any()) else math.nan
    all_ok = ((pred == truth) | ~m).all(dim=-1)
    out["words"] = float(all_ok[present].float().mean()) if bool(present.any()) else math.nan
    dist = logits["bound_dist"].argmax(-1)
    ok = (dist - geo["bound_dist"]).abs() <= 1
    out["dist_within_0.5"] = float(ok[present].float().mean()) if bool(present.any()) else math.nan
    return out


# ---- the `tas-bench train assessor` kind (shared run folder: tas_bench.runtime.runs) ---------------------
KIND = "assessor"
METRIC_FIELDS = ("step", "stage", "loss", "lr", "val_doa", "val_de", "val_direction",
                 "val_distance", "val_az_within_20", "val_lr_sign", "wall_s")
#: Config fields that may change when a run is resumed (length and bookkeeping only).
RESUMABLE = {"qa_steps", "checkpoint_every", "val_every", "val_items", "torch_threads",
             "progress"}
_FIELDS = {"preset", "pretrain_steps", "qa_steps", "batch_size", "lr", "qa_lr", "weight_decay",
           "seed", "llm_path", "llm", "projector", "encoder_overrides", "max_new_tokens",
           "mirror_augment", "qa_train_encoder", "cls_weight", "bound_weight", "qa_curriculum",
           "qa_curriculum_types", "checkpoint_every", "val_every", "val_items", "torch_threads",
           "init_encoder", "qa_every_pair"}


def resolve_assessor_config(overrides: dict[str, Any] | None, config_file: Any = None
                            ) -> dict[str, Any]:
    """The full config dict of an assessor run from defaults, a JSON config file and CLI
    overrides (``steps`` sets ``qa_steps``); unknown fields are refused."""
    from tas_bench.runtime.fileio import read_json_object

    base = AssessorTrainConfig().to_dict()
    cfg: dict[str, Any] = {"kind": KIND, **base, "llm_path": None, "checkpoint_every": 500,
                           "val_every": 500, "val_items": 200, "torch_threads": None}
    given: dict[str, Any] = {}
    if config_file is not None:
        given.update(read_json_object(config_file))
    given.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if "steps" in given:
        given["qa_steps"] = given.pop("steps")
    for k in ("text_encoder", "t5_path", "mixed_precision"):
        if given.get(k) is not None:
            raise TasBenchError(f"the assessor does not take {k}", field=f"--{k.replace('_', '-')}")
        given.pop(k, None)
    unknown = sorted(set(given) - _FIELDS)
    if unknown:
        raise TasBenchError(f"unknown assessor config field(s) {unknown}; known: {sorted(_FIELDS)}",
                            field="--set")
    cfg.update(given)
    if cfg["preset"] not in ("cpu", "paper"):
        raise TasBenchError(f"unknown preset {cfg['preset']!r} (cpu | paper)", field="--preset")
    for k in ("pretrain_steps", "qa_steps", "batch_size", "checkpoint_every", "val_every",
              "val_items", "max_new_tokens", "qa_curriculum"):
        v = cfg.get(k, 0)
        nonneg = k.endswith("steps") or k == "qa_curriculum"
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if nonneg else 1):
            raise TasBenchError(f"expected a {'non-negative' if nonneg else 'positive'}"
                                f" integer, got {v!r}", field=k)
    types = cfg.get("qa_curriculum_types", [])
    if not isinstance(types, list) or any(t not in QUESTION_TYPES for t in types):
        raise TasBenchError(f"expected a list of question types out of {sorted(QUESTION_TYPES)}, "
                            f"got {types!r}", field="qa_curriculum_types")
    if not isinstance(cfg.get("qa_every_pair", False), bool):
        raise TasBenchError(f"expected true or false, got {cfg['qa_every_pair']!r}",
                            field="qa_every_pair")
    if cfg["llm_path"] is not None:
        cfg["llm_path"] = str(Path(cfg["llm_path"]).resolve())
    if cfg.get("init_encoder") is not None:
        cfg["init_encoder"] = encoder_source(cfg["init_encoder"])
    else:
        cfg.pop("init_encoder", None)  # runs made before the option keep their config
    return cfg


def encoder_source(given: Any) -> dict[str, str]:
    """``init_encoder``: the assessor (run folder, shipped or registered name) whose encoder
    weights a run starts from, as ``{"source", "path", "sha256"}`` -- the sha256 of its model
    file, so a resumed run refuses a source that changed since. A resolved dict is re-checked."""
    from evaluators.spatial_qa.evaluator import resolve_assessor
    from tas_bench.runtime.fileio import sha256_file
    from tas_bench.runtime.runs import MODEL_FILE

    name = given["source"] if isinstance(given, dict) else given
    if not isinstance(name, str) or not name:
        raise TasBenchError(f"expected an assessor run folder or name, got {given!r}",
                            field="init_encoder")
    path = resolve_assessor(name).resolve()
    model = path / MODEL_FILE
    if not model.is_file():
        raise TasBenchError("not a finished assessor run (no model file)", path=model)
    return {"source": name, "path": str(path), "sha256": sha256_file(model)}


def load_encoder_from(a: SpatialQAAssessor, source: dict[str, str], labels: list[str]) -> None:
    """Copy the encoder weights (heads included) of the assessor ``source``
    (:func:`encoder_source`) into ``a``; refused unless the encoder config and class labels
    are the same and the source's model file is the one recorded."""
    import json

    from evaluators.spatial_qa.assessor import load_assessor_run

    loaded = load_assessor_run(source["path"])
    if loaded.checkpoint_sha256 != source["sha256"]:
        raise TasBenchError("the init_encoder assessor changed since this run recorded it "
                            f"(sha256 {source['sha256'][:12]}…)", path=source["path"])
    if list(loaded.structure["labels"]) != list(labels):
        raise TasBenchError("init_encoder was trained on other class labels than this dataset's",
                            field="init_encoder")
    if loaded.structure["encoder"] != a.encoder.config.to_dict():
        theirs = json.dumps(loaded.structure["encoder"], sort_keys=True)
        ours = json.dumps(a.encoder.config.to_dict(), sort_keys=True)
        raise TasBenchError(f"init_encoder's encoder config {theirs} differs from this run's {ours}",
                            field="init_encoder")
    a.encoder.load_state_dict(loaded.model.encoder.state_dict())


def _config_object(cfg: dict[str, Any]) -> AssessorTrainConfig:
    proj = cfg.get("projector")
    return AssessorTrainConfig(
        preset=cfg["preset"], pretrain_steps=cfg["pretrain_steps"], qa_steps=cfg["qa_steps"],
        batch_size=cfg["batch_size"], lr=cfg["lr"], qa_lr=cfg["qa_lr"],
        weight_decay=cfg["weight_decay"], seed=cfg["seed"], llm=ScratchLLMConfig(**cfg["llm"]),
        projector=ProjectorConfig(**proj) if proj else None,
        encoder_overrides=dict(cfg["encoder_overrides"]), max_new_tokens=cfg["max_new_tokens"],
        mirror_augment=bool(cfg["mirror_augment"]), qa_train_encoder=bool(cfg["qa_train_encoder"]),
        cls_weight=None if cfg.get("cls_weight") is None else float(cfg["cls_weight"]),
        bound_weight=float(cfg.get("bound_weight") or 0.0),
        qa_curriculum=int(cfg.get("qa_curriculum") or 0),
        qa_curriculum_types=list(cfg.get("qa_curriculum_types") or []),
        qa_every_pair=bool(cfg.get("qa_every_pair") or False))


def evaluate_qa(a: SpatialQAAssessor, feats: torch.Tensor, examples: list[qa_data.QAExample],
                *, max_new_tokens: int = 12, batch: int = 32) -> dict[str, float]:
    """Accuracy per QA category of ``a`` on ``examples`` (features indexed by example.clip)."""
    from tas_bench.data.qa import answer_correct

    hits: dict[str, list[bool]] = {}
    was_training = a.training
    a.eval()
    with torch.no_grad():
        for s in range(0, len(examples), batch):
            ex = examples[s: s + batch]
            slots = a.slots_from_tokens(
                a.encoder.forward_features(feats[torch.tensor([e.clip for e in ex])]))
            answers = a.answer_from_slots(slots, [e.question for e in ex],
                                          max_new_tokens=max_new_tokens)
            for e, ans in zip(ex, answers):
                hits.setdefault(e.category, []).append(
                    answer_correct(e.category, e.question_type, ans, e.answer))
    a.train(was_training)
    return {k: float(np.mean(v)) for k, v in hits.items()}


def train_assessor_run(kind: str, data: Any, out: Any, *, config_file: Any = None,
                       overrides: dict[str, Any] | None = None, progress: bool = True,
                       command: str | None = None) -> dict[str, Any]:
    """``tas-bench train assessor``: train (or resume) an assessor run in ``out``."""
    import json

    from tqdm.auto import tqdm

    from evaluators.spatial_qa.assessor import (
        FORMAT,
        WHAT,
        assessor_structure,
        load_trainable_state,
        trainable_state,
    )
    from tas_bench.data.manifest import dataset_fingerprint, load_dataset
    from tas_bench.runtime.fileio import sha256_file, stable_hash
    from tas_bench.runtime.runs import (
        METRICS_FILE,
        MODEL_FILE,
        MetricsLog,
        finish_run,
        latest_checkpoint,
        load_checkpoint,
        prepare_run,
        save_checkpoint,
        save_model,
        set_rng_state,
    )

    cfg = resolve_assessor_config(overrides, config_file)
    out = Path(out)
    ds = load_dataset(data)
    train_clips = [c for c in ds.clips if c.split == "train"]
    val_clips = [c for c in ds.clips if c.split == "val"]
    examples = qa_data.qa_examples(train_clips)
    if not train_clips or not examples:
        raise TasBenchError("the dataset has no train clips with QA items", path=data)
    extra = (qa_data.pair_relation_examples(train_clips, int(cfg["seed"]))
             if cfg.get("qa_every_pair") else [])
    fp = dataset_fingerprint(data)
    record = {"path": str(Path(data).resolve()), "fingerprint": fp,
              "clips": {"train": len(train_clips), "val": len(val_clips)},
              "qa_items": len(examples)}
    if cfg.get("qa_every_pair"):
        record["pair_relation_items"] = len(extra)
    examples = examples + extra
    prepare_run(out, config=cfg, data=record,
                what=WHAT, resumable=RESUMABLE)
    if cfg["torch_threads"]:
        torch.set_num_threads(int(cfg["torch_threads"]))
    tc = _config_object(cfg)
    llm_path = Path(cfg["llm_path"]) if cfg["llm_path"] else None
    a, labels, llm_meta = build_assessor(tc, train_clips, out, llm_path)
    external = llm_path is not None
    pc = tc.projector or PROJECTOR_PRESETS[tc.preset]
    structure = assessor_structure(a, pc, llm_meta, labels)
    model_hash = stable_hash(structure)
    meta = {"kind": KIND, "model_hash": model_hash, "assessor": json.dumps(structure, sort_keys=True)}

    front = a.encoder.front
    feats = qa_data.split_features(front, ds, train_clips)
    geo = qa_data.geometry_labels(train_clips, labels)
    single = torch.tensor([len(c.sources) == 1 for c in train_clips])
    vfeats = qa_data.split_features(front, ds, val_clips) if val_clips else None
    vgeo = qa_data.geometry_labels(val_clips, labels) if val_clips else None
    vsingle = torch.tensor([len(c.sources) == 1 for c in val_clips]) if val_clips else None
    vex = qa_data.qa_examples(val_clips)[: cfg["val_items"]] if val_clips else []

    start, opt_state = 0, None
    last = latest_checkpoint(out)
    if last is not None:
        ck = load_checkpoint(last, fmt=FORMAT, what=WHAT)
        if ck.meta.get("model_hash") != model_hash:
            raise TasBenchError("checkpoint was written for another assessor config",
                                path=last)
        load_trainable_state(a, ck.model_state, external=external, where=last)
        opt_state = ck.optimizer_state
        set_rng_state(ck.rng)
        start = ck.step
    else:
        if cfg.get("init_encoder"):
            load_encoder_from(a, cfg["init_encoder"], labels)
        torch.manual_seed(tc.seed)
    total = tc.pretrain_steps + tc.qa_steps
    log = MetricsLog(out / METRICS_FILE, METRIC_FIELDS, start)
    bar = tqdm(total=total, initial=start, disable=not progress, desc="assessor", unit="step")
    t_start = time.perf_counter()

    def write(row: dict[str, Any], pretraining: bool) -> None:
        step = row["step"]
        rec: dict[str, Any] = {"step": step, "stage": row["stage"], "loss": f"{row['loss']:.6g}",
                               "lr": f"{row['lr']:.3g}",
                               "wall_s": f"{time.perf_counter() - t_start:.1f}"}
        if vfeats is not None and (step % cfg["val_every"] == 0 or step == total):
            if pretraining or step == tc.pretrain_steps:
                sel = vsingle
                if sel is not None and bool(sel.any()):
                    h = direction_accuracy_of_heads(a, vfeats[sel], {k: v[sel] for k, v in vgeo.items()})
                    rec["val_az_within_20"] = f"{h['az_within_20']:.4f}"
                    rec["val_lr_sign"] = f"{h['lr_sign']:.4f}"
            else:
                acc = evaluate_qa(a, vfeats, vex, max_new_tokens=tc.max_new_tokens)
                for cat in ("DOA", "DE", "Direction", "Distance"):
                    if cat in acc:
                        rec[f"val_{cat.lower()}"] = f"{acc[cat]:.4f}"
        log.write(rec)
        bar.update(1)
        bar.set_postfix(stage=row["stage"], loss=f"{row['loss']:.3f}")

    def checkpoint(step: int, opt: Any) -> None:
        save_checkpoint(out, step, trainable_state(a, external=external, with_llm=True), meta,
                        opt.state_dict(), {"seed": tc.seed}, keep=2, fmt=FORMAT)

    train_assessor(a, feats, geo, single, examples, tc, log=write, start_step=start,
                   optimizer_state=opt_state, checkpoint=checkpoint,
                   checkpoint_every=cfg["checkpoint_every"])
    bar.close()
    final_meta = dict(meta)
    if not external:
        a.llm.save_pretrained(str(out / "llm"))
        a.tokenizer.save_pretrained(str(out / "llm"))
        final_meta["llm_sha256"] = sha256_file(out / "llm" / "model.safetensors")
    save_model(out / MODEL_FILE, trainable_state(a, external=external, with_llm=False), final_meta,
               fmt=FORMAT)
    n_params = sum(p.numel() for p in a.parameters())
    n_train = sum(p.numel() for p in a.parameters() if p.requires_grad)
    return finish_run(out, {"kind": KIND, "steps": total, "resumed_from": start,
                            "model_hash": model_hash, "parameters": n_params,
                            "trainable_parameters": n_train, "data_fingerprint": fp},
                      command=command)
