"""The dataset contract: ``DATA/manifest.jsonl`` plus the wavs it names.

One JSON object per line, one clip each (schema version :data:`MANIFEST_VERSION`):

============== ==================================================================================
field          meaning
============== ==================================================================================
id             unique clip id: letters, digits, ``_ - .``; predictions are ``PRED/{id}.wav``
split          ``train`` | ``val`` | ``test``
audio          binaural wav path relative to DATA (no ``..``, no absolute path)
sample_rate    Hz of that wav
duration       seconds
category       ``single_doa_de`` | ``double_doa_de`` | ``relative_direction`` |
               ``relative_distance`` | ``real`` (imported recordings with no geometry)
sources        list of {label, azimuth (deg, SOFA: CCW from front, 90 = left), elevation (deg,
               up), distance (m), direction [lateral, frontal, vertical] (or [lateral, frontal]
               in a horizontal dataset), provenance {package,
               file, licence}, ...}; may be empty for real recordings
prompt         the text prompt (string, may be empty for real recordings without captions)
prompt_type    ``A``..``G`` (paper Table 1) or null
qa             list of {question, answer, category (DOA|DE|Direction|Distance), question_type}
hrtf           {name, sha256, ...} or null
room           room parameters (dict) or null
seed           the integer seed the clip was simulated with, or null
============== ==================================================================================

Extra keys are allowed and kept (forward compatible); unknown *values* of the enumerated fields
are errors.

Hostile files: the manifest is read as bytes, one line at a time, and each line is parsed by
:func:`tas_bench.runtime.fileio.loads_json_strict` (no NaN/Infinity, no integer over 1000 digits, no
nesting over 100 levels, no unpaired surrogates); a line that is not valid UTF-8 or longer than
:data:`MAX_LINE_BYTES` is reported as a problem of that line and skipped without being held in
memory, so memory stays bounded by the valid clips, whatever the file holds. ``dataset.json``
(optional) must be a JSON object whose ``name``, if present, is a non-empty one-line string.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tas_bench.data.geometry import direction_words
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import (
    JSONProblem,
    loads_json_strict,
    read_json_object,
    safe_join,
    sha256_bytes,
    sha256_file,
)

MANIFEST_NAME = "manifest.jsonl"
DATASET_INFO_NAME = "dataset.json"
MANIFEST_VERSION = "1.0"
SPLITS = ("train", "val", "test")
CATEGORIES = ("single_doa_de", "double_doa_de", "relative_direction", "relative_distance", "real")
PROMPT_TYPES = tuple("ABCDEFG")
QA_CATEGORIES = ("DOA", "DE", "Direction", "Distance")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
#: Longest manifest line read (bytes, without the newline); a clip line is ~1 KB.
MAX_LINE_BYTES = 1 << 20
#: At most this many problems are listed; the rest are counted in one closing problem.
MAX_LISTED_PROBLEMS = 1000


def _short(value: Any, limit: int = 60) -> str:
    """repr of ``value`` cut to ``limit`` characters, for messages about hostile values."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Provenance:
    """Where a source recording came from: package, file inside it, licence."""

    package: str
    file: str
    licence: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Source:
    """One sound source of a clip; angles in degrees (SOFA), distance in metres."""

    label: str
    azimuth: float
    elevation: float
    distance: float
    direction: list[str]
    provenance: Provenance
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class QAItem:
    """A spatial question about a clip with its ground-truth answer."""

    question: str
    answer: str
    category: str
    question_type: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Clip:
    """One line of the manifest."""

    id: str
    split: str
    audio: str
    sample_rate: int
    duration: float
    category: str
    sources: list[Source]
    prompt: str
    prompt_type: str | None
    qa: list[QAItem]
    hrtf: dict[str, Any] | None
    room: dict[str, Any] | None
    seed: int | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this clip (extra keys merged back in)."""
        d = asdict(self)
        extra = d.pop("extra")
        for s in d["sources"]:
            s.update(s.pop("extra"))
            s["provenance"].update(s["provenance"].pop("extra"))
        for q in d["qa"]:
            q.update(q.pop("extra"))
        d.update(extra)
        return d


@dataclass(frozen=True)
class Problem:
    """One validation problem: line (1-based, 0 = whole file), field, message, and the file
    inside the dataset folder it concerns (``""`` = the manifest)."""

    line: int
    field: str
    message: str
    file: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else ("" if self.file else "manifest")
        return ": ".join(x for x in (where, self.field, self.message) if x)


class _Checker:
    def __init__(self, line: int, problems: list[Problem]) -> None:
        self.line = line
        self.problems = problems

    def bad(self, fld: str, msg: str) -> None:
        self.problems.append(Problem(self.line, fld, msg))

    def get(self, obj: dict[str, Any], key: str, types: tuple[type, ...], prefix: str = "",
            required: bool = True, nullable: bool = False) -> Any:
        name = f"{prefix}{key}"
        if key not in obj:
            if required:
                self.bad(name, "missing")
            return None
        v = obj[key]
        if v is None:
            if not nullable:
                self.bad(name, "must not be null")
            return None
        if isinstance(v, bool) and bool not in types:
            self.bad(name, f"expected {'/'.join(t.__name__ for t in types)}, got bool")
            return None
        if not isinstance(v, types):
            self.bad(name, f"expected {'/'.join(t.__name__ for t in types)}, got {type(v).__name__}")
            return None
        if isinstance(v, float) and not math.isfinite(v):
            self.bad(name, "must be finite")
            return None
        if isinstance(v, int) and float in types:
            try:
                float(v)
            except OverflowError:
                self.bad(name, f"{_short(v, 30)} does not fit a 64-bit float")
                return None
        return v


_CLIP_KEYS = {"id", "split", "audio", "sample_rate", "duration", "category", "sources", "prompt",
              "prompt_type", "qa", "hrtf", "room", "seed"}
_SOURCE_KEYS = {"label", "azimuth", "elevation", "distance", "direction", "provenance"}
_PROV_KEYS = {"package", "file", "licence"}
_QA_KEYS = {"question", "answer", "category", "question_type"}


def _parse_source(obj: Any, c: _Checker, prefix: str) -> Source | None:
    if not isinstance(obj, dict):
        c.bad(prefix.rstrip("."), "expected an object")
        return None
    label = c.get(obj, "label", (str,), prefix)
    az = c.get(obj, "azimuth", (int, float), prefix)
    el = c.get(obj, "elevation", (int, float), prefix)
    dist = c.get(obj, "distance", (int, float), prefix)
    words = c.get(obj, "direction", (list,), prefix)
    prov = c.get(obj, "provenance", (dict,), prefix)
    ok = True
    if az is not None and not -180.0 <= az <= 360.0:
        c.bad(f"{prefix}azimuth", f"{_short(az)} out of range [-180, 360] degrees")
        ok = False
    if el is not None and not -90.0 <= el <= 90.0:
        c.bad(f"{prefix}elevation", f"{_short(el)} out of range [-90, 90] degrees")
        ok = False
    if dist is not None and not 0.0 < dist <= 1000.0:
        c.bad(f"{prefix}distance", f"{_short(dist)} out of range (0, 1000] metres")
        ok = False
    if words is not None:
        # two words [lateral, frontal]: a horizontal dataset (tas_bench.data.geometry.HORIZONTAL)
        if len(words) not in (2, 3) or not all(isinstance(w, str) for w in words):
            c.bad(f"{prefix}direction", "expected three words [left|right, front|behind, "
                                        "above|below] (two, without the last, in a horizontal dataset)")
            ok = False
        elif az is not None and el is not None and ok and \
                list(direction_words(az, el))[:len(words)] != words:
            c.bad(f"{prefix}direction",
                  f"{_short(words, 120)} disagrees with azimuth {az}, elevation {el} "
                  f"(expected {list(direction_words(az, el))[:len(words)]})")
            ok = False
    provenance = None
    if prov is not None:
        pk = c.get(prov, "package", (str,), f"{prefix}provenance.")
        fl = c.get(prov, "file", (str,), f"{prefix}provenance.")
        li = c.get(prov, "licence", (str,), f"{prefix}provenance.")
        if None not in (pk, fl, li):
            provenance = Provenance(pk, fl, li, {k: v for k, v in prov.items() if k not in _PROV_KEYS})
    if None in (label, az, el, dist, words, provenance) or not ok:
        return None
    return Source(label, float(az), float(el), float(dist), list(words), provenance,
                  {k: v for k, v in obj.items() if k not in _SOURCE_KEYS})


def _parse_qa(obj: Any, c: _Checker, prefix: str) -> QAItem | None:
    if not isinstance(obj, dict):
        c.bad(prefix.rstrip("."), "expected an object")
        return None
    q = c.get(obj, "question", (str,), prefix)
    a = c.get(obj, "answer", (str,), prefix)
    cat = c.get(obj, "category", (str,), prefix)
    qt = c.get(obj, "question_type", (str,), prefix)
    if cat is not None and cat not in QA_CATEGORIES:
        c.bad(f"{prefix}category", f"{_short(cat)} is not one of {list(QA_CATEGORIES)}")
        return None
    if None in (q, a, cat, qt):
        return None
    return QAItem(q, a, cat, qt, {k: v for k, v in obj.items() if k not in _QA_KEYS})


def parse_clip(obj: Any, line: int, problems: list[Problem]) -> Clip | None:
    """Validate one manifest object; append problems; return the clip or None if invalid."""
    c = _Checker(line, problems)
    n_before = len(problems)
    if not isinstance(obj, dict):
        c.bad("", "expected a JSON object")
        return None
    cid = c.get(obj, "id", (str,))
    if cid is not None and not _ID_RE.match(cid):
        c.bad("id", f"{_short(cid)} is not a valid clip id (letters, digits, _ - . ; max 200 chars)")
    split = c.get(obj, "split", (str,))
    if split is not None and split not in SPLITS:
        c.bad("split", f"{_short(split)} is not one of {list(SPLITS)}")
    audio = c.get(obj, "audio", (str,))
    if audio is not None and (not audio or len(audio) > 1024 or _CONTROL_RE.search(audio)):
        c.bad("audio", f"{_short(audio)} is not a usable file name (empty, over 1024 characters "
                       "or control characters)")
    elif audio is not None and (audio.startswith("/") or ".." in Path(audio).parts):
        c.bad("audio", f"{_short(audio)} must be a path inside the dataset folder (no '..', not absolute)")
    sr = c.get(obj, "sample_rate", (int,))
    if sr is not None and not 1000 <= sr <= 384000:
        c.bad("sample_rate", f"{_short(sr)} out of range [1000, 384000] Hz")
    dur = c.get(obj, "duration", (int, float))
    if dur is not None and not dur > 0:
        c.bad("duration", f"{_short(dur)} must be > 0 seconds")
    cat = c.get(obj, "category", (str,))
    if cat is not None and cat not in CATEGORIES:
        c.bad("category", f"{_short(cat)} is not one of {list(CATEGORIES)}")
    raw_sources = c.get(obj, "sources", (list,))
    sources = []
    for i, s in enumerate(raw_sources or []):
        src = _parse_source(s, c, f"sources[{i}].")
        if src is not None:
            sources.append(src)
    prompt = c.get(obj, "prompt", (str,))
    ptype = c.get(obj, "prompt_type", (str,), nullable=True)
    if ptype is not None and ptype not in PROMPT_TYPES:
        c.bad("prompt_type", f"{_short(ptype)} is not one of A..G")
    raw_qa = c.get(obj, "qa", (list,))
    qa = []
    for i, q in enumerate(raw_qa or []):
        item = _parse_qa(q, c, f"qa[{i}].")
        if item is not None:
            qa.append(item)
    hrtf = c.get(obj, "hrtf", (dict,), nullable=True)
    room = c.get(obj, "room", (dict,), nullable=True)
    seed = c.get(obj, "seed", (int,), nullable=True)
    if cat is not None and cat != "real" and raw_sources is not None and not raw_sources:
        c.bad("sources", f"category {_short(cat)} needs at least one source")
    if len(problems) > n_before:
        return None
    return Clip(cid, split, audio, int(sr), float(dur), cat, sources, prompt, ptype, qa, hrtf,
                room, seed, {k: v for k, v in obj.items() if k not in _CLIP_KEYS})


def iter_manifest_lines(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """Yield (line number, parsed object or None, problem text or None) for non-blank lines.

    Reads bytes, one line at a time: a line that is not UTF-8, is longer than
    :data:`MAX_LINE_BYTES` (skipped in 1 MiB pieces, never held whole) or is refused by
    :func:`~tas_bench.runtime.fileio.loads_json_strict` yields its problem instead of an object.
    """
    with open(path, "rb") as f:
        n = 0
        while raw := f.readline(MAX_LINE_BYTES + 1):
            n += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                size = len(raw)
                while not raw.endswith(b"\n") and (raw := f.readline(1 << 20)):
                    size += len(raw)
                yield n, None, (f"line is {size} bytes long; manifest lines over "
                                f"{MAX_LINE_BYTES} bytes are refused")
                continue
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield n, None, (f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte column "
                                f"{exc.start + 1})")
                continue
            try:
                yield n, loads_json_strict(text), None
            except JSONProblem as exc:
                where = f" at column {exc.column}" if exc.column else ""
                yield n, None, f"malformed JSON ({exc.reason}{where})"


@dataclass
class Dataset:
    """A loaded dataset folder: its root, clips (in manifest order) and dataset.json info."""

    root: Path
    clips: list[Clip]
    info: dict[str, Any]

    def split(self, name: str | None) -> list[Clip]:
        """Clips of one split (all clips for ``None``)."""
        return [c for c in self.clips if name is None or c.split == name]

    def audio_path(self, clip: Clip) -> Path:
        """Absolute path of a clip's wav, refusing paths that escape the dataset folder."""
        return safe_join(self.root, clip.audio, what=f"clip {clip.id}: audio")

    def by_id(self) -> dict[str, Clip]:
        return {c.id: c for c in self.clips}


def check_manifest(root: str | Path) -> tuple[list[Clip], list[Problem]]:
    """Parse and validate ``root/manifest.jsonl`` without touching the audio.

    Returns all valid clips and every problem found (line, field, message).
    """
    clips, problems, _ = check_manifest_lines(root)
    return clips, problems


def check_manifest_lines(root: str | Path) -> tuple[list[Clip], list[Problem], dict[str, int]]:
    """:func:`check_manifest` plus the manifest line (1-based) of each valid clip id.

    At most :data:`MAX_LISTED_PROBLEMS` problems are listed; one more (line 0) counts the rest.
    A manifest that is missing, not a regular file or unreadable is a :class:`TasBenchError`.
    """
    root = Path(root)
    path = root / MANIFEST_NAME
    problems: list[Problem] = []
    if not root.is_dir():
        raise TasBenchError("dataset folder not found", path=root)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if (root / "shard.json").is_file():  # tas_bench.data.shards.SHARD_INFO_NAME
            raise TasBenchError("no manifest.jsonl: this is one shard of `tas-bench simulate "
                                "--shard`, not a dataset; join the shards with `tas-bench "
                                "simulate-merge`", path=root) from None
        raise TasBenchError("no manifest.jsonl in the dataset folder", path=root) from None
    except OSError as exc:
        raise TasBenchError(f"cannot be read ({exc.strerror or exc})", path=path) from None
    if not stat.S_ISREG(st.st_mode):
        raise TasBenchError("is not a regular file", path=path)
    clips: list[Clip] = []
    seen: dict[str, int] = {}
    unlisted = 0

    def add(found: list[Problem]) -> None:
        nonlocal unlisted
        room = MAX_LISTED_PROBLEMS - len(problems)
        problems.extend(found[:max(room, 0)])
        unlisted += max(len(found) - max(room, 0), 0)

    try:
        for n, obj, err in iter_manifest_lines(path):
            if err:
                add([Problem(n, "", err)])
                continue
            found: list[Problem] = []
            clip = parse_clip(obj, n, found)
            if clip is None:
                add(found)
                continue
            if clip.id in seen:
                add([Problem(n, "id", f"duplicate clip id {clip.id!r} (first on line {seen[clip.id]})")])
                continue
            seen[clip.id] = n
            try:
                safe_join(root, clip.audio, what="audio")
            except TasBenchError as exc:
                add([Problem(n, "audio", exc.reason)])
                continue
            except (ValueError, OSError) as exc:
                add([Problem(n, "audio", f"{_short(clip.audio)} is not a usable path ({exc})")])
                continue
            clips.append(clip)
    except OSError as exc:
        raise TasBenchError(f"cannot be read ({exc.strerror or exc})", path=path) from None
    if unlisted:
        problems.append(Problem(0, "", f"{unlisted} more problem(s) not listed "
                                       f"(only the first {MAX_LISTED_PROBLEMS} are)"))
    if not seen and not problems:
        problems.append(Problem(0, "", "manifest has no clips"))
    return clips, problems, seen


def check_dataset_info(root: str | Path) -> tuple[dict[str, Any], list[Problem]]:
    """Read and check ``root/dataset.json`` (optional) the way :func:`load_dataset` does.

    Returns its content (``{}`` when absent or unusable) and its problems (``file`` set to
    ``dataset.json``): unreadable or malformed JSON, not an object, a ``name`` that is not a
    non-empty one-line string of at most 200 characters.
    """
    path = Path(root) / DATASET_INFO_NAME
    if not os.path.lexists(path):
        return {}, []
    try:
        info = read_json_object(path)
    except TasBenchError as exc:
        return {}, [Problem(0, "", exc.reason, file=DATASET_INFO_NAME)]
    problems = []
    if "name" in info:
        name = info["name"]
        if not isinstance(name, str):
            problems.append(Problem(0, "name", f"expected a string, got {type(name).__name__}",
                                    file=DATASET_INFO_NAME))
        elif not name.strip() or len(name) > 200 or _CONTROL_RE.search(name):
            problems.append(Problem(0, "name", f"{_short(name)} must be a non-empty one-line string "
                                               "of at most 200 characters", file=DATASET_INFO_NAME))
    return ({} if problems else info), problems


def load_dataset(root: str | Path, *, strict: bool = True) -> Dataset:
    """Load a dataset folder; with ``strict`` any manifest or dataset.json problem raises
    :class:`TasBenchError`."""
    root = Path(root)
    clips, problems = check_manifest(root)
    if problems and strict:
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (+{len(problems) - 5} more; run `tas-bench validate {root}`)" if len(problems) > 5 else ""
        raise TasBenchError(f"invalid manifest: {shown}{more}", path=root / MANIFEST_NAME)
    info, info_problems = check_dataset_info(root)
    if info_problems and strict:
        raise TasBenchError("; ".join(str(p) for p in info_problems), path=root / DATASET_INFO_NAME)
    return Dataset(root=root.resolve(), clips=clips, info=info)


def dataset_fingerprint(root: str | Path, clips: Iterable[Clip] | None = None) -> str:
    """sha256 over the manifest bytes and the sha256 of every audio file, in manifest order.

    Two folders with the same fingerprint hold the same clips, metadata and audio bytes.
    """
    root = Path(root)
    if clips is None:
        clips, _ = check_manifest(root)
    parts = [sha256_file(root / MANIFEST_NAME)]
    for clip in clips:
        p = safe_join(root, clip.audio, what="audio")
        parts.append(f"{clip.id}:{sha256_file(p) if p.is_file() else 'missing'}")
    return sha256_bytes("\n".join(parts).encode("utf-8"))


class FingerprintBuilder:
    """:func:`dataset_fingerprint` of a dataset being written, computed from the clips' audio
    hashes as they come and the manifest's sha256 at the end, without reading the files again.

    Memory is flat in the number of clips: the ``id:sha256`` parts are spooled to an anonymous
    temporary file (about 90 bytes a clip), removed when :meth:`digest` is called or the
    process ends.
    """

    def __init__(self) -> None:
        self._spool: Any = tempfile.TemporaryFile()
        self.count = 0

    def add(self, clip_id: str, audio_sha256: str) -> None:
        """Record the hex sha256 of the audio file of the next clip in manifest order."""
        self._spool.write(f"\n{clip_id}:{audio_sha256}".encode())
        self.count += 1

    def digest(self, manifest_sha256: str) -> str:
        """The dataset fingerprint, given the hex sha256 of the finished manifest file."""
        h = hashlib.sha256(manifest_sha256.encode("utf-8"))
        self._spool.seek(0)
        while chunk := self._spool.read(1 << 20):
            h.update(chunk)
        self._spool.close()
        return h.hexdigest()


def manifest_line(clip: Clip | dict[str, Any]) -> str:
    """The manifest line of one clip: compact, key-sorted JSON, no newline."""
    d = clip.to_dict() if isinstance(clip, Clip) else clip
    return json.dumps(d, sort_keys=True, ensure_ascii=False, allow_nan=False)


class ManifestWriter:
    """Streams clip records into a manifest file, published atomically when the block ends.

    ``with ManifestWriter(root) as w: w.add(record)`` writes each record's line to a temporary
    file beside ``root/name`` (a :func:`~tas_bench.runtime.fileio.atomic_path` name holding
    ``.tas-tmp.``) as soon as it is added, so memory does not grow with the number of clips:
    the writer keeps no record, only counts (:attr:`count`) and the bytes written
    (:attr:`bytes_written`). When the block ends normally the file is flushed, fsynced and
    renamed onto ``root/name``; on an exception it is removed and nothing is published. A
    process killed inside the block leaves only the temporary file, which no reader takes for a
    manifest and :func:`~tas_bench.runtime.fileio.sweep_orphans` removes. Bytes equal those of
    :func:`write_manifest` for the same records.
    """

    __slots__ = ("path", "count", "bytes_written", "_stack", "_file", "_hash")

    def __init__(self, root: str | Path, name: str = MANIFEST_NAME) -> None:
        self.path = Path(root) / name
        self.count = 0
        self.bytes_written = 0
        self._stack: contextlib.ExitStack | None = None
        self._file: Any = None
        self._hash = hashlib.sha256()

    @property
    def sha256(self) -> str:
        """Hex sha256 of the bytes written so far (the published file's, once closed)."""
        return self._hash.hexdigest()

    def __enter__(self) -> ManifestWriter:
        from tas_bench.runtime.fileio import atomic_path

        stack = contextlib.ExitStack()
        tmp = stack.enter_context(atomic_path(self.path))
        self._file = stack.enter_context(open(tmp, "wb"))  # closed before atomic_path renames
        self._stack = stack
        return self

    def add(self, clip: Clip | dict[str, Any]) -> None:
        """Append one clip's line (:func:`manifest_line`) to the temporary file."""
        self.add_line(manifest_line(clip))

    def add_line(self, line: str | bytes) -> None:
        """Append one already-serialised manifest line (no newline; merging shards copies
        their lines verbatim)."""
        if self._file is None:
            raise RuntimeError("ManifestWriter.add outside its with-block")
        data = (line.encode("utf-8") if isinstance(line, str) else bytes(line)).rstrip(b"\n")
        if b"\n" in data:
            raise ValueError("a manifest line holds a newline")
        self._file.write(data + b"\n")
        self._hash.update(data + b"\n")
        self.count += 1
        self.bytes_written += len(data) + 1

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        assert self._stack is not None
        if exc_type is None and self.count == 0:
            self._file.write(b"\n")  # what write_manifest([]) always wrote
            self._hash.update(b"\n")
        self._file = None
        stack, self._stack = self._stack, None
        return bool(stack.__exit__(exc_type, exc, tb))


def write_manifest(root: str | Path, clips: Iterable[Clip | dict[str, Any]]) -> Path:
    """Write ``root/manifest.jsonl`` atomically (one compact, key-sorted JSON object a line).

    ``clips`` is consumed one at a time (an iterator is never held whole), see
    :class:`ManifestWriter`.
    """
    with ManifestWriter(root) as w:
        for c in clips:
            w.add(c)
    return w.path
