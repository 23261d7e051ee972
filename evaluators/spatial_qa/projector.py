"""Projector from encoder tokens to the LLM's embedding width (SLAM-LLM's Q-Former layout).

``n_queries`` learned queries attend to the encoder's tokens through ``n_layers`` layers of
(self-attention over the queries, cross-attention to the encoder tokens, MLP), then
``Linear(dim -> llm_width) + LayerNorm``: the LLM receives ``n_queries`` audio embeddings.
The paper preset is SLAM-LLM's (8 layers, 64 queries); the cpu preset is the lighter
documented alternative: the same class with 1 layer and 8 queries.

:class:`BoundSourceSlots` (projector option ``bound_slots``, needs the encoder's class-bound
heads) adds two object slots after the queries, one per source the class head finds most
likely, each "which sound and where, and where relative to the other one": a learnt
embedding of the class plus an MLP of the class-bound heads' geometry of that class and its
difference to the other slot's. A relational question ("Is the dog to the left of the
bell?") then needs the language model to find the slot named in the question and read the
sign of one difference, instead of comparing two positions it must first locate in the
Q-Former's slots (measured with oracle slots: a from-scratch LM stays near the Direction
prior on absolute positions alone; benchmarks/qa_oracle_slots.py). Measured with the shipped
encoder: the cpu preset's 2-layer scratch LM does not learn to read them either (Direction
45.5-49.8 %, evaluators/checkpoints/spatial-qa-demo/README.md, "Relations"); an option for
experiments, e.g. with a pretrained LLM, not used by the shipped assessor.
"""

from __future__ import annotations

import torch
from torch import nn


class _QFormerLayer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.n1 = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.n2 = nn.LayerNorm(dim)
        self.cross = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.n3 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, q: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        h = self.n1(q)
        q = q + self.self_attn(h, h, h, need_weights=False)[0]
        h = self.n2(q)
        q = q + self.cross(h, mem, mem, need_weights=False)[0]
        return q + self.mlp(self.n3(q))


#: Geometry read per class from the class-bound heads: the left, front and above logits and the
#: expected distance (bins of the class-bound distance head, in units of 10 m).
BOUND_GEOMETRY = 4


def bound_geometry(heads: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, K, BOUND_GEOMETRY) per class: the class-bound direction-word logits (left, front,
    above; dimensionless) and the class-bound expected distance in units of 10 m."""
    from evaluators.spatial_qa.encoder import DISTANCE_STEP

    dist = heads["bound_dist"]
    metres = torch.arange(dist.shape[-1], dtype=dist.dtype, device=dist.device) * DISTANCE_STEP
    expected = (dist.softmax(-1) * metres).sum(-1, keepdim=True) / 10.0
    return torch.cat([heads["bound_dir"], expected], dim=-1)


class BoundSourceSlots(nn.Module):
    """Heads of a class-bound encoder -> (B, 2, llm_width) object slots (see the module doc).

    The two classes with the largest class-head logits, in class-index order (so a slot's
    place does not depend on which source is louder); per slot the MLP reads the class's
    geometry, its difference to the other slot's, and both presence probabilities."""

    def __init__(self, n_classes: int, llm_width: int, hidden: int = 128) -> None:
        super().__init__()
        self.label = nn.Embedding(n_classes, llm_width)
        self.mlp = nn.Sequential(nn.Linear(2 * BOUND_GEOMETRY + 2, hidden), nn.GELU(),
                                 nn.Linear(hidden, llm_width))
        self.norm = nn.LayerNorm(llm_width)

    def forward(self, heads: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = heads["cls"]
        k = min(2, logits.shape[-1])
        top = logits.topk(k, dim=-1).indices.sort(dim=-1).values  # (B, k)
        geo = bound_geometry(heads).gather(1, top[..., None].expand(-1, -1, BOUND_GEOMETRY))
        present = logits.sigmoid().gather(1, top)[..., None]
        feats = torch.cat([geo, geo - geo.flip(1), present, present.flip(1)], dim=-1)
        return self.norm(self.label(top) + self.mlp(feats))


class QFormerProjector(nn.Module):
    """(B, L, enc_dim) encoder tokens -> (B, n_queries, llm_width) audio embeddings."""

    def __init__(self, enc_dim: int, llm_width: int, n_queries: int, n_layers: int,
                 heads: int, bound_classes: int = 0) -> None:
        super().__init__()
        #: with ``bound_classes`` > 0, two :class:`BoundSourceSlots` follow the queries
        self.bound = BoundSourceSlots(bound_classes, llm_width) if bound_classes else None
        self.queries = nn.Parameter(torch.randn(1, n_queries, enc_dim) * 0.02)
        self.layers = nn.ModuleList(_QFormerLayer(enc_dim, heads) for _ in range(n_layers))
        self.out = nn.Linear(enc_dim, llm_width)
        self.norm = nn.LayerNorm(llm_width)

    def forward(self, tokens: torch.Tensor, heads: dict[str, torch.Tensor] | None = None
                ) -> torch.Tensor:
        """Audio slots of ``tokens``; ``heads`` (the encoder's head logits of the same tokens)
        is needed, and only used, with ``bound_classes``."""
        q = self.queries.expand(tokens.shape[0], -1, -1)
        for layer in self.layers:
            q = layer(q, tokens)
        slots = self.norm(self.out(q))
        if self.bound is None:
            return slots
        if heads is None or "bound_dir" not in heads:
            raise ValueError("bound source slots need the class-bound heads' logits")
        return torch.cat([slots, self.bound(heads)], dim=1)
