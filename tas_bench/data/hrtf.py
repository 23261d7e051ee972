"""Head-related impulse responses from SOFA ``SimpleFreeFieldHRIR`` files.

Any SOFA file of that convention loads through :func:`load_hrtf` (read with ``h5py``, since SOFA
is netCDF-4 / HDF5), so users can bring their own heads; ``"kemar"`` names the MIT KEMAR
(normal pinna) file that Debian's ``libmysofa1`` installs.

Conventions (SOFA): azimuth in degrees counter-clockwise from the front (90 = left), wrapped to
(-180, 180]; elevation in degrees up; ``hrir[:, 0]`` is the LEFT ear. A Cartesian
``SourcePosition`` (x front, y left, z up) is converted to spherical degrees. ``Data.Delay`` (in
samples at the file's rate) is applied by prepending zeros, then the IRs are resampled to the
requested rate with :func:`tas_bench.runtime.audio_io.resample`.

Nearest direction: the measured direction with the largest cosine to the requested one; exact
ties (cosines within :data:`NEAREST_TIE_COS`) go to the lower elevation, then the lower azimuth
in [0, 360), then the lower file index, so a source midway between two grid points gets the
same HRIR at every distance and room position.

Which measured directions can carry a source, and whether a dataset made with the head uses
the paper's octant words or the horizontal variant (lateral and frontal words only), is decided
from the directions themselves by :func:`placement_directions`.

Refused, each with one message naming the file and the field: a file that is not HDF5, another
SOFA convention, ``Data.IR`` not (M, 2, N) or holding fewer than :data:`MIN_DIRECTIONS`
directions or any NaN/Inf sample, ``Data.SamplingRate`` empty, with several values, or outside
:data:`SOFA_RATE_RANGE` (0 Hz included), ``SourcePosition`` of the wrong shape, non-finite or
at the origin, and an invalid ``Data.Delay``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tas_bench.data.geometry import (
    DIRECTION_AXES,
    HORIZONTAL,
    OCTANTS,
    boundary_margin,
    direction_words,
    wrap_azimuth,
)
from tas_bench.runtime.audio_io import resample
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import sha256_file

#: Known HRTF names and the files they stand for (Debian package in the comment).
KNOWN_HRTFS: dict[str, str] = {
    "kemar": "/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa",  # libmysofa1
}
ACCEPTED_CONVENTIONS = ("SimpleFreeFieldHRIR",)
#: Onset = first sample whose magnitude reaches this fraction of the IR's peak (for ``interp``).
ONSET_FRACTION = 0.2
#: Measured directions whose cosines to a requested direction are within this of the largest
#: one are equally near (an exact tie, e.g. a request midway between two grid points, seen
#: through floating-point round-off that changes with the distance or the room position).
NEAREST_TIE_COS = 1e-12
#: Fewest measured directions a SOFA file may hold (one direction cannot place any source).
MIN_DIRECTIONS = 2
#: Sampling rates (Hz) accepted in ``Data.SamplingRate``.
SOFA_RATE_RANGE = (1000, 384000)


def _unit_vectors(az_deg: np.ndarray, el_deg: np.ndarray) -> np.ndarray:
    az = np.radians(az_deg)
    el = np.radians(el_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def _onset(ir: np.ndarray) -> int:
    peak = float(np.abs(ir).max(initial=0.0))
    if peak <= 0.0:
        return 0
    return int(np.argmax(np.abs(ir) >= ONSET_FRACTION * peak))


@dataclass(eq=False)
class Hrtf:
    """An HRIR set resampled to ``sample_rate`` Hz.

    ``azimuth``/``elevation`` are (M,) degrees, ``hrir`` is (M, 2, taps) float64 with
    ``[:, 0]`` the left ear, ``distance`` the measurement radius in metres.
    """

    name: str
    path: str
    sha256: str
    sample_rate: int
    azimuth: np.ndarray
    elevation: np.ndarray
    distance: float
    hrir: np.ndarray
    _units: np.ndarray = field(init=False, repr=False)
    _tie_rank: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._units = _unit_vectors(self.azimuth, self.elevation)
        m = len(self.azimuth)
        # tie-break order: lower elevation, then lower azimuth in [0, 360), then lower index
        # (for files sorted that way, like MIT KEMAR, the file order)
        order = np.lexsort((np.arange(m), np.mod(np.asarray(self.azimuth, dtype=float), 360.0),
                            np.asarray(self.elevation, dtype=float)))
        self._tie_rank = np.empty(m, dtype=np.int64)
        self._tie_rank[order] = np.arange(m)

    @property
    def taps(self) -> int:
        return int(self.hrir.shape[-1])

    @property
    def unit_vectors(self) -> np.ndarray:
        """(M, 3) unit vectors of the measured directions (x front, y left, z up)."""
        return self._units

    def info(self) -> dict[str, object]:
        """A JSON-able description for manifests: name, path, sha256, rate, directions, radius."""
        return {"name": self.name, "path": self.path, "sha256": self.sha256,
                "sample_rate": self.sample_rate, "directions": int(len(self.azimuth)),
                "taps": self.taps, "measurement_distance": self.distance}

    def _check_angles(self, az: float, el: float) -> None:
        if not (math.isfinite(az) and -360.0 <= az <= 360.0):
            raise TasBenchError(f"{az} out of range [-360, 360] degrees", field="azimuth")
        if not (math.isfinite(el) and -90.0 <= el <= 90.0):
            raise TasBenchError(f"{el} out of range [-90, 90] degrees", field="elevation")

    def nearest_k(self, az: float, el: float, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the ``k`` measured directions nearest (great circle) to (az, el) in degrees,
        and their angular distances in degrees, nearest first.

        Equally near directions (cosines within :data:`NEAREST_TIE_COS`) come in a fixed
        order: lower elevation first, then lower azimuth counted counter-clockwise in [0, 360),
        then lower index in the file; so the choice never depends on round-off.
        """
        self._check_angles(az, el)
        u = _unit_vectors(np.array(az, dtype=float), np.array(el, dtype=float))
        cos = np.clip(self._units @ u, -1.0, 1.0)
        k = min(k, len(cos))
        order = np.argsort(-cos, kind="stable")
        picked: list[int] = []
        i = 0
        while len(picked) < k:
            j = i + 1
            while j < len(order) and cos[order[i]] - cos[order[j]] <= NEAREST_TIE_COS:
                j += 1
            group = order[i:j]
            picked.extend(int(g) for g in group[np.argsort(self._tie_rank[group], kind="stable")])
            i = j
        idx = np.array(picked[:k], dtype=np.int64)
        return idx, np.degrees(np.arccos(cos[idx]))

    def nearest_indices(self, directions: np.ndarray) -> np.ndarray:
        """Index of the nearest measured direction for each row of ``directions`` ((N, 3) unit
        vectors, x front, y left, z up): the largest cosine, ties as in :meth:`nearest_k`."""
        cos = np.atleast_2d(np.asarray(directions, dtype=np.float64)) @ self._units.T
        tied = cos >= cos.max(axis=1, keepdims=True) - NEAREST_TIE_COS
        return np.argmin(np.where(tied, self._tie_rank[None, :], len(self._tie_rank)), axis=1)

    def nearest(self, az: float, el: float) -> int:
        """Index of the measured direction nearest (great circle) to (az, el) in degrees (ties
        broken as in :meth:`nearest_k`: lower elevation, then lower azimuth)."""
        return int(self.nearest_k(az, el, 1)[0][0])

    def hrir_at(self, az: float, el: float, method: str = "nearest") -> np.ndarray:
        """HRIR pair (2, taps) for a direction in degrees.

        ``nearest`` returns the measured IR closest on the sphere. ``interp`` weights the three
        nearest measurements by inverse great-circle distance; to keep the interaural time
        difference, each ear's IRs are first aligned on their onsets (first sample >= 20 % of
        the peak), averaged, then delayed by the weighted mean onset rounded to whole samples.
        """
        if method == "nearest":
            return self.hrir[self.nearest(az, el)].copy()
        if method != "interp":
            raise TasBenchError(f"unknown HRIR method {method!r} (nearest|interp)", field="method")
        idx, dist = self.nearest_k(az, el, 3)
        if dist[0] < 1e-6:
            return self.hrir[idx[0]].copy()
        w = 1.0 / dist
        w /= w.sum()
        taps = self.taps
        out = np.zeros((2, taps))
        for ear in range(2):
            onsets = [_onset(self.hrir[i, ear]) for i in idx]
            target = int(round(float(np.dot(w, onsets))))
            for wi, i, on in zip(w, idx, onsets):
                shift = target - on
                ir = self.hrir[i, ear]
                if shift >= 0:
                    out[ear, shift:] += wi * ir[: taps - shift]
                else:
                    out[ear, : taps + shift] += wi * ir[-shift:]
        return out


def placement_directions(hrtf: Hrtf, margin: float, elevation_range: tuple[float, float]
                         ) -> tuple[str, np.ndarray]:
    """(direction set, indices of the measured directions usable as source directions).

    :data:`~tas_bench.data.geometry.OCTANTS` when the directions at least ``margin`` degrees
    from every octant boundary with elevation in ``elevation_range`` (degrees) cover all eight
    octants; those directions are the candidates. Otherwise (a horizontal-only head, where
    elevation 0 is the above/below boundary itself, or a set missing an octant, e.g. upper
    hemisphere only) :data:`~tas_bench.data.geometry.HORIZONTAL`: the directions less than
    ``margin`` degrees from the horizontal plane and at least ``margin`` degrees from the
    left/right and front/back boundaries, which must cover the four quadrants (left|right) x
    (front|behind). Raises :class:`TasBenchError` naming the file when they do not either.
    """
    az = [float(a) for a in hrtf.azimuth]
    el = [float(e) for e in hrtf.elevation]
    lo, hi = elevation_range
    octant = [i for i, (a, e) in enumerate(zip(az, el))
              if boundary_margin(a, e) >= margin and lo <= e <= hi]
    have8 = {direction_words(az[i], el[i]) for i in octant}
    if len(have8) == 8:
        return OCTANTS, np.array(octant)
    band = [i for i, (a, e) in enumerate(zip(az, el))
            if boundary_margin(a, e, HORIZONTAL) >= margin and abs(e) < margin]
    have4 = {direction_words(az[i], el[i])[:2] for i in band}
    if len(have4) == 4:
        return HORIZONTAL, np.array(band)
    lat, front, vert = DIRECTION_AXES
    missing8 = [", ".join(w) for w in ((x, y, z) for x in lat for y in front for z in vert)
                if w not in have8]
    missing4 = [", ".join(w) for w in ((x, y) for x in lat for y in front) if w not in have4]
    raise TasBenchError(
        f"the measured directions suit neither octant nor horizontal placement: those >= "
        f"{margin:g} deg from every octant boundary with elevation in [{lo:g}, {hi:g}] miss the "
        f"octant(s) {'; '.join(missing8)}, and those within {margin:g} deg of the horizontal "
        f"plane and >= {margin:g} deg from the left/right and front/back boundaries miss the "
        f"quadrant(s) {'; '.join(missing4)}", path=hrtf.path, field="SourcePosition")


def _attr_str(obj: object, name: str) -> str | None:
    v = obj.attrs.get(name)  # type: ignore[attr-defined]
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        v = v.ravel()[0] if v.size else ""
    if isinstance(v, bytes | np.bytes_):
        return v.decode("utf-8", "replace")
    return str(v)


def _read_sofa(path: Path) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, float]:
    """(azimuth, elevation, radius, ir (M,2,N) at file rate, file rate) from a SOFA file."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise TasBenchError(f"not a readable SOFA (netCDF-4/HDF5) file ({exc})", path=path) from None
    with f:
        conv = _attr_str(f, "SOFAConventions")
        if conv is None:
            raise TasBenchError("no SOFAConventions attribute: not a SOFA file", path=path,
                                field="SOFAConventions")
        if "Data.IR" not in f:
            raise TasBenchError(f"SOFA convention {conv!r} has no Data.IR (need SimpleFreeFieldHRIR)",
                                path=path, field="SOFAConventions")
        ir = np.asarray(f["Data.IR"][()], dtype=np.float64)
        if conv not in ACCEPTED_CONVENTIONS:
            raise TasBenchError(f"SOFA convention {conv!r} is not SimpleFreeFieldHRIR",
                                path=path, field="SOFAConventions")
        if ir.ndim != 3 or ir.shape[1] != 2 or ir.shape[0] < 1 or ir.shape[2] < 1:
            raise TasBenchError(f"Data.IR has shape {ir.shape}, expected (M, 2, N)", path=path,
                                field="Data.IR")
        if ir.shape[0] < MIN_DIRECTIONS:
            raise TasBenchError(f"holds {ir.shape[0]} measured direction; an HRTF set needs at "
                                f"least {MIN_DIRECTIONS} (sources are placed on its measured "
                                "directions)", path=path, field="Data.IR")
        bad = ~np.isfinite(ir)
        if bad.any():
            first = np.argwhere(bad)[0]
            raise TasBenchError(f"holds {int(bad.sum())} NaN/Inf value(s) (the first in "
                                f"measurement {int(first[0])}, {('left', 'right')[int(first[1])]} "
                                "ear); every impulse-response sample must be finite",
                                path=path, field="Data.IR")
        m = ir.shape[0]
        if "Data.SamplingRate" not in f:
            raise TasBenchError("missing", path=path, field="Data.SamplingRate")
        rates = np.asarray(f["Data.SamplingRate"][()], dtype=float).ravel()
        if rates.size == 0:
            raise TasBenchError("is empty; it must hold the file's sampling rate in Hz",
                                path=path, field="Data.SamplingRate")
        if not np.all(rates == rates[0]):
            raise TasBenchError(f"holds several rates {rates.tolist()}; one rate per file is "
                                "supported", path=path, field="Data.SamplingRate")
        rate = float(rates[0])
        if not (math.isfinite(rate) and SOFA_RATE_RANGE[0] <= rate <= SOFA_RATE_RANGE[1]):
            raise TasBenchError(f"is {rate:g} Hz; a sampling rate must be in "
                                f"[{SOFA_RATE_RANGE[0]}, {SOFA_RATE_RANGE[1]}] Hz",
                                path=path, field="Data.SamplingRate")
        if rate != round(rate):
            raise TasBenchError(f"non-integer rate {rate}", path=path, field="Data.SamplingRate")
        if "SourcePosition" not in f:
            raise TasBenchError("missing", path=path, field="SourcePosition")
        pos_ds = f["SourcePosition"]
        pos = np.asarray(pos_ds[()], dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] not in (1, m):
            raise TasBenchError(f"shape {pos.shape}, expected ({m}, 3)", path=path,
                                field="SourcePosition")
        pos = np.broadcast_to(pos, (m, 3))
        ptype = (_attr_str(pos_ds, "Type") or "spherical").lower()
        if ptype == "cartesian":
            x, y, z = pos[:, 0], pos[:, 1], pos[:, 2]
            radius = np.sqrt(x * x + y * y + z * z)
            if np.any(radius <= 0):
                raise TasBenchError("a Cartesian position is at the origin", path=path,
                                    field="SourcePosition")
            az = np.degrees(np.arctan2(y, x))
            el = np.degrees(np.arcsin(np.clip(z / radius, -1.0, 1.0)))
        elif ptype == "spherical":
            az, el, radius = pos[:, 0], pos[:, 1], pos[:, 2]
            units = (_attr_str(pos_ds, "Units") or "degree").lower()
            if "radian" in units:
                az, el = np.degrees(az), np.degrees(el)
        else:
            raise TasBenchError(f"unknown coordinate Type {ptype!r}", path=path,
                                field="SourcePosition")
        if not (np.isfinite(az).all() and np.isfinite(el).all()) or np.any(np.abs(el) > 90.0):
            raise TasBenchError("angles must be finite with elevation in [-90, 90]", path=path,
                                field="SourcePosition")
        delay = np.zeros((1, 2))
        if "Data.Delay" in f:
            delay = np.asarray(f["Data.Delay"][()], dtype=np.float64)
            if delay.ndim != 2 or delay.shape[1] != 2 or delay.shape[0] not in (1, m) or \
                    np.any(delay < 0) or not np.isfinite(delay).all():
                raise TasBenchError(f"shape {delay.shape} / values invalid, expected (1|M, 2) >= 0",
                                    path=path, field="Data.Delay")
    az = np.array([wrap_azimuth(a) for a in az])
    delay = np.rint(np.broadcast_to(delay, (m, 2))).astype(int)
    if delay.any():
        pad = int(delay.max())
        shifted = np.zeros((m, 2, ir.shape[2] + pad))
        for i in range(m):
            for ear in range(2):
                d = delay[i, ear]
                shifted[i, ear, d : d + ir.shape[2]] = ir[i, ear]
        ir = shifted
    return az, np.asarray(el, dtype=float), float(np.median(radius)), ir, rate


def resolve_hrtf_path(spec: str | Path) -> tuple[str, Path]:
    """(name, path) for a known HRTF name or a path to a ``.sofa`` file; error if missing."""
    s = str(spec)
    if s.lower() in KNOWN_HRTFS:
        path = Path(KNOWN_HRTFS[s.lower()])
        if not path.is_file():
            raise TasBenchError(f"HRTF {s!r} not found (install the Debian package libmysofa1)",
                                path=path)
        return s.lower(), path
    path = Path(s)
    if not path.is_file():
        known = ", ".join(sorted(KNOWN_HRTFS))
        raise TasBenchError(f"HRTF file not found (give a .sofa path or one of: {known})",
                            path=path)
    return path.stem, path


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, path: str, digest: str, sample_rate: int) -> Hrtf:
    az, el, radius, ir, rate = _read_sofa(Path(path))
    if int(rate) != sample_rate:
        ir = resample(ir, int(rate), sample_rate)
    hrir = np.ascontiguousarray(ir, dtype=np.float64)
    hrir.setflags(write=False)
    az.setflags(write=False)
    el.setflags(write=False)
    return Hrtf(name=name, path=path, sha256=digest, sample_rate=sample_rate, azimuth=az,
                elevation=el, distance=radius, hrir=hrir)


def load_hrtf(spec: str | Path = "kemar", sample_rate: int = 16000) -> Hrtf:
    """Load an HRTF by known name (``"kemar"``) or SOFA path, resampled to ``sample_rate`` Hz.

    The result is cached in-process keyed by (path, file sha256, rate), so a changed file is
    re-read. Raises :class:`TasBenchError` naming the file for a missing file, a file that is not
    SOFA, or a SOFA convention other than SimpleFreeFieldHRIR. ``"sphere"`` /
    ``"sphere:RADIUS"`` (metres) is the analytic spherical head of :mod:`tas_bench.data.sphere_head`.
    """
    if not isinstance(sample_rate, int) or not 1000 <= sample_rate <= 384000:
        raise TasBenchError(f"{sample_rate!r} out of range [1000, 384000] Hz", field="sample_rate")
    from tas_bench.data import sphere_head  # imports this module: not at the top

    if sphere_head.is_sphere_spec(spec):
        return sphere_head.load_sphere_hrtf(spec, sample_rate)
    name, path = resolve_hrtf_path(spec)
    resolved = str(path.resolve())
    return _load_cached(name, resolved, sha256_file(resolved), sample_rate)
