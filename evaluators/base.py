"""The evaluator API.

An evaluator turns (prediction, reference, manifest clip) into per-clip metric values and
optionally per-clip arrays (embeddings, logits) from which corpus-level metrics are computed.

Life cycle, driven by :mod:`tas_bench.pipeline.scoring`:

1. ``ev = Cls(**config)``; ``ev.config()`` is recorded in results and hashed into cache keys.
2. ``ev.check_requirements(dataset)`` returns ``None`` or the reason it cannot run
   (missing weights, dataset without source geometry...). Not runnable + asked for explicitly
   is an error; not runnable + default set is listed as skipped.
3. ``ev.process_batch([ClipInput, ...])`` -> ``[ClipOutput, ...]``: pure function of its inputs
   and config, so outputs are cached by content and shards can compute them independently.
4. Corpus metrics: ``state = ev.init_state()``; ``ev.update_state(state, clip_id, output)`` for
   every clip (in any order, any process); ``ev.merge_states(a, b)``; ``ev.compute(state)``.
   States hold float64 sufficient statistics (sums, sums of outer products) so that merging is
   exact; where a metric needs per-item data (IS needs every logit row) the state holds arrays
   keyed by clip id, bounded by the number of clips, and is made order-independent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from tas_bench.data.manifest import Clip, Dataset


@dataclass(frozen=True)
class MetricSpec:
    """A metric an evaluator produces.

    ``per_clip`` metrics have one value per clip (aggregated as mean/std/bootstrap CI by the
    runner); corpus metrics (FD, FAD, IS) come from :meth:`Evaluator.compute`.
    """

    name: str
    higher_is_better: bool
    unit: str
    description: str
    per_clip: bool = True


@dataclass
class ClipInput:
    """One clip handed to an evaluator.

    ``pred`` and ``ref`` are float64 arrays of shape (2, T), channel 0 = left, at
    ``sample_rate`` Hz, already brought to the same length by the runner's length policy
    (prediction cropped or zero-padded to the reference length).
    """

    clip: Clip
    pred: np.ndarray
    ref: np.ndarray
    sample_rate: int


@dataclass
class ClipOutput:
    """Per-clip results: metric values (NaN = undefined for this clip) and named arrays."""

    values: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class Evaluator(ABC):
    """Base class of metric plugins. Subclasses set the class attributes and implement
    :meth:`process_batch`; corpus-level evaluators also override the state methods."""

    name: ClassVar[str]
    version: ClassVar[str]
    metrics: ClassVar[tuple[MetricSpec, ...]]
    #: Manifest fields the evaluator reads beyond the audio (e.g. ``("sources",)``).
    needs: ClassVar[tuple[str, ...]] = ()
    #: Rate (Hz) at which pred/ref are handed to :meth:`process_batch`.
    sample_rate: int = 16000
    #: Clips per :meth:`process_batch` call.
    batch_size: int = 16

    def __init__(self, **config: Any) -> None:
        if config:
            from tas_bench.runtime.errors import TasBenchError

            raise TasBenchError(f"evaluator {self.name!r} takes no option(s) {sorted(config)}")

    def config(self) -> dict[str, Any]:
        """The resolved configuration (JSON-serialisable), recorded and hashed."""
        return {"sample_rate": self.sample_rate}

    def check_requirements(self, dataset: Dataset) -> str | None:
        """``None`` when the evaluator can run on ``dataset``, else the reason it cannot."""
        return None

    def weights_info(self) -> dict[str, dict[str, Any]]:
        """Backbone weights in use: ``{name: {"sha256": ..., "custom": bool, ...}}``."""
        return {}

    @abstractmethod
    def process_batch(self, batch: list[ClipInput]) -> list[ClipOutput]:
        """Compute per-clip values/arrays for each input, in order."""

    # ---- corpus-level metrics (optional) ---------------------------------------------------
    def init_state(self) -> dict[str, Any]:
        """A fresh, empty mergeable state."""
        return {}

    def update_state(self, state: dict[str, Any], clip_id: str, output: ClipOutput) -> None:
        """Fold one clip's output into ``state`` in place (no-op without corpus metrics)."""
        return None

    def merge_states(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        """Combine two states (from disjoint clip sets) exactly."""
        return a

    def compute(self, state: dict[str, Any]) -> dict[str, Any]:
        """Corpus-level metrics from a state: ``{metric: value}`` plus optional extra keys
        ``{metric}_std`` and ``warnings`` (list of strings)."""
        return {}

    # ---- optional hooks -------------------------------------------------------------------
    #: Set by the runner before any ``process_batch``: the score cache (an
    #: :class:`tas_bench.runtime.cache.OutputCache`; disabled when scoring with ``--no-cache``), for
    #: sub-results that depend on fewer inputs than a clip's key (e.g. answers on the reference
    #: audio, the same for every system). Keys must hold everything the sub-result depends on.
    aux_cache: Any = None

    def result_files(self, outputs: dict[str, ClipOutput]) -> dict[str, bytes]:
        """Extra files for the results folder, ``{relative name: bytes}``, from the outputs of
        the scored clips (``{clip id: output}`` in manifest order). Listed with their sha256 in
        ``results.json`` like ``per_clip.csv``. Default: none."""
        return {}

    def per_clip_metrics(self) -> list[MetricSpec]:
        return [m for m in self.metrics if m.per_clip]

    def corpus_metrics(self) -> list[MetricSpec]:
        return [m for m in self.metrics if not m.per_clip]
