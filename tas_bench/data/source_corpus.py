"""Monaural source corpus built from installed Debian packages.

Packages used (install them with ``apt-get install sound-theme-freedesktop sonic-pi-samples
pocketsphinx-testdata espeak-ng``; ``make`` does):

* ``sound-theme-freedesktop``: event sounds ``/usr/share/sounds/freedesktop/stereo/*.oga``
  (the ``audio-channel-*`` files are left out: they are spoken direction names that would
  contradict the simulated geometry);
* ``sonic-pi-samples``: music and effect samples ``/usr/share/sonic-pi/samples/*.flac``;
* ``pocketsphinx-testdata``: read speech ``/usr/share/pocketsphinx/test/data/**/*.wav``;
* ``espeak-ng``: speech synthesised from :data:`ESPEAK_SENTENCES` with :data:`ESPEAK_VOICES`.

Labels come from package, folder and file names through small tables (:func:`label_for`).
Licences come from the package's ``/usr/share/doc/PKG/copyright`` (DEP-5 ``Files:`` stanzas
matched against the file; the last match wins).

Processing (:func:`prepare_source`): decode, average channels to mono, resample, trim silence
with ``librosa.effects.split(top_db=TRIM_TOP_DB)`` (frames quieter than 40 dB below the peak
frame are silence; leading/trailing silence is removed and inner silences are shortened to
``MAX_GAP`` seconds), then scale to RMS ``TARGET_RMS``. Results are cached as ``.npy`` files
whose name is the hash of (file sha256, rate, trim configuration, pipeline version), so a
changed file or setting never reuses a stale entry.

Splits are assigned per source *file* (per sentence for synthesised speech, so the same
text never appears in two splits) from a hash of its group key, so train/val/test never share
a recording.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tas_bench.data.manifest import Provenance
from tas_bench.runtime.audio_io import read_audio
from tas_bench.runtime.errors import AudioError, TasBenchError
from tas_bench.runtime.fileio import atomic_path, sha256_file, stable_hash

TRIM_TOP_DB = 40.0
MAX_GAP = 0.1
TARGET_RMS = 0.1
PIPELINE_VERSION = 1
#: The shortest source the simulator takes, in samples at the dataset rate after trimming.
MIN_SOURCE_SAMPLES = 16
#: Fractions of source groups assigned to test and val (the rest is train).
SPLIT_FRACTIONS = {"test": 0.15, "val": 0.10}
DEBIAN_PACKAGES = ("sound-theme-freedesktop", "sonic-pi-samples", "pocketsphinx-testdata",
                   "espeak-ng")
INSTALL_HINT = "install the Debian packages: apt-get install " + " ".join(DEBIAN_PACKAGES)

#: Where each package's usable files are (glob patterns).
PACKAGE_GLOBS: dict[str, tuple[str, ...]] = {
    "sound-theme-freedesktop": ("/usr/share/sounds/freedesktop/stereo/*.oga",),
    "sonic-pi-samples": ("/usr/share/sonic-pi/samples/*.flac",),
    "pocketsphinx-testdata": ("/usr/share/pocketsphinx/test/data/**/*.wav",),
}
EXCLUDE_PATTERNS = ("audio-channel-*",)

#: Fixed sentences for synthetic speech (no spatial words, so they never contradict a prompt).
ESPEAK_SENTENCES = (
    "The weather today is mild with a light breeze.",
    "Please remember to water the plants on Sunday.",
    "The train to the city leaves every twenty minutes.",
    "She bought three apples and a loaf of bread.",
    "Our meeting has been moved to Thursday afternoon.",
    "The museum opens at nine and closes at five.",
    "He plays the violin in the local orchestra.",
    "Turn off the lights when you leave the office.",
    "The recipe calls for two cups of flour.",
    "A quiet evening with a good book is relaxing.",
    "The children built a sandcastle at the beach.",
    "This library has thousands of old manuscripts.",
    "Dinner will be ready in about half an hour.",
    "The new bridge was finished ahead of schedule.",
    "Coffee tastes better when the beans are fresh.",
    "The garden is full of roses and tulips in spring.",
    "My neighbour repairs old bicycles as a hobby.",
    "The football match ended in a draw last night.",
    "Remember to bring an umbrella in case it rains.",
    "The bakery sells warm croissants every morning.",
)
#: (espeak-ng voice, label)
ESPEAK_VOICES = (("en-us", "man speaking"), ("en-us+f3", "woman speaking"),
                 ("en-gb-x-rp", "man speaking"))

#: Licence to record when a package's copyright file has no machine-readable licence.
FALLBACK_LICENCES = {"espeak-ng": "GPL-3+"}

_FREEDESKTOP_LABELS = {
    "alarm-clock-elapsed": "alarm clock", "audio-test-signal": "noise",
    "audio-volume-change": "click", "bell": "bell", "camera-shutter": "camera shutter",
    "complete": "chime", "device-added": "notification chime",
    "device-removed": "notification chime", "dialog-error": "error beep",
    "dialog-information": "notification chime", "dialog-warning": "warning beep",
    "message": "message alert", "message-new-instant": "message alert",
    "network-connectivity-established": "notification chime",
    "network-connectivity-lost": "notification chime", "phone-incoming-call": "phone ringing",
    "phone-outgoing-busy": "busy tone", "phone-outgoing-calling": "ringback tone",
    "power-plug": "click", "power-unplug": "click", "screen-capture": "camera shutter",
    "service-login": "chime", "service-logout": "chime", "suspend-error": "error beep",
    "trash-empty": "crumpling paper", "window-attention": "alert chime",
    "window-question": "alert chime",
}
# longest matching name prefix wins
_SONIC_PI_LABELS = {
    "ambi": "ambient drone", "ambi_choir": "choir", "ambi_piano": "piano",
    "ambi_glass": "glass hum", "ambi_swoosh": "swoosh", "ambi_dark_woosh": "swoosh",
    "bass": "bass synth", "bd": "bass drum", "drum": "drum", "drum_cymbal": "cymbal",
    "drum_splash": "cymbal", "drum_snare": "snare drum", "drum_tom": "tom drum",
    "drum_cowbell": "cowbell", "drum_bass": "bass drum", "drum_heavy_kick": "bass drum",
    "drum_roll": "drum roll", "elec": "electronic percussion", "elec_beep": "electronic beep",
    "elec_blip": "electronic beep", "elec_bell": "bell", "elec_chime": "chime",
    "glitch": "glitch sound", "glitch_robot": "robot voice", "guit": "guitar",
    "loop": "drum loop", "loop_3d_printer": "3d printer", "loop_drone": "ambient drone",
    "loop_industrial": "industrial noise", "loop_tabla": "tabla", "loop_safari": "percussion",
    "mehackit_phone": "phone ringing", "mehackit_robot": "robot voice", "misc_burp": "burp",
    "misc_cineboom": "boom", "misc_crow": "crow", "perc": "percussion", "perc_bell": "bell",
    "perc_door": "door knock", "perc_impact": "impact", "perc_snap": "finger snap",
    "perc_swash": "swoosh", "perc_swoosh": "swoosh", "perc_till": "cash register",
    "sn": "snare drum", "tabla": "tabla", "vinyl": "vinyl scratch", "vinyl_hiss": "vinyl hiss",
}
_MUSIC_PREFIXES = ("ambi", "bass", "bd", "drum", "elec", "guit", "loop", "sn", "tabla")


@dataclass(frozen=True)
class SourceSpec:
    """A candidate source before decoding: where it is and what it is.

    ``file`` is the absolute path of the audio (for synthesised speech: the cached wav);
    ``origin`` the file name recorded in the provenance; ``group`` the key split assignment
    hashes (sources sharing a group always land in the same split).
    """

    key: str
    label: str
    kind: str
    package: str
    file: str
    origin: str
    licence: str
    group: str
    extra: tuple[tuple[str, Any], ...] = ()


@dataclass
class SourceItem:
    """A decoded source: mono float32 at ``sample_rate`` Hz, trimmed and RMS-normalised."""

    spec: SourceSpec
    split: str
    audio: np.ndarray
    sha256: str
    sample_rate: int

    def provenance(self) -> Provenance:
        """Provenance for the manifest (package, file, licence, sha256 and extras)."""
        extra: dict[str, Any] = {"sha256": self.sha256, "key": self.spec.key}
        extra.update(dict(self.spec.extra))
        return Provenance(self.spec.package, self.spec.origin, self.spec.licence, extra)


@dataclass
class SourceCorpus:
    """All usable sources, with their split."""

    items: list[SourceItem]
    config: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[SourceItem]:
        """Sources of one split, in a stable order (by key)."""
        return [it for it in self.items if it.split == name]

    def summary(self) -> dict[str, Any]:
        """Counts per split and kind, for dataset.json."""
        out: dict[str, Any] = {}
        for it in self.items:
            s = out.setdefault(it.split, {})
            s[it.spec.kind] = s.get(it.spec.kind, 0) + 1
        return out


def default_cache_dir() -> Path:
    """``$TAS_BENCH_CACHE`` or ``$XDG_CACHE_HOME/tas-bench`` or ``~/.cache/tas-bench``."""
    env = os.environ.get("TAS_BENCH_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tas-bench"


def split_for_group(group: str) -> str:
    """Deterministic split (train/val/test) of a source group from the hash of its key."""
    u = int(hashlib.sha256(f"tas-bench-split:{group}".encode()).hexdigest()[:12], 16) / 16**12
    if u < SPLIT_FRACTIONS["test"]:
        return "test"
    if u < SPLIT_FRACTIONS["test"] + SPLIT_FRACTIONS["val"]:
        return "val"
    return "train"


def label_for(package: str, path: str) -> tuple[str, str]:
    """(label, kind) of a package file from its package, folder and file name.

    kind is ``speech``, ``music`` or ``event``.
    """
    stem = Path(path).stem
    if package == "sound-theme-freedesktop":
        return _FREEDESKTOP_LABELS.get(stem, stem.replace("-", " ")), "event"
    if package == "sonic-pi-samples":
        best = ""
        for prefix in _SONIC_PI_LABELS:
            nxt = stem[len(prefix):len(prefix) + 1]
            if stem.startswith(prefix) and (nxt == "" or nxt == "_" or nxt.isdigit()) \
                    and len(prefix) > len(best):
                best = prefix
        label = _SONIC_PI_LABELS[best] if best else re.sub(r"[_\d]+", " ", stem).strip()
        kind = "music" if stem.split("_")[0] in _MUSIC_PREFIXES else "event"
        return label, kind
    if package in ("pocketsphinx-testdata", "espeak-ng"):
        return "speech", "speech"
    return re.sub(r"[_\-\d]+", " ", stem).strip() or "sound", "event"


def _parse_dep5(text: str) -> list[tuple[list[str], str]]:
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        files: list[str] = []
        licence = None
        current = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t"):
                if current == "Files":
                    files.extend(line.split())
                continue
            key, _, value = line.partition(":")
            current = key.strip()
            if current == "Files":
                files.extend(value.split())
            elif current == "License" and licence is None:
                licence = value.strip()
        if files and licence:
            stanzas.append((files, licence))
    return stanzas


@functools.lru_cache(maxsize=32)
def _copyright_stanzas(package: str) -> tuple[tuple[tuple[str, ...], str], ...]:
    p = Path("/usr/share/doc") / package / "copyright"
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    return tuple((tuple(f), lic) for f, lic in _parse_dep5(text))


def licence_for(package: str, path: str) -> str:
    """Licence of ``path`` from the package's DEP-5 copyright file (last matching stanza)."""
    found = None
    base = Path(path).name
    for patterns, lic in _copyright_stanzas(package):
        for pat in patterns:
            pbase = pat.rsplit("/", 1)[-1]
            if pat == "*" or fnmatch.fnmatch(path, "*/" + pat) or (
                    pbase not in ("*", "") and fnmatch.fnmatch(base, pbase)):
                if pat.startswith("debian/"):
                    continue
                found = lic
    if found:
        return found
    return FALLBACK_LICENCES.get(package, f"see /usr/share/doc/{package}/copyright")


def _is_excluded(path: str) -> bool:
    return any(fnmatch.fnmatch(Path(path).name, pat) for pat in EXCLUDE_PATTERNS)


def _espeak_version() -> str:
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip()


def synthesize_speech(cache_dir: Path) -> list[SourceSpec]:
    """Synthesise :data:`ESPEAK_SENTENCES` x :data:`ESPEAK_VOICES` with espeak-ng (cached by
    (espeak version, voice, text)); [] if espeak-ng is not installed."""
    if shutil.which("espeak-ng") is None:
        return []
    version = _espeak_version()
    out_dir = cache_dir / "espeak"
    specs = []
    licence = licence_for("espeak-ng", "espeak-ng")
    for si, text in enumerate(ESPEAK_SENTENCES):
        for voice, label in ESPEAK_VOICES:
            key = stable_hash({"tool": "espeak-ng", "version": version, "voice": voice,
                               "text": text})[:32]
            wav = out_dir / f"{key}.wav"
            if not wav.is_file():
                out_dir.mkdir(parents=True, exist_ok=True)
                with atomic_path(wav, suffix=".wav") as tmp:
                    try:
                        subprocess.run(["espeak-ng", "-v", voice, "-w", str(tmp), text],
                                       capture_output=True, timeout=60, check=True)
                    except (OSError, subprocess.SubprocessError) as exc:
                        raise TasBenchError(f"espeak-ng failed for voice {voice!r} ({exc})",
                                            hint=INSTALL_HINT) from None
            specs.append(SourceSpec(
                key=f"espeak-ng/s{si:02d}/{voice}", label=label, kind="speech",
                package="espeak-ng", file=str(wav), origin=f'espeak-ng -v {voice} "{text}"',
                licence=licence, group=f"espeak-ng/sentence{si:02d}",
                extra=(("text", text), ("voice", voice), ("espeak_version", version))))
    return specs


def discover_sources(packages: Sequence[str] = DEBIAN_PACKAGES,
                     cache_dir: Path | None = None) -> list[SourceSpec]:
    """Candidate sources of the installed ``packages`` (missing packages are skipped).

    Raises :class:`TasBenchError` naming the packages to install when none is present.
    """
    specs: list[SourceSpec] = []
    for pkg in packages:
        if pkg == "espeak-ng":
            specs.extend(synthesize_speech(cache_dir or default_cache_dir()))
            continue
        if pkg not in PACKAGE_GLOBS:
            raise TasBenchError(f"unknown source package {pkg!r} (one of "
                                f"{sorted([*PACKAGE_GLOBS, 'espeak-ng'])})", field="packages")
        paths: set[str] = set()
        for pattern in PACKAGE_GLOBS[pkg]:
            root, _, rest = pattern.partition("*")
            base = Path(root)
            if base.is_dir():
                paths.update(str(p) for p in base.glob("*" + rest))
        for path in sorted(paths):
            if _is_excluded(path):
                continue
            label, kind = label_for(pkg, path)
            specs.append(SourceSpec(key=f"{pkg}/{Path(path).name}", label=label, kind=kind,
                                    package=pkg, file=path, origin=path,
                                    licence=licence_for(pkg, path), group=path))
    if not specs:
        raise TasBenchError("no monaural source material found", hint=INSTALL_HINT)
    return sorted(specs, key=lambda s: s.key)


def trim_config() -> dict[str, Any]:
    """The processing settings that a cache entry depends on."""
    return {"top_db": TRIM_TOP_DB, "max_gap": MAX_GAP, "target_rms": TARGET_RMS,
            "version": PIPELINE_VERSION, "frame_length": 1024, "hop_length": 256}


def prepare_source(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz, trimmed and RMS-normalised.

    Raises :class:`TasBenchError` naming the file when it is unreadable or silent.
    """
    import librosa

    audio = read_audio(path, sample_rate=sample_rate, dtype="float64")
    x = audio.samples.mean(axis=0)
    if not np.any(x):
        raise AudioError("source is entirely silent", path=path)
    cfg = trim_config()
    intervals = librosa.effects.split(x, top_db=cfg["top_db"], frame_length=cfg["frame_length"],
                                      hop_length=cfg["hop_length"])
    max_gap = int(MAX_GAP * sample_rate)
    pieces = []
    for k, (a, b) in enumerate(intervals):
        if k:
            gap = a - intervals[k - 1][1]
            if gap > 0:
                pieces.append(np.zeros(min(gap, max_gap)))
        pieces.append(x[a:b])
    y = np.concatenate(pieces) if pieces else np.zeros(0)
    rms = float(np.sqrt(np.mean(y**2))) if y.size else 0.0
    if y.size < MIN_SOURCE_SAMPLES or not rms > 1e-7:
        raise AudioError("source is silent after trimming (no sound above -"
                         f"{TRIM_TOP_DB:g} dB of its peak)", path=path)
    return (y * (TARGET_RMS / rms)).astype(np.float32)


def load_source(spec: SourceSpec, sample_rate: int, cache_dir: Path | None = None,
                split: str | None = None) -> SourceItem:
    """Decode one source through the content-addressed cache."""
    path = Path(spec.file)
    if not path.is_file():
        raise AudioError("source file not found", path=path)
    digest = sha256_file(path)
    key = stable_hash({"sha256": digest, "rate": sample_rate, "trim": trim_config()})[:40]
    cache = (cache_dir or default_cache_dir()) / "sources" / f"{key}.npy"
    y = None
    if cache.is_file():
        try:
            y = np.load(cache, allow_pickle=False)
        except (OSError, ValueError):
            y = None
    if y is None or y.ndim != 1 or y.dtype != np.float32:
        y = prepare_source(path, sample_rate)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache, suffix=".npy") as tmp, open(tmp, "wb") as f:
            np.save(f, y, allow_pickle=False)
    y.setflags(write=False)
    return SourceItem(spec=spec, split=split or split_for_group(spec.group), audio=y,
                      sha256=digest, sample_rate=sample_rate)


def build_corpus(sample_rate: int = 16000, *, packages: Sequence[str] = DEBIAN_PACKAGES,
                 specs: Iterable[SourceSpec] | None = None, cache_dir: Path | None = None,
                 ) -> SourceCorpus:
    """Discover (or take ``specs``), decode and split every source.

    Raises :class:`TasBenchError` naming the file for an unreadable or silent source, and naming
    the Debian packages to install when nothing is found.
    """
    cache_dir = cache_dir or default_cache_dir()
    spec_list = list(specs) if specs is not None else discover_sources(packages, cache_dir)
    if not spec_list:
        raise TasBenchError("no monaural source material found", hint=INSTALL_HINT)
    items = [load_source(s, sample_rate, cache_dir) for s in sorted(spec_list, key=lambda s: s.key)]
    config = {"packages": sorted({s.package for s in spec_list}), "trim": trim_config(),
              "split_fractions": SPLIT_FRACTIONS, "sample_rate": sample_rate}
    return SourceCorpus(items=items, config=config)


def spec_from_file(path: str | Path, label: str, *, package: str = "local",
                   licence: str = "unknown", kind: str = "event") -> SourceSpec:
    """A :class:`SourceSpec` for a user's own file (its split is hashed from its path)."""
    p = str(Path(path).resolve())
    return SourceSpec(key=f"{package}/{Path(p).name}", label=label, kind=kind, package=package,
                      file=p, origin=p, licence=licence, group=p)


def fit_to_length(x: np.ndarray, n: int, rng: np.random.Generator,
                  gap_range: tuple[float, float] = (0.2, 1.0), sample_rate: int = 16000) -> np.ndarray:
    """A length-``n`` excerpt of ``x``: a random window when ``x`` is long enough; otherwise
    ``x`` repeated with random silent gaps (``gap_range`` seconds) from a random start phase,
    so the source sounds through the whole clip."""
    if len(x) >= n:
        start = int(rng.integers(0, len(x) - n + 1))
        return np.asarray(x[start : start + n], dtype=np.float64)
    out = np.zeros(n)
    pos = -int(rng.integers(0, len(x)))
    while pos < n:
        a, b = max(pos, 0), min(pos + len(x), n)
        if b > a:
            out[a:b] = x[a - pos : b - pos]
        pos += len(x) + int(rng.uniform(*gap_range) * sample_rate)
    return out


__all__ = ["SourceSpec", "SourceItem", "SourceCorpus", "build_corpus", "discover_sources",
           "prepare_source", "load_source", "label_for", "licence_for", "split_for_group",
           "fit_to_length", "spec_from_file", "default_cache_dir"]
