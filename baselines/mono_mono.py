"""Mono-Mono: both ears get half the mix, ``L = R = m / 2`` (so ``d = 0``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from baselines.base import System, compose_binaural
from tas_bench.runtime.fileio import stable_hash

_VERSION = 1


class MonoMono(System):
    """The trivial baseline; rate-agnostic (answers at the input's sample rate)."""

    name = "mono-mono"
    sample_rate = None

    def card(self) -> dict[str, Any]:
        config = {"version": _VERSION}
        return {
            "name": self.name,
            "kind": "mono-mono",
            "revision": stable_hash({"kind": "mono-mono", **config})[:16],
            "parameters": 0,
            "sample_rate": None,
            "training_data": None,
            "licence": "Apache-2.0",
            "description": "L = R = m/2: the mono mix duplicated (paper Table 2/3 baseline).",
            "config": config,
        }

    def _spatialize(self, mono: list[np.ndarray], prompts: list[str]) -> list[np.ndarray]:
        return [compose_binaural(m, np.zeros_like(m)) for m in mono]
