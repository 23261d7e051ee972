"""The ``generation`` evaluator: FD, FAD, KL, KL-sigmoid and IS as in haoheliu/audioldm_eval.

Per clip (paired by clip id; reference = the dataset's binaural audio, generated = the
prediction):

* ``kl`` — softmax KL from the reference's PANNs logits to the prediction's
  (:func:`~evaluators.generation.divergences.kl_softmax`); ``kl_sigmoid`` — the sigmoid variant.

Corpus:

* ``fd`` — Fréchet distance between Gaussians fitted to PANNs Cnn14 2048-d embeddings of the
  predictions and of the references;
* ``fad`` — the same on VGGish 128-d embeddings, one per 0.96 s frame, all frames pooled;
* ``is`` (+ ``is_std``) — Inception Score of the predictions' PANNs logits.

Audio handling (audioldm_eval ``datasets/load_mel.py`` for PANNs, ``metrics/fad.py`` for
VGGish). The runner hands (2, T) audio at ``sample_rate`` = ``panns_rate`` (16000 or 32000 Hz).

* Channels: ``channel_policy`` (PANNs; default ``left``: the toolbox keeps the first channel of
  a stereo file) and ``fad_channel_policy`` (VGGish; default ``mid``: the toolbox's FAD loader
  averages the channels). Each is one of ``left``, ``right``, ``mid`` ((L+R)/2) or ``both`` (L
  and R as two separate items: two embeddings per clip for FD, both channels' frames for FAD,
  two logit rows for IS, and ``kl`` = the mean of KL(L_ref, L_gen) and KL(R_ref, R_gen)).
* PANNs: the mean is subtracted (DC removal), float32, zero-padded at the end to 32 000 samples
  when shorter (the toolbox pads to 32 000 samples at any rate: 2 s at 16 kHz, 1 s at 32 kHz),
  full length, one item per forward pass (batch 1, like the toolbox; results do not depend on
  which clips share a ``process_batch`` call).
* VGGish: no DC removal and no padding (as the FAD loader); audio at 32 kHz is resampled to
  16 kHz with :func:`tas_bench.runtime.audio_io.resample`.

Differences from the toolbox that are not bit-exact: the toolbox removes DC at the file rate
before resampling and resamples with torchaudio (FD/KL) or resampy (FAD); here the runner's
resampler is used and DC is removed after it. Float WAVs are read as floats (the FAD loader
reads them as int16, a quantisation below -90 dBFS). KL, IS and the Gaussian statistics are
computed in float64 (the toolbox takes the embedding means in float32 and KL in float32 torch).
FD/FAD take Tr sqrt(S1 S2) from eigenvalues, with scipy's ``sqrtm`` (the toolbox's route) as a
cross-check (``fd_cross_check``; about a minute for 2048 dimensions on two CPU cores).
Backbones run in float32 in eval mode under ``torch.no_grad``, on the CPU by default
(``device="cuda"`` runs them on a GPU; values then differ from CPU ones at float32 round-off
and the device is part of the configuration, hence of the cache key).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from evaluators.base import ClipInput, ClipOutput, Evaluator, MetricSpec
from evaluators.generation import cnn14 as cnn14_mod
from evaluators.generation import vggish as vggish_mod
from evaluators.generation.divergences import inception_score, kl_sigmoid, kl_softmax
from evaluators.generation.frechet import GaussianStats, frechet_from_stats
from tas_bench.runtime.errors import TasBenchError

CHANNEL_POLICIES = ("left", "right", "mid", "both")
#: The toolbox zero-pads shorter clips to this many samples (at the PANNs rate).
MIN_SAMPLES = 32000
#: |FD(eigenvalues) - FD(sqrtm)| above which a warning is raised (relative to max(1, |FD|)).
CROSS_CHECK_TOL = 1e-4


def split_channels(x: np.ndarray, policy: str) -> list[np.ndarray]:
    """The mono signals a (2, T) array contributes under ``policy``."""
    if policy == "left":
        return [x[0]]
    if policy == "right":
        return [x[1]]
    if policy == "mid":
        return [0.5 * (x[0] + x[1])]
    if policy == "both":
        return [x[0], x[1]]
    raise ValueError(policy)


class GenerationEvaluator(Evaluator):
    """FD / FAD / KL / IS with PANNs Cnn14 and VGGish backbones from the local weights store."""

    name: ClassVar[str] = "generation"
    version: ClassVar[str] = "1.0"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("kl", False, "nats",
                   "softmax KL(reference || generated) of PANNs Cnn14 AudioSet logits (AudioGen "
                   "formulation, eps 1e-6)"),
        MetricSpec("kl_sigmoid", False, "nats",
                   "KL of PANNs logits through sigmoids, elementwise, no (1-p) terms "
                   "(audioldm_eval kullback_leibler_divergence_sigmoid)"),
        MetricSpec("fd", False, "",
                   "Fréchet distance of PANNs Cnn14 2048-d embeddings, generated vs reference",
                   per_clip=False),
        MetricSpec("fad", False, "",
                   "Fréchet audio distance of VGGish 128-d frame embeddings (no PCA, no final "
                   "ReLU), generated vs reference", per_clip=False),
        MetricSpec("is", True, "",
                   "Inception Score of PANNs logits of the generated audio (10 splits, "
                   "RandomState(2020) shuffle)", per_clip=False),
    )
    batch_size: int = 8

    def __init__(
        self,
        channel_policy: str = "left",
        fad_channel_policy: str = "mid",
        panns_rate: int = 16000,
        cnn14_weights: str | None = None,
        vggish_weights: str = vggish_mod.WEIGHTS,
        is_splits: int = 10,
        is_seed: int = 2020,
        fd_cross_check: bool = True,
        device: str = "cpu",
    ) -> None:
        for fld, val in (("channel_policy", channel_policy), ("fad_channel_policy", fad_channel_policy)):
            if val not in CHANNEL_POLICIES:
                raise TasBenchError(f"{val!r} is not one of {', '.join(CHANNEL_POLICIES)}",
                                    field=f"generation.{fld}")
        if panns_rate not in cnn14_mod.CONFIGS:
            raise TasBenchError(f"{panns_rate!r} must be 16000 or 32000",
                                field="generation.panns_rate")
        if not isinstance(is_splits, int) or is_splits < 1:
            raise TasBenchError(f"{is_splits!r} must be a positive integer",
                                field="generation.is_splits")
        if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
            raise TasBenchError(f"{device!r} must be 'cpu' or 'cuda[:N]'", field="generation.device")
        from tas_bench.runtime.weights import check_name

        self.channel_policy = channel_policy
        self.fad_channel_policy = fad_channel_policy
        self.panns_rate = int(panns_rate)
        self.sample_rate = self.panns_rate
        self.cnn14_weights = check_name(cnn14_weights or cnn14_mod.CONFIGS[self.panns_rate].weights)
        self.vggish_weights = check_name(vggish_weights)
        self.is_splits = int(is_splits)
        self.is_seed = int(is_seed)
        self.fd_cross_check = bool(fd_cross_check)
        self.device = device
        self._cnn14: cnn14_mod.Cnn14 | None = None
        self._vggish: vggish_mod.VGGish | None = None
        # sha256 per weight name as first reported by weights_info() (the cache key's): the
        # loaders refuse a file whose bytes no longer have it
        self._hashed: dict[str, str] = {}

    # ---- configuration, requirements, weights ------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "channel_policy": self.channel_policy,
            "fad_channel_policy": self.fad_channel_policy,
            "panns_rate": self.panns_rate,
            "cnn14_weights": self.cnn14_weights,
            "vggish_weights": self.vggish_weights,
            "is_splits": self.is_splits,
            "is_seed": self.is_seed,
            "panns_min_samples": MIN_SAMPLES,
            "panns_dc_removal": True,
            "model_dtype": "float32",
            "frechet_trace": "eigenvalues",
            "fd_cross_check": self.fd_cross_check,
            "device": self.device,
        }

    def _roles(self) -> dict[str, str]:
        return {"cnn14": self.cnn14_weights, "vggish": self.vggish_weights}

    def check_requirements(self, dataset: Any) -> str | None:
        from tas_bench.runtime.weights import resolve_weight

        if self.device != "cpu" and not torch.cuda.is_available():
            return f"generation.device is {self.device!r} but CUDA is not available"

        for name in self._roles().values():
            try:
                resolve_weight(name)
            except TasBenchError as exc:
                return str(exc)
        return None

    def weights_info(self) -> dict[str, dict[str, Any]]:
        from tas_bench.runtime.weights import KNOWN, resolve_weight, weights_dir

        info: dict[str, dict[str, Any]] = {}
        for role, name in self._roles().items():
            try:
                st = resolve_weight(name)
            except TasBenchError:
                info[name] = {"role": role, "sha256": None, "custom": name not in KNOWN,
                              "file": str(weights_dir() / name), "status": "missing"}
                continue
            self._hashed.setdefault(name, st.sha256)
            info[name] = {"role": role, "sha256": self._hashed[name], "custom": st.custom,
                          "file": st.path, "status": st.status, "size": st.size}
            if st.note:
                info[name]["note"] = st.note
        return info

    def _load_cnn14(self) -> cnn14_mod.Cnn14:
        if self._cnn14 is None:
            from tas_bench.runtime.weights import resolve_weight

            st = resolve_weight(self.cnn14_weights)
            sha = self._hashed.setdefault(self.cnn14_weights, st.sha256)
            self._cnn14 = cnn14_mod.load_cnn14(st.path, self.panns_rate, sha).to(self.device)
        return self._cnn14

    def _load_vggish(self) -> vggish_mod.VGGish:
        if self._vggish is None:
            from tas_bench.runtime.weights import resolve_weight

            st = resolve_weight(self.vggish_weights)
            sha = self._hashed.setdefault(self.vggish_weights, st.sha256)
            self._vggish = vggish_mod.load_vggish(st.path, sha).to(self.device)
        return self._vggish

    # ---- per clip ----------------------------------------------------------------------------
    @torch.no_grad()
    def panns_outputs(self, signals: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Cnn14 ``(embeddings (k, 2048), logits (k, 527))`` float32 for mono signals at
        ``panns_rate`` (DC removed, padded to 32 000 samples, one forward pass each)."""
        model = self._load_cnn14()
        embs, logits = [], []
        for s in signals:
            x = np.asarray(s, dtype=np.float32)
            x = x - x.mean()
            if x.shape[0] < MIN_SAMPLES:
                x = np.pad(x, (0, MIN_SAMPLES - x.shape[0]))
            e, lg = model(torch.from_numpy(np.ascontiguousarray(x))[None, :].to(self.device))
            embs.append(e[0].cpu().numpy())
            logits.append(lg[0].cpu().numpy())
        return np.stack(embs).astype(np.float32), np.stack(logits).astype(np.float32)

    @torch.no_grad()
    def vggish_outputs(self, signals: list[np.ndarray]) -> np.ndarray:
        """VGGish frame embeddings ``(frames, 128)`` float32 of mono signals at ``sample_rate``,
        all signals' frames concatenated in order."""
        from tas_bench.runtime.audio_io import resample

        model = self._load_vggish()
        out = []
        for s in signals:
            x = np.asarray(s, dtype=np.float64)
            if self.sample_rate != vggish_mod.SAMPLE_RATE:
                x = resample(x, self.sample_rate, vggish_mod.SAMPLE_RATE)
            out.append(model.embed(x))
        return np.concatenate(out, axis=0) if out else np.zeros((0, vggish_mod.EMBEDDING_DIM),
                                                                 dtype=np.float32)

    def process_batch(self, batch: list[ClipInput]) -> list[ClipOutput]:
        outputs = []
        for item in batch:
            for label, x in (("pred", item.pred), ("ref", item.ref)):
                if x.ndim != 2 or x.shape[0] != 2:
                    raise TasBenchError(f"{label} audio must be (2, T), got {x.shape}",
                                        field=f"clip {item.clip.id}")
            if item.sample_rate != self.sample_rate:
                raise TasBenchError(f"audio at {item.sample_rate} Hz, expected {self.sample_rate}",
                                    field=f"clip {item.clip.id}")
            emb_p, log_p = self.panns_outputs(split_channels(item.pred, self.channel_policy))
            emb_r, log_r = self.panns_outputs(split_channels(item.ref, self.channel_policy))
            vg_p = self.vggish_outputs(split_channels(item.pred, self.fad_channel_policy))
            vg_r = self.vggish_outputs(split_channels(item.ref, self.fad_channel_policy))
            values = {
                "kl": float(np.mean(kl_softmax(log_r, log_p))),
                "kl_sigmoid": float(np.mean(kl_sigmoid(log_r, log_p))),
            }
            arrays = {
                "panns_emb_pred": emb_p, "panns_logits_pred": log_p,
                "panns_emb_ref": emb_r, "panns_logits_ref": log_r,
                "vggish_pred": vg_p, "vggish_ref": vg_r,
            }
            outputs.append(ClipOutput(values=values, arrays=arrays))
        return outputs

    # ---- corpus ------------------------------------------------------------------------------
    def init_state(self) -> dict[str, Any]:
        return {
            "panns_pred": GaussianStats(cnn14_mod.EMBEDDING_DIM),
            "panns_ref": GaussianStats(cnn14_mod.EMBEDDING_DIM),
            "vggish_pred": GaussianStats(vggish_mod.EMBEDDING_DIM),
            "vggish_ref": GaussianStats(vggish_mod.EMBEDDING_DIM),
            "logits_pred": {},
        }

    def update_state(self, state: dict[str, Any], clip_id: str, output: ClipOutput) -> None:
        a = output.arrays
        if clip_id in state["logits_pred"]:
            raise ValueError(f"clip {clip_id!r} added twice to the generation state")
        state["panns_pred"].update(a["panns_emb_pred"])
        state["panns_ref"].update(a["panns_emb_ref"])
        state["vggish_pred"].update(a["vggish_pred"])
        state["vggish_ref"].update(a["vggish_ref"])
        state["logits_pred"][clip_id] = np.asarray(a["panns_logits_pred"], dtype=np.float32).copy()

    def merge_states(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        dup = set(a["logits_pred"]) & set(b["logits_pred"])
        if dup:
            raise ValueError(f"states share clip ids {sorted(dup)[:5]}")
        return {
            **{k: a[k].merge(b[k]) for k in ("panns_pred", "panns_ref", "vggish_pred", "vggish_ref")},
            "logits_pred": {**a["logits_pred"], **b["logits_pred"]},
        }

    def compute_details(self, state: dict[str, Any]) -> dict[str, Any]:
        """Everything :meth:`compute` reports plus the Fréchet cross-check details."""
        warnings: list[str] = []
        out: dict[str, Any] = {}
        for metric, gen, ref in (("fd", "panns_pred", "panns_ref"), ("fad", "vggish_pred", "vggish_ref")):
            g, r = state[gen], state[ref]
            for stats, who in ((g, "generated"), (r, "reference")):
                w = stats.rank_warning(f"{metric}: {who} set")
                if w:
                    warnings.append(w)
            value, info = frechet_from_stats(g, r, cross_check=self.fd_cross_check)
            out[metric] = value
            out[f"{metric}_info"] = {**info, "n_generated": g.n, "n_reference": r.n}
            if "error" in info:
                warnings.append(f"{metric}: {info['error']}; reported as NaN")
            elif info.get("sqrtm_error"):
                warnings.append(f"{metric}: scipy sqrtm cross-check failed ({info['sqrtm_error']})")
            elif info.get("cross_checked") and info["discrepancy"] > CROSS_CHECK_TOL * max(1.0, abs(value)):
                warnings.append(f"{metric}: eigenvalue route {value:.6g} and scipy sqrtm route "
                                f"{info['fd_sqrtm']:.6g} disagree")
        ids = sorted(state["logits_pred"])
        rows = [state["logits_pred"][i] for i in ids]
        logits = np.concatenate(rows, axis=0) if rows else np.zeros((0, cnn14_mod.NUM_CLASSES))
        mean, std, used = inception_score(logits, self.is_splits, self.is_seed)
        if 0 < logits.shape[0] < self.is_splits:
            warnings.append(f"is: {logits.shape[0]} generated items for {self.is_splits} splits; "
                            f"computed with {used} splits")
        out.update({"is": mean, "is_std": std, "is_splits_used": used, "warnings": warnings})
        return out

    def compute(self, state: dict[str, Any]) -> dict[str, Any]:
        d = self.compute_details(state)
        return {k: d[k] for k in ("fd", "fad", "is", "is_std", "warnings")}
