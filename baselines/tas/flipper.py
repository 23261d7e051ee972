"""The text spatial-coherence module ("flipper", REFERENCE §1).

A small classifier over (text features, difference-audio features) that predicts whether the
audio matches the text. Training pairs: the true difference latent (label 1) and the latent of
``-d`` (left and right swapped; label 0), both with the same prompt; loss = binary cross-entropy.
Its gradient reaches the text encoder (the text features are not detached), which is how the
paper's coherence loss fine-tunes the text encoder.

Audio features: a strided convolutional encoder over the difference latent concatenated with
the mono latent (the mono tells which parts of ``d`` are loud), globally averaged. Text
features: the per-token embeddings mean-pooled over the mask. Head: an MLP over
``[a, t, a * t]``.

With the ``audioldm2`` codec the latents of ``d`` and ``-d`` are identical (the mel keeps only
magnitudes), so the two labels cannot be told apart and the loss stays at ln 2; the module is
meaningful with a sign-preserving codec such as ``relstft``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pool_text(text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean of ``(B, L, D)`` token embeddings over the ``(B, L)`` mask -> ``(B, D)``."""
    m = mask.to(text.dtype)[..., None]
    return (text * m).sum(1) / m.sum(1).clamp(min=1.0)


class Flipper(nn.Module):
    """``(diff latent, mono latent, text tokens, mask) -> logit`` that the audio matches the text."""

    def __init__(self, latent_channels: int, text_dim: int, width: int = 64, hidden: int = 128) -> None:
        super().__init__()
        groups = 8 if width % 8 == 0 else 1
        self.config = {"latent_channels": int(latent_channels), "text_dim": int(text_dim),
                       "width": int(width), "hidden": int(hidden)}
        self.audio = nn.Sequential(
            nn.Conv2d(2 * latent_channels, width, 3, 1, 1), nn.SiLU(),
            nn.Conv2d(width, width, 3, 2, 1), nn.GroupNorm(groups, width), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.GroupNorm(groups, 2 * width), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, 2, 1), nn.SiLU(),
        )
        self.audio_out = nn.Linear(2 * width, hidden)
        self.text_out = nn.Linear(text_dim, hidden)
        self.head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, diff: torch.Tensor, mono: torch.Tensor, text: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,)`` (positive = the audio matches the text)."""
        a = self.audio(torch.cat([diff, mono], 1)).mean(dim=(2, 3))
        a = self.audio_out(a)
        t = self.text_out(pool_text(text, mask).to(a.dtype))
        return self.head(torch.cat([a, t, a * t], 1))[:, 0]


def flipper_loss(flipper: Flipper, z_true: torch.Tensor, z_flipped: torch.Tensor, mono: torch.Tensor,
                 text: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """BCE of the flipper on the pairs (true d: label 1, flipped -d: label 0) of a batch.

    Returns ``{"bce": scalar, "logits": (2B,), "labels": (2B,), "accuracy": scalar}``; the
    first B rows are the true latents.
    """
    diff = torch.cat([z_true, z_flipped], 0)
    logits = flipper(diff, torch.cat([mono, mono], 0), torch.cat([text, text], 0),
                     torch.cat([mask, mask], 0))
    labels = torch.cat([torch.ones(z_true.shape[0]), torch.zeros(z_flipped.shape[0])]).to(logits)
    bce = F.binary_cross_entropy_with_logits(logits, labels)
    acc = ((logits > 0).to(labels.dtype) == labels).to(labels.dtype).mean()
    return {"bce": bce, "logits": logits, "labels": labels, "accuracy": acc.detach()}
