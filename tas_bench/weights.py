"""The local weights store: pretrained files tas-bench needs but never fetches on its own.

Folder: ``$TAS_BENCH_WEIGHTS`` if set, else ``~/.cache/tas-bench/weights``. One file per weight,
named by the weight's name (e.g. ``Cnn14_16k_mAP=0.438.pth``), plus ``registry.json``, which
records for each file its sha256, size, mtime and whether it is *custom* (not byte-identical to
the official file). Hashes are cached by (size, mtime) and recomputed when either changes;
``verify`` always recomputes.

A weight is *official* when its sha256 equals the published one (or, for files where only the
torch.hub 8-hex-digit sha256 prefix is published, starts with it and has the published size).
Anything else — an unknown name, or a known name whose bytes differ — is *custom*: it is used,
but results record ``custom: true`` and its actual sha256.

Nothing here touches the network except :func:`download_weight`, which only runs when a user
asks for it (``tas-bench weights download``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tas_bench.errors import TasBenchError
from tas_bench.fileio import atomic_path, sha256_file, write_json_atomic

ENV_VAR = "TAS_BENCH_WEIGHTS"
REGISTRY = "registry.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+\-]{0,199}$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class KnownWeight:
    """A published weights file: where it comes from and how to recognise it.

    ``sha256`` is the full published hash when one is known; ``sha256_prefix`` the part that is
    known otherwise (torch.hub embeds the first 8 hex digits of the sha256 in file names).
    ``verified`` says where the recorded values come from.
    """

    name: str
    url: str
    size: int | None
    sha256: str | None
    sha256_prefix: str | None
    description: str
    verified: str

    def matches(self, sha256: str, size: int) -> bool:
        """Whether a file with ``sha256`` and ``size`` bytes is this official file."""
        if self.sha256 is not None:
            return sha256 == self.sha256
        if self.size is not None and size != self.size:
            return False
        return self.sha256_prefix is not None and sha256.startswith(self.sha256_prefix)


KNOWN: dict[str, KnownWeight] = {
    w.name: w
    for w in (
        KnownWeight(
            name="Cnn14_16k_mAP=0.438.pth",
            url="https://zenodo.org/records/3987831/files/Cnn14_16k_mAP%3D0.438.pth?download=1",
            size=358_668_570,
            sha256="e2ee543a27919542c2ea03eabaa70b24dcd4e6c8e05621de6b67a94e4c5058e6",
            sha256_prefix=None,
            description="PANNs Cnn14, 16 kHz AudioSet tagger (FD, KL, IS; default)",
            verified="sha256 and size as pinned by several independent public projects; one "
                     "states that its copy matched Zenodo's md5 362fc5ff18f1d6ad2f6d464b45893f2c; "
                     "not checked against the file by tas-bench (no network)",
        ),
        KnownWeight(
            name="Cnn14_mAP=0.431.pth",
            url="https://zenodo.org/records/3987831/files/Cnn14_mAP%3D0.431.pth?download=1",
            size=327_428_481,
            sha256="0dc499e40e9761ef5ea061ffc77697697f277f6a960894903df3ada000e34b31",
            sha256_prefix=None,
            description="PANNs Cnn14, 32 kHz AudioSet tagger (FD, KL, IS with panns_rate=32000)",
            verified="sha256 and size as pinned by several independent public projects; not "
                     "checked against the file by tas-bench (no network)",
        ),
        KnownWeight(
            name="vggish-10086976.pth",
            url="https://github.com/harritaylor/torchvggish/releases/download/v0.1/"
                "vggish-10086976.pth",
            size=288_567_937,
            sha256=None,
            sha256_prefix="10086976",
            description="VGGish (harritaylor/torchvggish v0.1) for FAD",
            verified="only the torch.hub sha256 prefix 10086976 (part of the file name) and the "
                     "size (one public project) are known; the full sha256 of the file in use "
                     "is recorded in results",
        ),
    )
}


@dataclass
class WeightStatus:
    """State of one weight in the store."""

    name: str
    path: str
    status: str  # "present" (official), "custom", "missing"
    sha256: str | None
    size: int | None
    custom: bool
    known: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def weights_dir() -> Path:
    """The store folder (``$TAS_BENCH_WEIGHTS`` or ``~/.cache/tas-bench/weights``)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "tas-bench" / "weights"


def _root(root: str | os.PathLike[str] | None) -> Path:
    return Path(root).expanduser() if root is not None else weights_dir()


def check_name(name: str) -> str:
    """``name`` if it is a valid weight name (a plain file name), else a TasBenchError."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise TasBenchError(
            f"invalid weight name {name!r}: use a plain file name (letters, digits, . _ = + -)",
            field="name")
    return name


def _read_registry(root: Path) -> dict[str, dict[str, Any]]:
    path = root / REGISTRY
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TasBenchError(f"malformed weights registry ({exc}); delete it to rebuild it",
                            path=path) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise TasBenchError("malformed weights registry (expected an object of objects); delete "
                            "it to rebuild it", path=path)
    return data


def _files_in(folder: Path) -> list[str]:
    """Weight files lying in the store folder (not the registry, partial or hidden files)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and p.name != REGISTRY and not p.name.endswith(".part")
                  and _NAME_RE.match(p.name))


def _write_registry(root: Path, data: dict[str, dict[str, Any]]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / REGISTRY, data)


def _hash_cached(root: Path, name: str, path: Path, registry: dict[str, dict[str, Any]],
                 force: bool = False) -> tuple[str, int, bool]:
    """(sha256, size, registry_changed) for the file, using the cached hash when still valid."""
    st = path.stat()
    entry = registry.get(name, {})
    if (not force and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns
            and isinstance(entry.get("sha256"), str)):
        return entry["sha256"], st.st_size, False
    digest = sha256_file(path)
    registry[name] = {**entry, "sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return digest, st.st_size, True


def _status(name: str, path: Path, digest: str | None, size: int | None) -> WeightStatus:
    known = KNOWN.get(name)
    if digest is None:
        return WeightStatus(name, str(path), "missing", None, None, known is None,
                            known is not None)
    if known is None:
        return WeightStatus(name, str(path), "custom", digest, size, True, False,
                            "not a known official file")
    if known.matches(digest, size or 0):
        return WeightStatus(name, str(path), "present", digest, size, False, True)
    return WeightStatus(name, str(path), "custom", digest, size, True, True,
                        f"differs from the official {name} (expected sha256 "
                        f"{known.sha256 or known.sha256_prefix + '...'}"
                        f"{'' if known.size is None else f', {known.size} bytes'})")


def missing_message(name: str, root: str | os.PathLike[str] | None = None) -> str:
    """What to say when ``name`` is not in the store: the file, the folder and the fix."""
    folder = _root(root)
    known = KNOWN.get(name)
    fix = f"`tas-bench weights add {name} /path/to/{name}`"
    if known is not None:
        fix += f" or `tas-bench weights download {name}` (from {known.url})"
    return (f"weights file {name} not found in {folder} (set ${ENV_VAR} to use another folder); "
            f"install it with {fix}")


def resolve_weight(name: str, root: str | os.PathLike[str] | None = None) -> WeightStatus:
    """The installed weight ``name`` (hash checked, cached by size and mtime).

    Raises TasBenchError naming the file, the folder and the command that installs it when the
    file is missing.
    """
    check_name(name)
    folder = _root(root)
    path = folder / name
    if not path.is_file():
        raise TasBenchError(missing_message(name, folder))
    registry = _read_registry(folder)
    digest, size, changed = _hash_cached(folder, name, path, registry)
    status = _status(name, path, digest, size)
    if changed:
        registry[name]["custom"] = status.custom
        with contextlib.suppress(OSError):  # a read-only store still works, it just rehashes
            _write_registry(folder, registry)
    return status


def list_weights(root: str | os.PathLike[str] | None = None) -> list[WeightStatus]:
    """Every known weight (present or missing) and every other file registered in the store."""
    folder = _root(root)
    registry = _read_registry(folder) if folder.is_dir() else {}
    names = list(dict.fromkeys(list(KNOWN) + sorted(set(registry) | set(_files_in(folder)))))
    out = []
    changed = False
    for name in names:
        path = folder / name
        if path.is_file():
            digest, size, ch = _hash_cached(folder, name, path, registry)
            changed |= ch
            out.append(_status(name, path, digest, size))
        else:
            out.append(_status(name, path, None, None))
    if changed:
        with contextlib.suppress(OSError):
            _write_registry(folder, registry)
    return out


def add_weight(name: str, source: str | os.PathLike[str], *, force: bool = False,
               link: bool = False, root: str | os.PathLike[str] | None = None,
               warn: Callable[[str], None] | None = None) -> WeightStatus:
    """Copy (or, with ``link``, symlink) the user's file ``source`` into the store as ``name``
    and record its sha256.

    An unknown ``name`` registers a custom weight; a known name whose bytes differ from the
    official file is stored but marked custom (``warn`` gets a message). An existing different
    file is only replaced with ``force``. A linked file that changes later is rehashed on next
    use (the cached hash is keyed by size and mtime).
    """
    check_name(name)
    src = Path(source).expanduser()
    if not src.is_file():
        raise TasBenchError("file not found", path=src)
    folder = _root(root)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / name
    digest = sha256_file(src)
    size = src.stat().st_size
    registry = _read_registry(folder)
    if dest.exists():
        if dest.resolve() == src.resolve():
            pass
        elif not force and sha256_file(dest) != digest:
            raise TasBenchError(f"{name} is already in the store with different content",
                                path=dest, hint="add --force to replace it")
    if link:
        if not (dest.exists() and dest.resolve() == src.resolve()):
            tmp_link = folder / f".{name}.link"
            with contextlib.suppress(FileNotFoundError):
                tmp_link.unlink()
            tmp_link.symlink_to(src.resolve())
            os.replace(tmp_link, dest)
    elif dest.resolve() != src.resolve():
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
        if sha256_file(dest) != digest:  # the source changed while copying
            dest.unlink()
            raise TasBenchError("file changed while it was being copied; try again", path=src)
    st = dest.stat()
    status = _status(name, dest, digest, size)
    registry[name] = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                      "custom": status.custom, "source": str(src.resolve())}
    _write_registry(folder, registry)
    if status.custom and status.known and warn is not None:
        warn(f"{name}: {status.note}; stored as a CUSTOM weight — results will say so")
    return status


def verify_weights(name: str | None = None,
                   root: str | os.PathLike[str] | None = None) -> list[WeightStatus]:
    """Recompute the sha256 of ``name`` (or of every file in the store) and compare.

    A file whose hash differs from the one recorded when it was added gets the note
    ``changed since it was added``.
    """
    folder = _root(root)
    registry = _read_registry(folder) if folder.is_dir() else {}
    if name is not None:
        check_name(name)
        names = [name]
    else:
        names = [n for n in list(KNOWN) + sorted(set(registry) | set(_files_in(folder)))
                 if (folder / n).is_file()]
        names = list(dict.fromkeys(names))
    out = []
    for n in names:
        path = folder / n
        if not path.is_file():
            if name is not None:
                raise TasBenchError(missing_message(n, folder))
            continue
        before = registry.get(n, {}).get("sha256")
        digest, size, _ = _hash_cached(folder, n, path, registry, force=True)
        st = _status(n, path, digest, size)
        if before is not None and before != digest:
            st.note = (st.note + "; " if st.note else "") + (
                f"changed since it was added (recorded sha256 {before})")
        registry[n]["custom"] = st.custom
        out.append(st)
    if out:
        _write_registry(folder, registry)
    return out


def download_weight(name: str, url: str | None = None, *, root: str | os.PathLike[str] | None = None,
                    timeout: float = 30.0,
                    progress: Callable[[int, int | None], None] | None = None) -> WeightStatus:
    """Download ``name`` into the store (only when the user asks), resumable, hash-checked.

    Bytes go to ``NAME.part`` in the store folder; an interrupted download keeps it and the next
    call resumes with an HTTP Range request (a server that ignores Range restarts it). When
    complete, the sha256 (and size) are checked against the published values before the atomic
    rename (also when ``url`` is a mirror); on a mismatch the ``.part`` file is deleted (resuming
    a corrupt file cannot fix it) and nothing is installed. Unknown names need ``url`` and are
    registered as custom with the hash of what was downloaded.
    """
    check_name(name)
    known = KNOWN.get(name)
    if url is None:
        if known is None:
            raise TasBenchError(f"{name} is not a known weight: give its address with --url",
                                field="url")
        url = known.url
    folder = _root(root)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / name
    part = folder / f"{name}.part"
    h = hashlib.sha256()
    have = 0
    if part.exists():
        if known is not None and known.size is not None and part.stat().st_size > known.size:
            part.unlink()
        else:
            with open(part, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
            have = part.stat().st_size
    request = urllib.request.Request(url, headers={"User-Agent": "tas-bench"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - user-given URL
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the .part is complete
            resp = None
        else:
            raise TasBenchError(f"download of {name} failed: HTTP {exc.code} {exc.reason} from "
                                f"{url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TasBenchError(
            f"cannot reach {url} ({reason}); download {name} on a machine with network access "
            f"and install it with `tas-bench weights add {name} PATH`") from None
    expected_total: int | None = None
    if resp is not None:
        with resp:
            if have and resp.status != 206:  # server ignored the Range header: start over
                h = hashlib.sha256()
                have = 0
                mode = "wb"
            else:
                mode = "ab" if have else "wb"
            length = resp.headers.get("Content-Length")
            expected_total = have + int(length) if length is not None else None
            got = have
            try:
                with open(part, mode) as f:
                    while True:
                        chunk = resp.read(_CHUNK)
                        if not chunk:
                            break
                        f.write(chunk)
                        h.update(chunk)
                        got += len(chunk)
                        if progress is not None:
                            progress(got, expected_total)
            except (OSError, urllib.error.URLError, ConnectionError) as exc:
                raise TasBenchError(
                    f"download of {name} interrupted after {got} bytes ({exc}); run the same "
                    f"command again to resume from {part}") from None
            except Exception as exc:  # http.client.IncompleteRead and friends
                if type(exc).__module__.startswith("http"):
                    raise TasBenchError(
                        f"download of {name} interrupted after {got} bytes ({type(exc).__name__}); "
                        f"run the same command again to resume from {part}") from None
                raise
            if expected_total is not None and got < expected_total:
                raise TasBenchError(
                    f"download of {name} interrupted after {got} of {expected_total} bytes; run "
                    f"the same command again to resume from {part}")
    digest = h.hexdigest()
    size = part.stat().st_size
    if known is not None and not known.matches(digest, size):
        part.unlink()
        raise TasBenchError(
            f"downloaded {name} does not match the published file (sha256 {digest}, {size} "
            f"bytes; expected {known.sha256 or known.sha256_prefix + '...'}"
            f"{'' if known.size is None else f', {known.size} bytes'}); nothing was installed")
    os.replace(part, dest)
    registry = _read_registry(folder)
    st = dest.stat()
    status = _status(name, dest, digest, size)
    registry[name] = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                      "custom": status.custom, "source": url}
    _write_registry(folder, registry)
    return status
