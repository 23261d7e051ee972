"""Projector from encoder tokens to the LLM's embedding width (SLAM-LLM's Q-Former layout).

``n_queries`` learned queries attend to the encoder's tokens through ``n_layers`` layers of
(self-attention over the queries, cross-attention to the encoder tokens, MLP), then
``Linear(dim -> llm_width) + LayerNorm``: the LLM receives ``n_queries`` audio embeddings.
The paper preset is SLAM-LLM's (8 layers, 64 queries); the cpu preset is the lighter
documented alternative: the same class with 1 layer and 8 queries.
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


class QFormerProjector(nn.Module):
    """(B, L, enc_dim) encoder tokens -> (B, n_queries, llm_width) audio embeddings."""

    def __init__(self, enc_dim: int, llm_width: int, n_queries: int, n_layers: int,
                 heads: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(1, n_queries, enc_dim) * 0.02)
        self.layers = nn.ModuleList(_QFormerLayer(enc_dim, heads) for _ in range(n_layers))
        self.out = nn.Linear(enc_dim, llm_width)
        self.norm = nn.LayerNorm(llm_width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        q = self.queries.expand(tokens.shape[0], -1, -1)
        for layer in self.layers:
            q = layer(q, tokens)
        return self.norm(self.out(q))
