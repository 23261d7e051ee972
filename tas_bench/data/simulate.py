"""SpatialTAS-style binaural dataset simulator (``tas-bench simulate``).

A clip is one or two monaural sources from the Debian corpus (:mod:`tas_bench.data.source_corpus`)
or from a folder of the user's own sounds (``--sources DIR``, :mod:`tas_bench.data.user_sources`)
placed around a listener in a shoebox room (:mod:`tas_bench.data.room`) and rendered through an HRTF
(:mod:`tas_bench.data.hrtf`). Categories (paper Table 1 / SpatialTAS):

==================== ======= ============ ===================================================
category             sources prompt types geometry constraint (makes the answer unambiguous)
==================== ======= ============ ===================================================
single_doa_de        1       A            --
double_doa_de        2       B            directions >= 30 deg apart (great circle)
relative_direction   2       D / E / F    opposite sides of the compared axis, >= 1 m apart on it
relative_distance    2       C / G        distances to the listener differ by >= 1 m; their
                                          separation is >= 0.1 m from a 0.5 m rounding edge
==================== ======= ============ ===================================================

Every source direction is at least :data:`MIN_BOUNDARY_MARGIN` degrees from every octant
boundary with elevation in :data:`ELEVATION_RANGE`, so direction words are unambiguous; by
default it is a *measured* HRTF direction (exact HRIR), with ``directions="continuous"`` any
direction on a 0.1 degree grid with an interpolated HRIR; distances are on the 0.5 m grid in [0.5, 10] m.

Heads whose directions do not cover the eight octants (a horizontal-plane-only set, where
elevation 0 is the above/below boundary itself; a hemisphere) give a *horizontal* dataset
(``dataset.json`` ``"direction_words": "horizontal"``, else ``"octants"``): sources on the
measured directions less than :data:`MIN_BOUNDARY_MARGIN` degrees from the horizontal plane and at
least that far from the left/right and front/back boundaries, two direction words each, and the
prompt/QA variant without above/below (no type F; :mod:`tas_bench.data.prompts`,
:mod:`tas_bench.data.qa`); decided by :func:`tas_bench.data.hrtf.placement_directions`.
Two sources of one clip always have different labels and come from the same split.

Level: sources are RMS-normalised (``TARGET_RMS``), rendered with gain 1/r (reference 1 m)
and the mix is multiplied by :data:`GLOBAL_GAIN`, chosen so that no single 0.5 m source of
the Debian corpus clips; absolute level stays a distance cue. If a mix would still clip it is scaled down to a
peak of :data:`PEAK_LIMIT` and the total gain is recorded in the clip's ``mix_gain``
(``mix_scaled`` true).

Determinism: clip ``i`` of split ``s`` uses the seed derived from (global seed, s, i)
(:func:`clip_seed`), recorded in the manifest, so a clip can be re-simulated alone; the same
seed gives byte-identical wavs and manifest, whatever the number of worker processes.

Output: ``OUT/audio/{split}/{id}.wav`` (PCM_16, binaural, ch0 = left; ``.flac`` with the same
16-bit samples under ``audio_format="flac"``), ``OUT/dataset.json``, and ``OUT/manifest.jsonl``,
streamed to a temporary file clip by clip (no record is held in memory) and renamed into place
last, so a folder without a manifest is never taken for a finished dataset. ``shard=(I, N)``
renders one block of the clips into ``OUT/shard-I-of-N`` (:mod:`tas_bench.data.shards`). A hidden marker (:data:`MARKER_NAME`) written first lets a later run replace
an earlier or interrupted simulation; any other non-empty folder needs ``force``.

Sources shorter than the clip are looped with random 0.2-1.0 s gaps from a random start phase
(they sound through the whole clip); longer ones contribute a random window
(:func:`tas_bench.data.source_corpus.fit_to_length`).
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import fft as sp_fft

from tas_bench import __version__
from tas_bench.data.geometry import (
    DISTANCE_MAX,
    DISTANCE_MIN,
    DISTANCE_STEP,
    HORIZONTAL,
    OCTANTS,
    boundary_margin,
    direction_words,
    direction_words_for,
    great_circle_deg,
    to_cartesian,
)
from tas_bench.data.hrtf import Hrtf, load_hrtf, placement_directions
from tas_bench.data.manifest import (
    DATASET_INFO_NAME,
    MANIFEST_NAME,
    Clip,
    FingerprintBuilder,
    ManifestWriter,
    Source,
)
from tas_bench.data.presets import PRESETS
from tas_bench.data.room import ROOMS, Room, brir, warm_up
from tas_bench.data.shards import (
    SHARD_MANIFEST_NAME,
    check_shard,
    shard_folder,
    shard_range,
    unpublish_shard,
    write_shard_info,
)
from tas_bench.data.source_corpus import SourceCorpus, SourceItem, build_corpus, fit_to_length
from tas_bench.runtime.audio_io import AUDIO_FORMATS, audio_suffix, write_audio
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import read_json_object, stable_hash, sweep_orphans, write_json_atomic

SIM_CATEGORIES = ("single_doa_de", "double_doa_de", "relative_direction", "relative_distance")
GENERATOR = "tas-bench simulate"
#: Bumped whenever the same options and seed would give other bytes. 2: nearest-HRIR ties
#: (directions equally far, up to round-off) broken by a fixed rule (tas_bench.data.hrtf), which
#: changed 2 of 14,400 reflection directions of the demo preset; datasets of version 1 keep
#: their fingerprints only with the code that made them (commit 4200a46 and earlier).
SIMULATOR_VERSION = 2
#: Written first into the output folder: marks it as ours even if a run is interrupted.
MARKER_NAME = ".tas-bench-simulate.json"
MIN_BOUNDARY_MARGIN = 10.0
ELEVATION_RANGE = (-40.0, 50.0)
DISTANCES = tuple(DISTANCE_MIN + DISTANCE_STEP * k
                  for k in range(int(round((DISTANCE_MAX - DISTANCE_MIN) / DISTANCE_STEP)) + 1))
#: Fixed mix gain. With the Debian corpus (sources at RMS 0.1) the loudest single source at
#: 0.5 m, azimuth 80 deg, peaks at 0.88 with this gain (measured over every source, small room
#: and hall), so single 0.5 m sources never clip; far sources stay > 40 dB above 16-bit noise.
GLOBAL_GAIN = 0.125
PEAK_LIMIT = 0.99
MIN_PAIR_ANGLE = 30.0
MIN_AXIS_GAP = 1.0
MIN_DISTANCE_GAP = 1.0
ROUNDING_MARGIN = 0.1
MAX_TRIES = 1000

#: Category shares per split: train follows the paper (DOA&DE 68 %, relative 32 %), val and
#: test are balanced like the paper's test set.
CATEGORY_SHARES: dict[str, dict[str, float]] = {
    "train": {"single_doa_de": 0.34, "double_doa_de": 0.34, "relative_direction": 0.16,
              "relative_distance": 0.16},
    "val": dict.fromkeys(SIM_CATEGORIES, 0.25),
    "test": dict.fromkeys(SIM_CATEGORIES, 0.25),
}


@dataclass
class SimulationSummary:
    """What :func:`simulate_dataset` produced: folder, counts, fingerprint, wall time (s).

    ``extra["render_seconds"]``: the part spent rendering and writing clips (after the HRTF,
    corpus and reverb tails were ready).
    """

    out: Path
    preset: str
    seed: int
    counts: dict[str, dict[str, int]]
    fingerprint: str
    seconds: float
    n_clips: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def clips_per_second(self) -> float:
        """Clips per second of rendering (set-up excluded)."""
        t = float(self.extra.get("render_seconds", self.seconds))
        return self.n_clips / t if t > 0 else math.inf


def clip_seed(seed: int, split: str, index: int) -> int:
    """The seed of clip ``index`` of ``split`` under the global ``seed`` (63-bit int)."""
    return int(stable_hash({"seed": int(seed), "split": split, "index": int(index)})[:15], 16)


def category_plan(split: str, n: int, seed: int) -> list[str]:
    """Categories of the ``n`` clips of ``split``: exact shares (largest remainder), order
    shuffled deterministically from (seed, split)."""
    shares = CATEGORY_SHARES[split]
    raw = {c: shares[c] * n for c in SIM_CATEGORIES}
    counts = {c: int(math.floor(v)) for c, v in raw.items()}
    rest = n - sum(counts.values())
    for c in sorted(SIM_CATEGORIES, key=lambda c: (-(raw[c] - counts[c]), SIM_CATEGORIES.index(c)))[:rest]:
        counts[c] += 1
    plan = [c for c in SIM_CATEGORIES for _ in range(counts[c])]
    rng = np.random.default_rng(int(stable_hash({"plan": seed, "split": split})[:15], 16))
    return [plan[i] for i in rng.permutation(len(plan))]


def direction_placement(hrtf: Hrtf) -> tuple[str, np.ndarray]:
    """(direction set ``octants``/``horizontal``, indices of the measured directions usable
    for sources): :func:`~tas_bench.data.hrtf.placement_directions` with
    :data:`MIN_BOUNDARY_MARGIN` and :data:`ELEVATION_RANGE`."""
    return placement_directions(hrtf, MIN_BOUNDARY_MARGIN, ELEVATION_RANGE)


def candidate_directions(hrtf: Hrtf) -> np.ndarray:
    """Indices of measured directions usable for sources (:func:`direction_placement`)."""
    return direction_placement(hrtf)[1]


def _axis_value(axis: int, az: float, el: float, r: float) -> float:
    return float(to_cartesian(az, el, r)[axis])


def _geometry_ok(category: str, ptype: str, geo: list[tuple[float, float, float]]) -> bool:
    if category == "single_doa_de":
        return True
    (a0, e0, r0), (a1, e1, r1) = geo
    if category == "double_doa_de":
        return great_circle_deg(a0, e0, a1, e1) >= MIN_PAIR_ANGLE
    if category == "relative_direction":
        axis = {"D": 0, "E": 1, "F": 2}[ptype]
        word = {"D": 1, "E": 0, "F": 2}[ptype]
        if direction_words(a0, e0)[word] == direction_words(a1, e1)[word]:
            return False
        return abs(_axis_value(axis, a0, e0, r0) - _axis_value(axis, a1, e1, r1)) >= MIN_AXIS_GAP
    if abs(r0 - r1) < MIN_DISTANCE_GAP:
        return False
    sep = float(np.linalg.norm(to_cartesian(a0, e0, r0) - to_cartesian(a1, e1, r1)))
    frac = (sep / DISTANCE_STEP) % 1.0
    return abs(frac - 0.5) >= ROUNDING_MARGIN / DISTANCE_STEP


@dataclass
class _Context:
    out: Path
    hrtf: Hrtf
    pools: dict[str, list[SourceItem]]
    candidates: np.ndarray
    duration: float
    sample_rate: int
    seed: int
    directions: str = "measured"
    direction_set: str = OCTANTS
    audio_format: str = "wav"

    @property
    def hrir_method(self) -> str:
        return "interp" if self.directions == "continuous" else "nearest"

    def draw_direction(self, rng: np.random.Generator) -> tuple[float, float] | None:
        """A source direction (deg): a measured candidate, or a continuous one (0.1 deg grid)
        that is None when it falls within MIN_BOUNDARY_MARGIN of an octant boundary."""
        hrtf = self.hrtf
        if self.directions == "measured":
            i = int(self.candidates[int(rng.integers(len(self.candidates)))])
            return float(hrtf.azimuth[i]), float(hrtf.elevation[i])
        if self.direction_set == HORIZONTAL:  # the band of the candidates around 0 deg
            lo = float(hrtf.elevation[self.candidates].min())
            hi = float(hrtf.elevation[self.candidates].max())
        else:
            lo = max(ELEVATION_RANGE[0], float(hrtf.elevation.min()))
            hi = min(ELEVATION_RANGE[1], float(hrtf.elevation.max()))
        az = round(float(rng.uniform(-180.0, 180.0)), 1)
        el = round(float(rng.uniform(lo, hi)), 1)
        if az <= -180.0:
            az += 360.0
        ok = boundary_margin(az, el, self.direction_set) >= MIN_BOUNDARY_MARGIN
        return (az, el) if ok else None


DIRECTION_MODES = ("measured", "continuous")
_CTX: _Context | None = None


def _pick_sources(pool: list[SourceItem], k: int, rng: np.random.Generator) -> list[SourceItem]:
    first = pool[int(rng.integers(len(pool)))]
    if k == 1:
        return [first]
    others = [it for it in pool if it.spec.label.lower() != first.spec.label.lower()]
    if not others:
        raise TasBenchError("two-source clips need sources with at least two different labels "
                            "in every split", field="corpus")
    return [first, others[int(rng.integers(len(others)))]]


def render_mix(drys: Sequence[np.ndarray], brirs: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Sum over sources of (dry source * its BRIR), first ``n`` samples, shape (2, n).

    One FFT size long enough for linear convolution (no wrap-around); the sources are summed
    in the frequency domain, so a two-source clip costs one inverse transform. float32: the
    error is far below the 16-bit output resolution.
    """
    nfft = sp_fft.next_fast_len(n + max(h.shape[1] for h in brirs) - 1, real=True)
    acc = None
    for dry, h in zip(drys, brirs):
        spec = sp_fft.rfft(dry.astype(np.float32), nfft)[None, :] * \
            sp_fft.rfft(h.astype(np.float32), nfft, axis=-1)
        acc = spec if acc is None else acc + spec
    return sp_fft.irfft(acc, nfft, axis=-1)[:, :n].astype(np.float64)


def simulate_clip(ctx: _Context, split: str, index: int, category: str
                  ) -> tuple[dict[str, Any], np.ndarray]:
    """Simulate one clip: (manifest record, binaural int16-safe float array (2, T))."""
    from tas_bench.data.prompts import make_prompt, prompt_types_for
    from tas_bench.data.qa import make_qa

    cseed = clip_seed(ctx.seed, split, index)
    rng = np.random.default_rng(cseed)
    hrtf = ctx.hrtf
    n_src = 1 if category == "single_doa_de" else 2
    items = _pick_sources(ctx.pools[split], n_src, rng)
    ptypes = prompt_types_for(category, ctx.direction_set)
    ptype = ptypes[int(rng.integers(len(ptypes)))]
    for _ in range(MAX_TRIES):
        geo = []
        for _s in range(n_src):
            d = ctx.draw_direction(rng)
            r = DISTANCES[int(rng.integers(len(DISTANCES)))]
            if d is not None:
                geo.append((d[0], d[1], float(r)))
        if len(geo) < n_src or not _geometry_ok(category, ptype, geo):
            continue
        rooms = [rm for rm in ROOMS if all(rm.contains(*g) for g in geo)]
        if rooms:
            break
    else:  # pragma: no cover - the constraints are satisfiable for any HRTF with candidates
        raise TasBenchError(f"could not place sources for a {category} clip", field="geometry")
    room: Room = rooms[int(rng.integers(len(rooms)))]
    n = int(round(ctx.duration * ctx.sample_rate))
    sources: list[Source] = []
    drys, brirs = [], []
    for item, (az, el, r) in zip(items, geo):
        drys.append(fit_to_length(item.audio, n, rng, sample_rate=ctx.sample_rate))
        brirs.append(brir(room, hrtf, az, el, r, method=ctx.hrir_method))
        sources.append(Source(
            label=item.spec.label, azimuth=az, elevation=el, distance=r,
            direction=list(direction_words_for(az, el, ctx.direction_set)),
            provenance=item.provenance(),
            extra={"kind": item.spec.kind, "gain": round(1.0 / r, 6),
                   "hrir_index": hrtf.nearest(az, el)}))
    mix = render_mix(drys, brirs, n)
    mix *= GLOBAL_GAIN
    peak = float(np.abs(mix).max(initial=0.0))
    gain = GLOBAL_GAIN
    scaled = peak > PEAK_LIMIT
    if scaled:
        mix *= PEAK_LIMIT / peak
        gain *= PEAK_LIMIT / peak
    prompt = make_prompt(ptype, sources, rng)
    qa = make_qa(category, sources, rng)
    cid = f"{split}_{index:06d}"
    clip = Clip(
        id=cid, split=split, audio=f"audio/{split}/{cid}{audio_suffix(ctx.audio_format)}",
        sample_rate=ctx.sample_rate,
        duration=n / ctx.sample_rate, category=category, sources=sources, prompt=prompt,
        prompt_type=ptype, qa=qa,
        hrtf={"name": hrtf.name, "path": hrtf.path, "sha256": hrtf.sha256,
              "sample_rate": hrtf.sample_rate, "method": ctx.hrir_method},
        room=room.info(), seed=cseed,
        extra={"mix_gain": round(gain, 9), "mix_scaled": scaled})
    return clip.to_dict(), mix


def _work(job: tuple[str, int, str]) -> tuple[dict[str, Any], str]:
    """Simulate and write one clip: (manifest record, sha256 of the audio file's bytes)."""
    assert _CTX is not None
    split, index, category = job
    rec, mix = simulate_clip(_CTX, split, index, category)
    sha = write_audio(_CTX.out / rec["audio"], mix, _CTX.sample_rate, subtype="PCM_16",
                      audio_format=_CTX.audio_format)
    return rec, sha


#: Jobs handed to the worker pool at a time, so that pending jobs and finished records never
#: pile up in memory whatever the number of clips (Pool.imap would queue every job at once).
JOB_WINDOW = 4096


def _jobs(counts: dict[str, int], seed: int) -> Iterator[tuple[str, int, str]]:
    """(split, index, category) of every clip, in manifest order, one at a time."""
    for split in ("train", "val", "test"):
        for i, cat in enumerate(category_plan(split, counts[split], seed)):
            yield split, i, cat


def _run_jobs(jobs: Iterator[tuple[str, int, str]], n_jobs: int, workers: int
              ) -> Iterator[tuple[dict[str, Any], str]]:
    """:func:`_work` of each job, in order, in ``workers`` processes (bounded windows)."""
    if workers > 1 and n_jobs > 1:
        ctx = multiprocessing.get_context("fork")
        chunk = max(1, min(32, n_jobs // (4 * workers)))
        with ctx.Pool(workers) as pool:
            while window := list(itertools.islice(jobs, JOB_WINDOW)):
                yield from pool.imap(_work, window, chunksize=chunk)
    else:
        for job in jobs:
            yield _work(job)


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise TasBenchError("exists and is not a folder", path=out, field="--out")
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        _write_marker(out)
        return
    info_path = out / DATASET_INFO_NAME
    ours = (out / MARKER_NAME).is_file()
    if not ours and info_path.is_file():
        try:
            ours = read_json_object(info_path).get("generator") == GENERATOR
        except TasBenchError:
            ours = False
    if ours:
        # a previous (possibly interrupted) simulation: unpublish it (manifest first), then
        # clear its files
        (out / MANIFEST_NAME).unlink(missing_ok=True)
        unpublish_shard(out)
        info_path.unlink(missing_ok=True)
        shutil.rmtree(out / "audio", ignore_errors=True)
    elif not force:
        raise TasBenchError("folder is not empty and is not a tas-bench simulated dataset "
                            "(choose an empty folder or pass --force)", path=out, field="--out")
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    _write_marker(out)


def _write_marker(out: Path) -> None:
    write_json_atomic(out / MARKER_NAME, {"generator": GENERATOR})


def _check_args(preset: str, seed: int, counts: dict[str, int], duration: float,
                sample_rate: int) -> None:
    if preset not in PRESETS:
        raise TasBenchError(f"unknown preset {preset!r} (one of {sorted(PRESETS)})",
                            field="--preset")
    if not isinstance(seed, int) or seed < 0:
        raise TasBenchError(f"{seed!r} must be an integer >= 0", field="--seed")
    for split, k in counts.items():
        if not isinstance(k, int) or k < 0:
            raise TasBenchError(f"{k!r} must be an integer >= 0", field=f"--n-{split}")
    if sum(counts.values()) == 0:
        raise TasBenchError("nothing to simulate: all split sizes are 0", field="--n-*")
    if not (isinstance(duration, int | float) and math.isfinite(duration) and 0.1 <= duration <= 60):
        raise TasBenchError(f"{duration!r} out of range [0.1, 60] seconds", field="--duration")
    if not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 48000:
        raise TasBenchError(f"{sample_rate!r} out of range [8000, 48000] Hz",
                            field="--sample-rate")


def simulate_dataset(out: str | Path, preset: str = "demo", seed: int = 0, hrtf: str | Path = "kemar",
                     n_train: int | None = None, n_val: int | None = None,
                     n_test: int | None = None, duration: float = 10.0,
                     sample_rate: int = 16000, progress: bool = True, *, force: bool = False,
                     workers: int = 1, corpus: SourceCorpus | None = None,
                     directions: str = "measured", audio_format: str = "wav",
                     shard: tuple[int, int] | None = None) -> SimulationSummary:
    """Simulate a binaural dataset into ``out``; returns counts, fingerprint and time (s).

    Split sizes default to the preset's; ``duration`` in seconds, ``sample_rate`` in Hz.
    ``workers`` > 1 renders clips in that many processes (same bytes as 1). ``corpus``
    overrides the Debian source corpus (tests). ``directions``: ``measured`` places sources
    on the HRTF's measured directions (exact HRIRs); ``continuous`` draws any direction (0.1
    degree grid) and interpolates the direct path's HRIR (:meth:`Hrtf.hrir_at` ``interp``). Raises :class:`TasBenchError` for bad
    arguments, an unknown/invalid HRTF, unusable sources or a non-empty foreign ``out``.
    ``audio_format``: ``wav`` (PCM_16) or ``flac`` (the same 16-bit samples, losslessly
    compressed). ``shard`` = (I, N), 0-based: render only shard I's block of clips into
    ``out/shard-I-of-N`` (:mod:`tas_bench.data.shards`; merge with
    :func:`~tas_bench.data.shards.merge_shards`). Records go to the manifest as they are made
    (memory flat in the number of clips); the manifest is published last.
    """
    global _CTX
    t0 = time.perf_counter()
    out = Path(out)
    base = PRESETS.get(preset, {})
    counts = {"train": base.get("train", 0) if n_train is None else n_train,
              "val": base.get("val", 0) if n_val is None else n_val,
              "test": base.get("test", 0) if n_test is None else n_test}
    _check_args(preset, seed, counts, duration, sample_rate)
    if audio_format not in AUDIO_FORMATS:
        raise TasBenchError(f"{audio_format!r} is not one of {sorted(AUDIO_FORMATS)}",
                            field="--audio-format")
    if shard is not None:
        shard = check_shard(tuple(shard))  # type: ignore[arg-type]
        out = shard_folder(out, shard)
    if directions not in DIRECTION_MODES:
        raise TasBenchError(f"{directions!r} is not one of {list(DIRECTION_MODES)}",
                            field="--directions")
    hr = load_hrtf(hrtf, sample_rate)
    direction_set, cands = direction_placement(hr)
    corpus = corpus or build_corpus(sample_rate)
    pools = {}
    for split, k in counts.items():
        pool = corpus.split(split)
        if k and not pool:
            raise TasBenchError(f"the source corpus has no sources for the {split} split",
                                field="corpus")
        if k and pool and any(it.sample_rate != sample_rate for it in pool):
            raise TasBenchError("corpus sample rate differs from --sample-rate", field="corpus")
        pools[split] = pool
    _prepare_out(out, force)
    sweep_orphans(out)
    total = sum(counts.values())
    start, stop = shard_range(total, shard) if shard is not None else (0, total)
    jobs = itertools.islice(_jobs(counts, seed), start, stop)
    warm_up(hr)  # late tails computed once, before worker processes fork
    t_render = time.perf_counter()
    _CTX = _Context(out=out, hrtf=hr, pools=pools, candidates=cands, duration=float(duration),
                    sample_rate=sample_rate, seed=seed, directions=directions,
                    audio_format=audio_format, direction_set=direction_set)
    by_cat: dict[str, dict[str, int]] = {s: {} for s in counts}
    fp = FingerprintBuilder()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=stop - start, desc="simulate", unit="clip", file=sys.stderr)
    try:
        with ManifestWriter(out, MANIFEST_NAME if shard is None else SHARD_MANIFEST_NAME) as mw:
            for rec, sha in _run_jobs(jobs, stop - start, workers):
                cats = by_cat[rec["split"]]
                cats[rec["category"]] = cats.get(rec["category"], 0) + 1
                fp.add(rec["id"], sha)
                mw.add(rec)
                if bar:
                    bar.update()
            info = _dataset_info(preset, seed, by_cat, hr, corpus, duration, sample_rate,
                                 directions, audio_format)
            if shard is None:  # before the manifest: a manifest always has its dataset.json
                write_json_atomic(out / DATASET_INFO_NAME, info)
    finally:
        if bar:
            bar.close()
        _CTX = None
    fingerprint = fp.digest(mw.sha256)
    if shard is not None:  # last: a shard folder without shard.json is unfinished
        write_shard_info(out, shard=shard, clip_range=(start, stop), plan=counts, info=info,
                         clips=mw.count, manifest_sha256=mw.sha256)
        fingerprint = ""
    render_seconds = time.perf_counter() - t_render
    seconds = time.perf_counter() - t0
    return SimulationSummary(out=out, preset=preset, seed=seed, counts=by_cat,
                             fingerprint=fingerprint, seconds=seconds, n_clips=mw.count,
                             extra={"workers": workers, "render_seconds": render_seconds,
                                    "shard": list(shard) if shard else None,
                                    "clip_range": [start, stop],
                                    "manifest_bytes": mw.bytes_written})


def _dataset_info(preset: str, seed: int, by_cat: dict[str, dict[str, int]], hr: Hrtf,
                  corpus: SourceCorpus, duration: float, sample_rate: int, directions: str,
                  audio_format: str) -> dict[str, Any]:
    """The content of ``dataset.json``."""
    return {
        "name": f"tas-bench-{preset}-seed{seed}", "generator": GENERATOR, "preset": preset,
        "seed": seed, "direction_words": direction_placement(hr)[0],
        "tas_bench_version": __version__, "counts": by_cat,
        "hrtf": {"name": hr.name, "path": hr.path, "sha256": hr.sha256,
                 "sample_rate": hr.sample_rate, "directions": int(len(hr.azimuth))},
        "config": {"simulator_version": SIMULATOR_VERSION,
                   "duration": float(duration), "sample_rate": sample_rate,
                   "global_gain": GLOBAL_GAIN, "peak_limit": PEAK_LIMIT,
                   "directions": directions, "audio_format": audio_format,
                   "min_boundary_margin_deg": MIN_BOUNDARY_MARGIN,
                   "elevation_range_deg": list(ELEVATION_RANGE), "distances_m": list(DISTANCES),
                   "min_pair_angle_deg": MIN_PAIR_ANGLE, "min_axis_gap_m": MIN_AXIS_GAP,
                   "min_distance_gap_m": MIN_DISTANCE_GAP, "category_shares": CATEGORY_SHARES,
                   "rooms": [r.info() for r in ROOMS], "corpus": corpus.config},
        "corpus": corpus.summary(),
    }


def default_workers() -> int:
    """Worker processes to use by default: the CPUs this process may run on, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


__all__: Sequence[str] = ("simulate_dataset", "SimulationSummary", "clip_seed", "category_plan",
                          "simulate_clip", "PRESETS", "SIM_CATEGORIES", "default_workers")
