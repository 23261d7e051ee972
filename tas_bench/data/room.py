"""Distance cues: binaural room impulse responses (BRIRs) for a source in a shoebox room.

Model (documented, parametric where noted):

* **Direct path**: the HRIR of the source direction, gain ``1 / r`` (reference distance 1 m:
  a source at 1 m has the HRIR's own level), delayed by the propagation time ``r / c``
  (c = 343 m/s), rounded to whole samples.
* **Early reflections**: image sources of the shoebox up to order :data:`IMAGE_ORDER` (every
  wall has the same energy absorption ``alpha``; amplitude reflection ``sqrt(1 - alpha)``); each
  image contributes the HRIR of its own direction of arrival with gain ``beta^order / d``.
* **Late reverberation**: a fixed (per room and HRTF) pair of exponentially decaying Gaussian
  noises, one per ear, with the interaural coherence of a diffuse field between two points
  :data:`EAR_DISTANCE` apart (``sinc(2 f d / c)``: coherent at low frequencies, decorrelated
  above ~1 kHz; the head's extra shadowing is ignored), spectrally shaped by that ear's
  diffuse-field HRTF magnitude; amplitude decays by 60 dB in the room's Eyring RT60. It starts ``t_mix =
  sqrt(V) ms`` after the direct sound and its energy is the diffuse-field energy arriving
  after ``t_mix``: ``(1 / r_c^2) * exp(-13.8 t_mix / RT60)`` relative to the direct sound at
  1 m, where ``r_c = sqrt(A / (16 pi))`` is the critical distance and ``A = -S ln(1 - alpha)``
  the Eyring absorption area. The late energy does not depend on source distance, so the
  direct-to-reverberant ratio falls by about 6 dB per doubling of distance.

HRIRs are scaled so that their diffuse-field energy (mean over directions and ears of
``sum h^2``) is 1, so different heads give comparable levels. The listener faces the room's
+x axis with +y to the left and +z up (SOFA head axes), so a source at (az, el, r) sits at
``listener + to_cartesian(az, el, r)``.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from tas_bench.data.geometry import DISTANCE_MAX, DISTANCE_MIN, to_cartesian
from tas_bench.data.hrtf import Hrtf
from tas_bench.runtime.errors import TasBenchError

SPEED_OF_SOUND = 343.0
IMAGE_ORDER = 2
#: Metres between the ears, for the diffuse tail's interaural coherence.
EAR_DISTANCE = 0.18
#: Sources must stay this far (metres) from every wall.
WALL_CLEARANCE = 0.3
#: Seconds of raised-cosine fade-in at the start of the late tail (avoids a step).
TAIL_FADE = 0.005


@dataclass(frozen=True)
class Room:
    """A shoebox room: ``dims`` (x, y, z) in metres, uniform energy absorption ``absorption``,
    ``listener`` position in metres (ears at that point, facing +x)."""

    name: str
    dims: tuple[float, float, float]
    absorption: float
    listener: tuple[float, float, float]

    @property
    def volume(self) -> float:
        x, y, z = self.dims
        return x * y * z

    @property
    def surface(self) -> float:
        x, y, z = self.dims
        return 2.0 * (x * y + x * z + y * z)

    @property
    def absorption_area(self) -> float:
        """Eyring equivalent absorption area in m^2."""
        return -self.surface * math.log(1.0 - self.absorption)

    @property
    def rt60(self) -> float:
        """Eyring reverberation time in seconds."""
        return 0.161 * self.volume / self.absorption_area

    @property
    def critical_distance(self) -> float:
        """Distance in metres where direct and diffuse energy are equal."""
        return math.sqrt(self.absorption_area / (16.0 * math.pi))

    @property
    def mixing_time(self) -> float:
        """Start of the late tail after the direct sound, seconds (sqrt(V) ms)."""
        return math.sqrt(self.volume) / 1000.0

    def source_position(self, azimuth: float, elevation: float, distance: float) -> np.ndarray:
        """Room coordinates (m) of a source at (az, el) degrees and ``distance`` m from the listener."""
        return np.asarray(self.listener) + to_cartesian(azimuth, elevation, distance)

    def contains(self, azimuth: float, elevation: float, distance: float) -> bool:
        """Whether that source lies inside the room, at least WALL_CLEARANCE from every wall."""
        p = self.source_position(azimuth, elevation, distance)
        return bool(np.all(p >= WALL_CLEARANCE) and np.all(p <= np.asarray(self.dims) - WALL_CLEARANCE))

    def info(self) -> dict[str, object]:
        """JSON-able room parameters for the manifest."""
        return {"name": self.name, "dims": list(self.dims), "absorption": self.absorption,
                "listener": list(self.listener), "rt60": round(self.rt60, 4),
                "critical_distance": round(self.critical_distance, 4),
                "mixing_time": round(self.mixing_time, 4), "image_order": IMAGE_ORDER,
                "model": "shoebox image sources + parametric diffuse tail (tas_bench.data.room)"}


#: The room bank the simulator draws from. The hall holds any source up to 10 m with
#: elevation in [-40, 50] degrees, so every allowed geometry fits at least one room.
ROOMS: tuple[Room, ...] = (
    Room("small_room", (6.0, 5.0, 3.0), 0.35, (2.6, 2.3, 1.5)),
    Room("living_room", (9.0, 7.0, 3.2), 0.30, (4.2, 3.3, 1.6)),
    Room("classroom", (14.0, 10.0, 4.5), 0.25, (6.5, 4.8, 2.0)),
    Room("hall", (28.0, 24.0, 18.0), 0.35, (13.5, 11.5, 8.0)),
)


def room_by_name(name: str) -> Room:
    """The bank room called ``name``."""
    for r in ROOMS:
        if r.name == name:
            return r
    raise TasBenchError(f"unknown room {name!r} (one of {[r.name for r in ROOMS]})", field="room")


def hrir_norm(hrtf: Hrtf) -> float:
    """Gain that makes the HRTF's diffuse-field energy (mean over directions and ears) 1."""
    e = float(np.mean(np.sum(hrtf.hrir**2, axis=-1)))
    if not e > 0:
        raise TasBenchError("all HRIRs are zero", path=hrtf.path, field="Data.IR")
    return 1.0 / math.sqrt(e)


def _image_offsets(order: int) -> list[tuple[int, int, int]]:
    """Per axis: (n, parity, reflections) of the images ``2 n L +- x`` with <= ``order``
    reflections (parity 0: ``+x``, 2|n| reflections; parity 1: ``-x``, |2n - 1|)."""
    out = []
    for n, p in itertools.product(range(-order, order + 1), (0, 1)):
        refl = 2 * abs(n) if p == 0 else abs(2 * n - 1)
        if refl <= order:
            out.append((n, p, refl))
    return out


@functools.lru_cache(maxsize=64)
def _image_table(dims: tuple[float, float, float], order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signs (K,3), shifts (K,3) metres, orders (K,)) of all images with 1 <= order <= ``order``."""
    axes = [_image_offsets(order) for _ in range(3)]
    signs, shifts, orders = [], [], []
    for combo in itertools.product(*axes):
        total = sum(c[2] for c in combo)
        if total == 0 or total > order:
            continue
        signs.append([1.0 if c[1] == 0 else -1.0 for c in combo])
        shifts.append([2.0 * c[0] * d for c, d in zip(combo, dims)])
        orders.append(total)
    return np.array(signs), np.array(shifts), np.array(orders)


@functools.lru_cache(maxsize=32)
def _tail(room: Room, hrtf: Hrtf) -> np.ndarray:
    """Late tail (2, L), unit energy per ear, starting at the late onset, for this room/HRTF."""
    sr = hrtf.sample_rate
    n = max(int(round(room.rt60 * sr)), 16)
    rng = np.random.default_rng(int.from_bytes(room.name.encode("utf-8"), "little") % (2**63))
    noise = rng.standard_normal((2, n))
    nfft = 1 << (n + hrtf.taps).bit_length()
    spec = np.fft.rfft(noise, nfft, axis=-1)
    # interaural coherence of a diffuse field: the right ear's noise shares the fraction
    # gamma(f) = sinc(2 f d / c) with the left ear's (d = EAR_DISTANCE)
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
    gamma = np.sinc(2.0 * freqs * EAR_DISTANCE / SPEED_OF_SOUND)
    spec[1] = gamma * spec[0] + np.sqrt(1.0 - gamma**2) * spec[1]
    # diffuse-field magnitude per ear: rms over directions of |H(f)|, computed on a short
    # grid and interpolated onto the noise's frequency grid
    nh = 1 << max(hrtf.taps - 1, 1).bit_length()
    hmag_short = np.sqrt(np.mean(np.abs(np.fft.rfft(hrtf.hrir, nh, axis=-1)) ** 2, axis=0))
    f_short = np.linspace(0.0, 0.5, hmag_short.shape[-1])
    f_long = np.linspace(0.0, 0.5, nfft // 2 + 1)
    hmag = np.stack([np.interp(f_long, f_short, hmag_short[ear]) for ear in range(2)])
    shaped = np.fft.irfft(spec * hmag, nfft, axis=-1)[:, :n]
    t = np.arange(n) / sr
    env = np.exp(-math.log(1000.0) * t / room.rt60)
    fade = max(int(TAIL_FADE * sr), 1)
    env[:fade] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    tail = shaped * env
    tail /= np.sqrt(np.sum(tail**2, axis=-1, keepdims=True))
    tail.setflags(write=False)
    return tail


def late_energy(room: Room) -> float:
    """Energy of the late tail relative to the direct sound at 1 m (dimensionless)."""
    return math.exp(-2.0 * math.log(1000.0) * room.mixing_time / room.rt60) / room.critical_distance**2


def check_geometry(azimuth: float, elevation: float, distance: float) -> None:
    """Raise :class:`TasBenchError` for angles or a distance outside the simulator's ranges."""
    if not (math.isfinite(azimuth) and -180.0 <= azimuth <= 360.0):
        raise TasBenchError(f"{azimuth} out of range [-180, 360] degrees", field="azimuth")
    if not (math.isfinite(elevation) and -90.0 <= elevation <= 90.0):
        raise TasBenchError(f"{elevation} out of range [-90, 90] degrees", field="elevation")
    if not (math.isfinite(distance) and DISTANCE_MIN <= distance <= DISTANCE_MAX):
        raise TasBenchError(f"{distance} out of range [{DISTANCE_MIN}, {DISTANCE_MAX}] metres",
                            field="distance")


def warm_up(hrtf: Hrtf, rooms: tuple[Room, ...] | None = None) -> None:
    """Precompute the late tails of ``rooms`` (default: the bank) for ``hrtf``."""
    for room in rooms or ROOMS:
        _tail(room, hrtf)


def brir(room: Room, hrtf: Hrtf, azimuth: float, elevation: float, distance: float, *,
         reverb: bool = True, method: str = "nearest") -> np.ndarray:
    """Binaural room impulse response (2, L) at ``hrtf.sample_rate`` for one source.

    Angles in degrees (SOFA), distance in metres. With ``reverb=False`` only the direct path
    (HRIR, 1/r gain, propagation delay) is returned (anechoic: the room's walls do not
    matter). ``method`` picks the direct path's HRIR (:meth:`Hrtf.hrir_at`: ``nearest`` or
    ``interp``); reflections always use the nearest measured direction. Raises
    :class:`TasBenchError` for out-of-range geometry or a source outside the room.
    """
    check_geometry(azimuth, elevation, distance)
    if reverb and not room.contains(azimuth, elevation, distance):
        raise TasBenchError(f"source at azimuth {azimuth}, elevation {elevation}, distance "
                            f"{distance} m lies outside room {room.name!r}", field="room")
    sr = hrtf.sample_rate
    norm = hrir_norm(hrtf)
    lst = np.asarray(room.listener)
    src = room.source_position(azimuth, elevation, distance)
    if reverb:
        signs, shifts, orders = _image_table(room.dims, IMAGE_ORDER)
        imgs = np.vstack([src[None, :], signs * src[None, :] + shifts])
        orders = np.concatenate([[0], orders])
    else:
        imgs, orders = src[None, :], np.array([0])
    vec = imgs - lst
    d = np.linalg.norm(vec, axis=1)
    u = vec / d[:, None]
    # nearest measured HRIR for every arrival direction (exact ties broken by a fixed rule,
    # not by the round-off of this distance: Hrtf.nearest_indices)
    idx = hrtf.nearest_indices(u)
    beta = math.sqrt(1.0 - room.absorption)
    gains = norm * beta**orders / d
    delays = np.rint(d / SPEED_OF_SOUND * sr).astype(int)
    taps = hrtf.taps
    direct_delay = int(delays[0])
    tail = _tail(room, hrtf) if reverb else np.zeros((2, 0))
    tail_start = direct_delay + int(round(room.mixing_time * sr))
    length = max(int(delays.max()) + taps, tail_start + tail.shape[1] if reverb else 0)
    out = np.zeros((2, length))
    for k, (g, dl, i) in enumerate(zip(gains, delays, idx)):
        ir = hrtf.hrir_at(azimuth, elevation, method) if k == 0 and method != "nearest" \
            else hrtf.hrir[i]
        out[:, dl : dl + taps] += g * ir
    if reverb:
        out[:, tail_start : tail_start + tail.shape[1]] += math.sqrt(late_energy(room)) * tail
    return out
