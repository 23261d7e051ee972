"""Spatial-cue metrics: interaural cue errors and objective localisation accuracy.

Per clip (``pred`` and ``ref`` (2, T) at 16 kHz; cue definitions, sign conventions and the
silence rule are in :mod:`evaluators.localiser`; no normalisation, the cues are level-free):

============================ ===================================================================
``itd_error_us``             ``|ITD_pred - ITD_ref|`` in microseconds (GCC-PHAT, |tau| <= 1 ms)
``ild_error_db``             ``|ILD_pred - ILD_ref|`` in dB (broadband energy ratio)
``ild_band_error_db``        mean over the 19 third-octave-like bands (100 Hz - 8 kHz) defined in
                             both signals of ``|ILD_pred,b - ILD_ref,b|`` in dB
``ic_error``                 ``|IC_pred - IC_ref|`` (interaural coherence, max normalised
                             cross-correlation within 1 ms)
``itd_pred_us`` etc.         the cues themselves (``itd_pred_us``, ``itd_ref_us``,
                             ``ild_pred_db``, ``ild_ref_db``) for figures, not rankings
``lr_correct``               1 if the localiser's left/right word for the prediction equals the
                             manifest's ground truth for the clip's source, else 0 (also 0 when
                             the side is undecided)
``lr_undecided``             1 if the prediction's side is undecided (no clear ILD/ITD, or
                             clear ones that contradict; :func:`~evaluators.localiser.
                             lateral_decision`), else 0; lower is better
``octant_correct``           1 if all three words (lateral, frontal, vertical) match (0 when
                             undecided); NaN (not applicable) on a horizontal dataset
``lr_correct_ref``,          the same on the reference audio: the ceiling the localiser reaches
``octant_correct_ref``,      on the ground truth (and how often the reference itself is
``lr_undecided_ref``         undecided)
============================ ===================================================================

Left/right is decided from the signs of the broadband ILD and the GCC-PHAT ITD (a cue votes
when ``|ILD| >= 1 dB`` or ``|ITD| >= 30 us``; votes must agree), not by the templates, so a
signal without interaural cues (e.g. Mono-Mono's) is undecided on every head instead of being
called left on one head and right on another (version 1.1; version 1.0 took the lateral word of
the nearest template). The octant's other two words come from the nearest template on the
decided side.

Horizontal datasets (sources described by two words, lateral and frontal: heads whose
directions do not cover the octants, see :func:`tas_bench.data.hrtf.placement_directions`) have
no above/below truth, so ``octant_correct`` and ``octant_correct_ref`` are undefined there: NaN
per clip (left out of the means, so the metric reads "n = 0", never 0), and the evaluator's
recorded config says why under ``not_applicable``. ``lr_correct`` and ``lr_undecided`` are as
everywhere.

The means of the 0/1 values over clips are accuracies. Localiser values exist only for clips of
category ``single_doa_de`` with exactly one source; they are NaN elsewhere (two-source clips have
no single direction, imported ``real`` recordings have no geometry) and for a signal with a
silent channel (no ITD). A cue undefined on either side makes its error NaN.

The localiser uses the HRTF the dataset was rendered with: the ``hrtf`` field of the
single-source clips (its ``name`` when that is a known HRTF such as ``"kemar"`` or the
built-in sphere ``"sphere:RADIUS"``, else its ``path``; ``"kemar"`` when the field is null), or the ``hrtf=`` option to override it. The HRTF's
name and sha256 are recorded in :meth:`SpatialCueEvaluator.config` once
:meth:`~SpatialCueEvaluator.check_requirements` has resolved it (the runner calls that first).
A dataset without single-source clips (e.g. imported recordings) is runnable: the cue metrics
need no geometry and the localiser values are NaN. ``needs`` lists every manifest field read
(``sources``, ``category``, ``hrtf``) so cached outputs are keyed on all of them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from evaluators.base import ClipInput, ClipOutput, Evaluator, MetricSpec
from evaluators.localiser import (
    BAND_LOW_HZ,
    ILD_SCALE_MIN,
    MAX_ITD_S,
    N_BANDS,
    SIDE_ILD_DB,
    SIDE_ITD_S,
    SIGMA_ILD_DB,
    SIGMA_ITD_S,
    SILENCE_RMS,
    Cues,
    Localiser,
    band_edges,
    interaural_cues,
)
from tas_bench.runtime.errors import TasBenchError

if TYPE_CHECKING:
    from tas_bench.data.manifest import Clip, Dataset

LOCALISED_CATEGORY = "single_doa_de"
DEFAULT_HRTF = "kemar"
#: Per-clip values that describe a signal rather than score it (for figures, not rankings).
DESCRIPTIVE_METRICS = ("itd_pred_us", "itd_ref_us", "ild_pred_db", "ild_ref_db")
#: Ceiling metrics (the localiser on the reference audio) and the metric each one bounds.
CEILING_METRICS = {"lr_correct_ref": "lr_correct", "octant_correct_ref": "octant_correct"}
#: Localiser metrics (NaN outside single-source clips and for a signal with a silent channel).
LOCALISER_METRICS = ("lr_correct", "octant_correct", "lr_undecided",
                     "lr_correct_ref", "octant_correct_ref", "lr_undecided_ref")


#: Why the octant metrics are undefined on a horizontal dataset (recorded in the config).
OCTANT_NOT_APPLICABLE = ("not applicable: the dataset is horizontal (its sources have lateral and "
                         "frontal words only), so there is no above/below truth to score")


def _is_horizontal(clip: Clip) -> bool:
    return bool(clip.sources) and all(len(s.direction) == 2 for s in clip.sources)


def is_localisable(clip: Clip) -> bool:
    """Whether the localiser metrics are defined for ``clip`` (single-source DoA clip)."""
    return clip.category == LOCALISED_CATEGORY and len(clip.sources) == 1


def hrtf_spec(clip: Clip) -> str:
    """The HRTF to load for a clip: a known name, else the recorded path, else ``"kemar"``."""
    from tas_bench.data.hrtf import KNOWN_HRTFS
    from tas_bench.data.sphere_head import is_sphere_spec

    info = clip.hrtf or {}
    name = info.get("name")
    if isinstance(name, str) and (name.lower() in KNOWN_HRTFS or is_sphere_spec(name)):
        return name.lower()
    path = info.get("path")
    if isinstance(path, str) and path:
        return path
    if isinstance(name, str) and name:
        return name
    return DEFAULT_HRTF


def _abs_diff(a: float, b: float) -> float:
    return abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.nan


def _band_error(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.mean(np.abs(a[ok] - b[ok]))) if ok.any() else math.nan


class SpatialCueEvaluator(Evaluator):
    """ITD / ILD / band-ILD / IC errors and localiser accuracy of predictions.

    Option: ``hrtf`` (a known HRTF name or a SOFA path) to override the dataset's HRTF for the
    localiser.
    """

    name: ClassVar[str] = "cues"
    version: ClassVar[str] = "1.1"
    sample_rate: int = 16000
    batch_size: int = 16
    needs: ClassVar[tuple[str, ...]] = ("sources", "category", "hrtf")
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("itd_error_us", False, "us",
                   "|ITD_pred - ITD_ref|, ITD by GCC-PHAT within +-1 ms, parabolic peak"),
        MetricSpec("ild_error_db", False, "dB", "|ILD_pred - ILD_ref|, ILD = 10 log10(sum L^2 / sum R^2)"),
        MetricSpec("ild_band_error_db", False, "dB",
                   "mean over 19 bands (100 Hz - 8 kHz, ~1/3 octave) of |band ILD_pred - ILD_ref|"),
        MetricSpec("ic_error", False, "1",
                   "|IC_pred - IC_ref|, IC = max normalised interaural cross-correlation, |tau| <= 1 ms"),
        MetricSpec("itd_pred_us", False, "us",
                   "ITD of the prediction (positive = left ear leads); a value for figures, not a ranking"),
        MetricSpec("itd_ref_us", False, "us",
                   "ITD of the reference (positive = left ear leads); a value for figures, not a ranking"),
        MetricSpec("ild_pred_db", False, "dB",
                   "ILD of the prediction (positive = left louder); a value for figures, not a ranking"),
        MetricSpec("ild_ref_db", False, "dB",
                   "ILD of the reference (positive = left louder); a value for figures, not a ranking"),
        MetricSpec("lr_correct", True, "fraction",
                   "localiser's left/right word on the prediction equals the ground truth (single-source clips)"),
        MetricSpec("octant_correct", True, "fraction",
                   "localiser's three direction words on the prediction equal the ground truth (single-source clips)"),
        MetricSpec("lr_correct_ref", True, "fraction",
                   "left/right accuracy of the localiser on the reference audio (ceiling)"),
        MetricSpec("octant_correct_ref", True, "fraction",
                   "octant accuracy of the localiser on the reference audio (ceiling)"),
        MetricSpec("lr_undecided", False, "fraction",
                   "prediction's side undecided: no |ILD| >= 1 dB nor |ITD| >= 30 us, or they "
                   "contradict (single-source clips; counted as not lr_correct)"),
        MetricSpec("lr_undecided_ref", False, "fraction",
                   "reference's side undecided by the same rule (single-source clips)"),
    )

    def __init__(self, *, hrtf: str | None = None, **unknown: Any) -> None:
        super().__init__(**unknown)
        if hrtf is not None and (not isinstance(hrtf, str) or not hrtf):
            raise TasBenchError(f"expected an HRTF name or SOFA path, got {hrtf!r}", field="cues.hrtf")
        self.hrtf_override = hrtf
        self._resolved: str | None = None
        self._localisers: dict[str, Localiser] = {}
        self._not_applicable: dict[str, str] = {}

    # ---- HRTF / localiser ------------------------------------------------------------------
    def _localiser(self, spec: str) -> Localiser:
        loc = self._localisers.get(spec)
        if loc is None:
            from tas_bench.data.hrtf import load_hrtf

            loc = Localiser.from_hrtf(load_hrtf(spec, self.sample_rate), self.sample_rate)
            self._localisers[spec] = loc
        return loc

    def _spec_for(self, clip: Clip) -> str:
        if self.hrtf_override is not None:
            return self.hrtf_override
        if self._resolved is not None:
            return self._resolved
        return hrtf_spec(clip)

    def check_requirements(self, dataset: Dataset) -> str | None:
        """Resolve and load the localiser's HRTF. ``None`` (runnable) also when the dataset has
        no single-source clips: the cue metrics need no geometry, the localiser values are NaN."""
        clips = [c for c in dataset.clips if is_localisable(c)]
        self._not_applicable = {}
        if any(_is_horizontal(c) for c in clips):
            self._not_applicable = dict.fromkeys(("octant_correct", "octant_correct_ref"),
                                                 OCTANT_NOT_APPLICABLE)
        if not clips:
            return None
        if self.hrtf_override is not None:
            spec = self.hrtf_override
        else:
            specs = sorted({hrtf_spec(c) for c in clips})
            if len(specs) > 1:
                return (f"single-source clips name several HRTFs ({', '.join(specs)}); "
                        "choose one with the option hrtf=NAME_OR_SOFA")
            spec = specs[0]
        try:
            loc = self._localiser(spec)
        except TasBenchError as exc:
            return f"cannot load the localiser HRTF {spec!r}: {exc} (or pass hrtf=NAME_OR_SOFA)"
        if self.hrtf_override is None:
            for c in clips:
                want = (c.hrtf or {}).get("sha256")
                if want and want != loc.sha256:
                    return (f"clip {c.id} was rendered with HRTF sha256 {want[:12]}..., the "
                            f"installed {spec!r} has {loc.sha256[:12]}... (pass hrtf= to use it anyway)")
        self._resolved = spec
        return None

    def config(self) -> dict[str, Any]:
        spec = self.hrtf_override if self.hrtf_override is not None else self._resolved
        hrtf: dict[str, Any] | None = None
        if spec is not None:
            loc = self._localiser(spec)
            hrtf = {"name": loc.name, "sha256": loc.sha256, "override": self.hrtf_override is not None}
        extra: dict[str, Any] = {"not_applicable": dict(self._not_applicable)} \
            if self._not_applicable else {}
        return {
            **extra,
            "sample_rate": self.sample_rate, "max_itd_s": MAX_ITD_S, "itd": "gcc-phat+parabolic",
            "silence_rms": SILENCE_RMS, "bands": {"n": N_BANDS, "low_hz": BAND_LOW_HZ,
                                                   "high_hz": float(band_edges(self.sample_rate)[-1])},
            "localiser": {"sigma_itd_s": SIGMA_ITD_S, "sigma_ild_db": SIGMA_ILD_DB,
                          "ild_scale_min": ILD_SCALE_MIN, "category": LOCALISED_CATEGORY,
                          "side": {"rule": "agreeing signs of the clear broadband cues",
                                   "ild_db": SIDE_ILD_DB, "itd_s": SIDE_ITD_S}},
            "hrtf": hrtf,
        }

    # ---- per clip --------------------------------------------------------------------------
    def _localise_values(self, clip: Clip, cp: Cues, cr: Cues) -> dict[str, float]:
        nan = dict.fromkeys(LOCALISER_METRICS, math.nan)
        if not is_localisable(clip):
            return nan
        from tas_bench.data.geometry import direction_words

        src = clip.sources[0]
        truth = tuple(src.direction) if src.direction else direction_words(src.azimuth, src.elevation)
        loc = self._localiser(self._spec_for(clip))
        out = dict(nan)
        for suffix, cues in (("", cp), ("_ref", cr)):
            judged = loc.judge(cues)
            if judged is None:  # a silent channel: no ITD, nothing to localise
                continue
            words = judged.words  # None: undecided, counted as not correct
            out[f"lr_undecided{suffix}"] = float(words is None)
            out[f"lr_correct{suffix}"] = float(words is not None and words[0] == truth[0])
            if len(truth) == 3:  # a horizontal truth has no vertical word: NaN, not 0
                out[f"octant_correct{suffix}"] = float(words is not None and words == truth)
        return out

    def process_batch(self, batch: list[ClipInput]) -> list[ClipOutput]:
        outs = []
        for item in batch:
            if item.sample_rate != self.sample_rate:
                raise TasBenchError(f"expected audio at {self.sample_rate} Hz, got {item.sample_rate}",
                                    field=f"clip {item.clip.id}")
            cp = interaural_cues(item.pred, item.sample_rate)
            cr = interaural_cues(item.ref, item.sample_rate)
            values = {
                "itd_error_us": _abs_diff(cp.itd_s, cr.itd_s) * 1e6,
                "ild_error_db": _abs_diff(cp.ild_db, cr.ild_db),
                "ild_band_error_db": _band_error(cp.band_ild_db, cr.band_ild_db),
                "ic_error": _abs_diff(cp.ic, cr.ic),
                "itd_pred_us": cp.itd_s * 1e6, "itd_ref_us": cr.itd_s * 1e6,
                "ild_pred_db": cp.ild_db, "ild_ref_db": cr.ild_db,
            }
            values.update(self._localise_values(item.clip, cp, cr))
            outs.append(ClipOutput(values={k: float(v) for k, v in values.items()}))
        return outs
