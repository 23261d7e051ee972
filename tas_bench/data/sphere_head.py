"""An analytic rigid spherical head: a built-in HRTF that needs no data (``--hrtf sphere[:radius]``).

Model: the head-shadow and delay parts of the structural model of C. P. Brown and R. O. Duda,
"A structural model for binaural sound synthesis", IEEE Trans. Speech Audio Process. 6(5),
476-488 (1998), which approximates the rigid-sphere (Rayleigh / Duda-Martens 1998) solution by
one pole and one zero per ear plus a frequency-independent delay. No pinna, torso or shoulder
echoes: the model is a sphere and nothing else. For an ear at incidence angle ``theta`` (the
angle between the source direction and the ear's axis; 0 = the source faces the ear):

* head shadow ``H(w) = (1 + j alpha(theta) w / (2 w0)) / (1 + j w / (2 w0))``, ``w0 = c / a``,
  ``alpha(theta) = (1 + alpha_min / 2) + (1 - alpha_min / 2) cos(pi theta / theta_min)`` with
  ``alpha_min = 0.1`` and ``theta_min = 150`` degrees (+6 dB at high frequencies facing the
  ear, -20 dB at 150 degrees, rising again towards the bright spot at 180 degrees). It is made
  digital by the bilinear transform (no pre-warping), as in Brown and Duda, at
  :data:`DESIGN_RATE` (96 kHz, or the requested rate when higher), where the transform's
  frequency warping stays within 1 dB of the analogue response up to 20 kHz; the IRs are then
  resampled to the requested rate with :func:`tas_bench.runtime.audio_io.resample`, as SOFA files are
  (designed at 16 kHz directly, the warped -20 dB shelf would be off by up to 5 dB at 6 kHz).
* delay ``T(theta) = -(a / c) cos(theta)`` for ``theta < pi / 2`` and
  ``(a / c) (theta - pi / 2)`` beyond (the path round the sphere), relative to the centre of
  the head, realised as a Kaiser-windowed sinc (fractional delay, cut-off 0.9 x Nyquist) after a
  common bulk delay. The interaural difference of these delays is exactly Woodworth's
  ``ITD = (a / c) (phi + sin phi)``, ``phi`` the lateral angle (:func:`woodworth_itd`).

Ears at azimuth +90 (left, channel 0) and -90 (right) on the horizontal plane, SOFA
coordinates (azimuth counter-clockwise from the front, elevation up). Every cue depends on the
lateral angle only, so the HRIRs are exactly symmetric front/back (azimuth ``a`` and
``180 - a``) and up/down, and mirror images left/right with the ears swapped: a sphere has no
front/back or elevation cue. The model is far-field (plane wave); ``distance`` is recorded as
the room model's 1 m reference.

Directions (:func:`sphere_grid`): elevations -40 .. 80 degrees in 10 degree steps with azimuths
every 5 degrees, plus the pole (elevation 90), the style of the MIT KEMAR grid (same
elevations, its 5 degree horizontal step everywhere): 937 directions.

Identity: the HRTF's ``sha256`` is the sha256 of the canonical JSON of the model name, its
version (:data:`MODEL_VERSION`, bumped whenever the IRs it produces change) and every
parameter (radius, speed of sound, shadow constants, grid, delay design), so a dataset records
which sphere rendered it and the cue evaluator can check it; the sample rate is not part of it
(as a SOFA file's sha256 does not depend on the rate it is resampled to).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import scipy.signal

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import stable_hash

#: The spec prefix: ``sphere`` or ``sphere:RADIUS`` (metres).
SPEC_PREFIX = "sphere"
#: Default head radius in metres (Brown and Duda's average adult head, also Algazi's mean fit).
DEFAULT_RADIUS_M = 0.0875
#: Radii accepted, metres (infant to far larger than any human head).
RADIUS_RANGE_M = (0.03, 0.25)
#: Speed of sound in m/s (the simulator's and the tests' value).
SPEED_OF_SOUND = 343.0
#: Head-shadow constants of Brown and Duda (1998).
ALPHA_MIN = 0.1
THETA_MIN_DEG = 150.0
#: Fractional-delay design: half-length (samples), Kaiser beta, cut-off (fraction of Nyquist).
SINC_HALF = 16
KAISER_BETA = 8.0
SINC_CUTOFF = 0.9
#: Length kept after the latest arrival for the head-shadow filter's decay, seconds.
TAIL_S = 0.004
#: Rate (Hz) the filters are designed at before resampling to the requested rate.
DESIGN_RATE = 96000
#: Grid: elevations (degrees) with azimuths every AZ_STEP_DEG, plus the pole.
ELEVATIONS_DEG = tuple(float(e) for e in range(-40, 90, 10))
AZ_STEP_DEG = 5.0
MODEL = "brown-duda-1998-rigid-sphere"
#: Bump when the HRIRs produced for the same parameters change (it is part of the identity).
MODEL_VERSION = "1"


def parse_sphere_spec(spec: str | Path) -> float | None:
    """Radius in metres of a ``sphere`` / ``sphere:RADIUS`` spec (case-insensitive), or None when
    ``spec`` does not name the sphere. Raises :class:`TasBenchError` for a bad radius."""
    s = str(spec).strip()
    low = s.lower()
    if low == SPEC_PREFIX:
        return DEFAULT_RADIUS_M
    if not low.startswith(SPEC_PREFIX + ":"):
        return None
    text = s[len(SPEC_PREFIX) + 1:]
    try:
        radius = float(text)
    except ValueError:
        raise TasBenchError(f"{s!r}: the radius {text!r} is not a number (metres, e.g. "
                            f"sphere:{DEFAULT_RADIUS_M})", field="--hrtf") from None
    lo, hi = RADIUS_RANGE_M
    if not (math.isfinite(radius) and lo <= radius <= hi):
        raise TasBenchError(f"{s!r}: radius {text} m out of range [{lo}, {hi}] m", field="--hrtf")
    return round(radius, 6)


def is_sphere_spec(spec: str | Path) -> bool:
    """Whether ``spec`` names the spherical head (``sphere`` or ``sphere:...``, any case)."""
    low = str(spec).strip().lower()
    return low == SPEC_PREFIX or low.startswith(SPEC_PREFIX + ":")


def sphere_name(radius: float) -> str:
    """Canonical name (also the reloadable spec) of the sphere of ``radius`` metres."""
    return f"{SPEC_PREFIX}:{radius:.6g}"


def sphere_grid() -> tuple[np.ndarray, np.ndarray]:
    """(azimuth, elevation) in degrees of the model's directions, azimuth in (-180, 180]."""
    az: list[float] = []
    el: list[float] = []
    for e in ELEVATIONS_DEG:
        for a in np.arange(0.0, 360.0, AZ_STEP_DEG):
            az.append(float(a) if a <= 180.0 else float(a) - 360.0)
            el.append(e)
    az.append(0.0)
    el.append(90.0)
    return np.array(az), np.array(el)


def lateral_angle(azimuth_deg: float, elevation_deg: float) -> float:
    """Lateral angle in radians (+pi/2 = the left ear's axis): ``asin(cos el sin az)``."""
    y = math.cos(math.radians(elevation_deg)) * math.sin(math.radians(azimuth_deg))
    return math.asin(max(-1.0, min(1.0, y)))


def woodworth_itd(azimuth_deg: float, elevation_deg: float = 0.0,
                  radius: float = DEFAULT_RADIUS_M, speed: float = SPEED_OF_SOUND) -> float:
    """Woodworth's ITD in seconds, ``(a / c) (phi + sin phi)`` with ``phi`` the lateral angle;
    positive = the left ear leads (a source on the left)."""
    phi = lateral_angle(azimuth_deg, elevation_deg)
    return radius / speed * (phi + math.sin(phi))


def incidence_angles(azimuth_deg: float, elevation_deg: float) -> tuple[float, float]:
    """Angles in radians between the source direction and the (left, right) ear axes."""
    phi = lateral_angle(azimuth_deg, elevation_deg)
    return math.pi / 2 - phi, math.pi / 2 + phi


def shadow_alpha(theta: float) -> float:
    """Brown-Duda head-shadow zero factor ``alpha(theta)`` (theta in radians, dimensionless)."""
    return (1.0 + ALPHA_MIN / 2) + (1.0 - ALPHA_MIN / 2) * math.cos(
        theta / math.radians(THETA_MIN_DEG) * math.pi)


def ear_delay(theta: float, radius: float = DEFAULT_RADIUS_M, speed: float = SPEED_OF_SOUND) -> float:
    """Arrival time in seconds at an ear with incidence angle ``theta`` (radians), relative to
    the centre of the head (negative = before)."""
    if theta < math.pi / 2:
        return -radius / speed * math.cos(theta)
    return radius / speed * (theta - math.pi / 2)


def shadow_response(freq_hz: np.ndarray, theta: float, radius: float = DEFAULT_RADIUS_M,
                    speed: float = SPEED_OF_SOUND) -> np.ndarray:
    """The analogue head-shadow response ``H(w)`` (complex, no delay) at ``freq_hz``."""
    w = 2 * np.pi * np.asarray(freq_hz, dtype=np.float64)
    w0 = speed / radius
    return (1 + 1j * shadow_alpha(theta) * w / (2 * w0)) / (1 + 1j * w / (2 * w0))


def _layout(rate: int, sample_rate: int, radius: float, speed: float) -> tuple[int, int]:
    """(bulk delay, taps) in samples at the design ``rate``: before the earliest arrival there
    is room for the sinc's left half and the resampler's pre-ringing (12 samples at the target
    ``sample_rate``, at least 1 ms), after the latest for the sinc's right half, the
    head-shadow filter's decay and the resampler again."""
    a_c = radius / speed
    guard = max(1e-3, 12.0 / sample_rate)
    bulk = SINC_HALF + math.ceil((a_c + guard) * rate)
    taps = bulk + math.ceil(math.pi / 2 * a_c * rate) + SINC_HALF + \
        math.ceil((TAIL_S + guard) * rate)
    return bulk, taps


def _ear_ir(theta: float, sample_rate: int, radius: float, speed: float, bulk: int,
            taps: int) -> np.ndarray:
    centre = bulk + ear_delay(theta, radius, speed) * sample_rate
    t = np.arange(taps) - centre
    inside = np.abs(t) <= SINC_HALF
    win = np.zeros(taps)
    win[inside] = np.i0(KAISER_BETA * np.sqrt(1.0 - (t[inside] / SINC_HALF) ** 2)) / np.i0(KAISER_BETA)
    x = SINC_CUTOFF * np.sinc(SINC_CUTOFF * t) * win
    beta = 2.0 * speed / radius  # 2 w0, rad/s
    k = 2.0 * sample_rate
    alpha = shadow_alpha(theta)
    b = np.array([beta + alpha * k, beta - alpha * k]) / (beta + k)
    a = np.array([1.0, (beta - k) / (beta + k)])
    return scipy.signal.lfilter(b, a, x)


def sphere_hrir(azimuth_deg: float, elevation_deg: float, sample_rate: int,
                radius: float = DEFAULT_RADIUS_M, speed: float = SPEED_OF_SOUND) -> np.ndarray:
    """HRIR pair (2, taps) of the sphere for one direction (degrees, SOFA), row 0 = left ear,
    at ``sample_rate`` Hz (unit-gain far-field plane wave, common bulk delay); designed at
    ``max(sample_rate, DESIGN_RATE)`` Hz and resampled."""
    from tas_bench.runtime.audio_io import resample

    rate = max(int(sample_rate), DESIGN_RATE)
    bulk, taps = _layout(rate, int(sample_rate), radius, speed)
    th_l, th_r = incidence_angles(azimuth_deg, elevation_deg)
    pair = np.stack([_ear_ir(th_l, rate, radius, speed, bulk, taps),
                     _ear_ir(th_r, rate, radius, speed, bulk, taps)])
    # resampling an IR scales its response by the rate ratio: keep unit gain
    return resample(pair, rate, int(sample_rate)) * (rate / int(sample_rate))


def sphere_identity(radius: float, speed: float = SPEED_OF_SOUND) -> dict[str, object]:
    """Everything that determines the model's HRIRs (hashed into its sha256)."""
    return {"model": MODEL, "version": MODEL_VERSION, "radius_m": radius, "speed_of_sound": speed,
            "alpha_min": ALPHA_MIN, "theta_min_deg": THETA_MIN_DEG, "sinc_half": SINC_HALF,
            "kaiser_beta": KAISER_BETA, "sinc_cutoff": SINC_CUTOFF, "tail_s": TAIL_S,
            "design_rate_hz": DESIGN_RATE, "resampler": "tas_bench.runtime.audio_io.resample",
            "elevations_deg": list(ELEVATIONS_DEG), "az_step_deg": AZ_STEP_DEG, "pole": True}


@functools.lru_cache(maxsize=8)
def _build(radius: float, sample_rate: int):  # -> Hrtf
    from tas_bench.data.hrtf import Hrtf

    az, el = sphere_grid()
    # every HRIR depends on the lateral angle only: compute each distinct one once
    lat = np.round(np.cos(np.radians(el)) * np.sin(np.radians(az)), 12)
    uniq, inv = np.unique(lat, return_inverse=True)
    pairs = np.stack([sphere_hrir(math.degrees(math.asin(float(y))), 0.0, sample_rate, radius)
                      for y in uniq])
    hrir = np.ascontiguousarray(pairs[inv], dtype=np.float64)
    for arr in (hrir, az, el):
        arr.setflags(write=False)
    name = sphere_name(radius)
    return Hrtf(name=name, path=name, sha256=stable_hash(sphere_identity(radius)),
                sample_rate=sample_rate, azimuth=az, elevation=el, distance=1.0, hrir=hrir)


def load_sphere_hrtf(spec: str | Path = SPEC_PREFIX, sample_rate: int = 16000):  # -> Hrtf
    """The spherical head named by ``spec`` (``sphere`` or ``sphere:RADIUS`` in metres) as an
    :class:`~tas_bench.data.hrtf.Hrtf` at ``sample_rate`` Hz (cached in-process); its ``name`` and
    ``path`` are the canonical spec (``sphere:0.0875``), so a manifest's ``hrtf.path`` reloads it."""
    radius = parse_sphere_spec(spec)
    if radius is None:
        raise TasBenchError(f"{str(spec)!r} does not name the spherical head (sphere[:RADIUS])",
                            field="--hrtf")
    return _build(radius, int(sample_rate))
