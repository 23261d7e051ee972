"""The system API: (mono waveform, sample rate, prompt) -> binaural waveform, in batches.

Conventions (paper, REFERENCE.md §1): the mono input is ``m = L + R`` of the reference clip; a
system predicts the difference ``d = L - R`` and returns ``L = (m + d) / 2``, ``R = (m - d) / 2``,
so ``L + R = m`` up to float rounding whatever ``d`` is.

Documented behaviour for awkward input (checked by :func:`validate_mono` / :func:`validate_prompt`):

* NaN or Inf samples, an empty array or a non-1-D array: :class:`TasBenchError`.
* an all-zero (silent) input: the output is exact silence (no model call).
* an input that looks clipped (many samples at a peak >= 0.99): accepted, with a warning.
* an input shorter than one model window: zero-padded for the model, output trimmed back.
* an input at another sample rate than the system's: resampled to the system's rate; the output
  is always at :attr:`System.sample_rate` (or at the input rate for rate-agnostic systems).
* a prompt that is empty: the system's "no text" behaviour; very long: truncated by the text
  encoder; in an unexpected language: mostly unknown tokens, behaves close to "no text".
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from tas_bench.runtime.audio_io import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, resample
from tas_bench.runtime.errors import TasBenchError

#: Longest prompt accepted at all (characters); longer ones are cut here before tokenising.
MAX_PROMPT_CHARS = 4096


class ClippedInputWarning(UserWarning):
    """The mono input looks clipped; it is processed anyway."""


def validate_mono(x: Any, *, what: str = "mono input") -> np.ndarray:
    """Return ``x`` as a finite float32 1-D array or raise :class:`TasBenchError`.

    A (1, T) array is flattened; warns with :class:`ClippedInputWarning` when more than 0.1 % of
    the samples sit at a peak of magnitude >= 0.99 (the signature of clipping).
    """
    arr = np.asarray(x)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise TasBenchError(f"expected a 1-D mono waveform, got shape {tuple(arr.shape)}", field=what)
    if arr.size == 0:
        raise TasBenchError("empty waveform (0 samples)", field=what)
    if not np.issubdtype(arr.dtype, np.number):
        raise TasBenchError(f"expected numeric samples, got dtype {arr.dtype}", field=what)
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise TasBenchError("contains NaN or Inf samples", field=what)
    peak = float(np.abs(arr).max())
    if peak >= 0.99 and np.count_nonzero(np.abs(arr) >= peak - 1e-4) > max(2, arr.size // 1000):
        warnings.warn(f"{what} looks clipped (many samples at |x| = {peak:.3f}); processing it anyway",
                      ClippedInputWarning, stacklevel=3)
    return arr


def validate_prompt(p: Any, *, what: str = "prompt") -> str:
    """Return the prompt as a string (``None`` -> ``""``); refuse non-strings; cut very long ones."""
    if p is None:
        return ""
    if not isinstance(p, str):
        raise TasBenchError(f"expected a string, got {type(p).__name__}", field=what)
    return p[:MAX_PROMPT_CHARS]


def compose_binaural(mono: np.ndarray, diff: np.ndarray) -> np.ndarray:
    """``(2, T)`` binaural from the mix ``m`` and difference ``d``: L = (m + d)/2, R = (m − d)/2."""
    out = np.empty((2, mono.shape[-1]), dtype=np.float32)
    out[0] = (mono + diff) * 0.5
    out[1] = (mono - diff) * 0.5
    return out


class System(ABC):
    """A spatialization system. Subclasses implement :meth:`_spatialize` and :meth:`card`.

    ``sample_rate`` is the rate the system works and answers at; ``None`` means rate-agnostic
    (the output is at the input's rate).
    """

    name: str = "system"
    sample_rate: int | None = None

    @abstractmethod
    def card(self) -> dict[str, Any]:
        """The system described as data: name, kind, revision, parameters, sample_rate,
        training_data (fingerprint or None), licence, description, config."""

    @abstractmethod
    def _spatialize(self, mono: list[np.ndarray], prompts: list[str]) -> list[np.ndarray]:
        """Spatialize validated, non-silent mono arrays at ``self.sample_rate``."""

    def output_rate(self, input_rate: int) -> int:
        """The sample rate of the output for an input at ``input_rate`` Hz."""
        return int(self.sample_rate or input_rate)

    def spatialize_batch(self, mono: list[np.ndarray], prompts: list[str],
                         sample_rate: int) -> list[np.ndarray]:
        """Binaural ``(2, T')`` float32 arrays at :meth:`output_rate` for each (mono, prompt).

        ``T'`` is the input length converted to the output rate. Deterministic for equal inputs.
        """
        if len(mono) != len(prompts):
            raise TasBenchError(f"{len(mono)} waveforms but {len(prompts)} prompts")
        if (not isinstance(sample_rate, int | np.integer)
                or not MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_SAMPLE_RATE):
            raise TasBenchError(f"sample rate {sample_rate!r} out of range "
                                f"[{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz")
        rate = self.output_rate(int(sample_rate))
        xs = []
        for i, x in enumerate(mono):
            arr = validate_mono(x, what=f"mono input {i}")
            if rate != sample_rate:
                arr = resample(arr, int(sample_rate), rate).astype(np.float32)
            xs.append(arr)
        ps = [validate_prompt(p, what=f"prompt {i}") for i, p in enumerate(prompts)]
        results: list[np.ndarray | None] = [None] * len(xs)
        todo = [i for i, x in enumerate(xs) if np.any(x)]
        for i, x in enumerate(xs):
            if i not in todo:
                results[i] = np.zeros((2, x.shape[0]), dtype=np.float32)
        if todo:
            outs = self._spatialize([xs[i] for i in todo], [ps[i] for i in todo])
            for i, y in zip(todo, outs):
                results[i] = np.asarray(y, dtype=np.float32)
        return [r for r in results if r is not None]

    def spatialize(self, mono: np.ndarray, prompt: str, sample_rate: int) -> np.ndarray:
        """One clip: see :meth:`spatialize_batch`."""
        return self.spatialize_batch([mono], [prompt], sample_rate)[0]
