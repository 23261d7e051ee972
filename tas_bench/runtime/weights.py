"""The local weights store: pretrained files tas-bench needs but never fetches on its own.

Folder: ``$TAS_BENCH_WEIGHTS`` if set, else ``~/.cache/tas-bench/weights``. One file per weight,
named by the weight's name (e.g. ``Cnn14_16k_mAP=0.438.pth``), plus ``registry.json``, which
records for each file its sha256, the file's identity when it was hashed (device, inode, size,
mtime and ctime in ns), when the hash was taken, and whether it is *custom* (not byte-identical
to the official file).

Which hash is used where:

* :func:`resolve_weight` — what evaluators use, so what goes into results files and cache keys
  — hashes the file's bytes once per process (memoised by path and that identity). A hash never
  comes from an earlier process's bookkeeping, so a file rewritten behind the store's back
  (same size, mtime put back with ``touch -d``/``os.utime``) cannot lend its old hash to a key.
* :func:`list_weights` re-uses the registry's hash only when device, inode, size, mtime *and*
  ctime all still match (ctime cannot be set back from user space: any rewrite or ``utime``
  moves it) and the file's ctime is more than :data:`RACY_NS` older than the moment it was
  hashed (a change within the same coarse filesystem-clock tick could otherwise keep every
  timestamp, the "racy" case git's index also guards against); otherwise it rehashes.
* :func:`verify_weights` always rehashes every file and also reports a file whose bytes
  changed since they were recorded (``changed since it was added``).

A weight is *official* when its sha256 equals the published one (or, for files where only the
torch.hub 8-hex-digit sha256 prefix is published, starts with it and has the published size).
Anything else — an unknown name, or a known name whose bytes differ — is *custom*: it is used,
but results record ``custom: true`` and its actual sha256.

Nothing here touches the network except :func:`download_weight` and
:func:`fetch_if_reachable`, which only run when a user asks for them (``tas-bench weights
download``; ``make demo`` asks for the official files with ``--all --if-reachable``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat as stat_mod
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import atomic_path, write_json_atomic

ENV_VAR = "TAS_BENCH_WEIGHTS"
REGISTRY = "registry.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+\-]{0,199}$")
_CHUNK = 1 << 20
#: A cached hash is trusted only when the file's ctime is this much older than the moment the
#: hash was taken (ns): a rewrite within one tick of the filesystem clock can keep all
#: timestamps, so an entry hashed that soon after a change is "racy" and rehashed.
RACY_NS = 2_000_000_000
#: Wall clock in ns used to stamp hashes (a module attribute so that tests can move it).
_clock_ns = time.time_ns
#: This process's hashes: (real path, device, inode, size, mtime_ns, ctime_ns) ->
#: (sha256, clock when hashing began).
_MEMO: dict[tuple[Any, ...], tuple[str, int]] = {}


class WeightsUnreachable(TasBenchError):
    """A download address could not be reached: no network, no DNS, connection refused or
    timed out (an HTTP error answer is not this: the server was reached)."""


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


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, words in ((stat_mod.S_ISDIR, "a directory"), (stat_mod.S_ISFIFO, "a FIFO (named pipe)"),
                        (stat_mod.S_ISSOCK, "a socket"), (stat_mod.S_ISCHR, "a character device"),
                        (stat_mod.S_ISBLK, "a block device")):
        if test(mode):
            return words
    return "not a regular file"


def _regular_stat(path: Path, what: str = "file") -> os.stat_result | None:
    """``os.stat`` of ``path`` (links followed; nothing is opened), ``None`` if nothing is there.

    Raises TasBenchError saying what ``path`` is when it exists but is not a regular file (a
    directory, a FIFO — which would block a reader —, a device ...) or is a dangling link.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise TasBenchError(f"{what} is a symbolic link to {os.readlink(path)}, which does not "
                                f"exist", path=path) from None
        return None
    except OSError as exc:
        raise TasBenchError(f"cannot read {what} ({exc.strerror})", path=path) from None
    if not stat_mod.S_ISREG(st.st_mode):
        raise TasBenchError(f"{what} is {_kind(st.st_mode)}, not a regular file; a weight must be "
                            f"a regular file", path=path)
    return st


def _identity(st: os.stat_result) -> dict[str, int]:
    """What must be unchanged for a recorded hash to still describe the file."""
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "ino": st.st_ino, "dev": st.st_dev}


def _memo_key(path: Path, st: os.stat_result) -> tuple[Any, ...]:
    return (os.path.realpath(path), *_identity(st).values())


def _settled(st: os.stat_result, hashed_at_ns: Any) -> bool:
    """Whether a hash taken at ``hashed_at_ns`` of a file with stat ``st`` is not racy."""
    return isinstance(hashed_at_ns, int) and st.st_ctime_ns < hashed_at_ns - RACY_NS


def _hash_file(path: Path, what: str = "file") -> tuple[str, os.stat_result, int]:
    """(sha256, stat after reading, clock in ns when reading began) of a regular file.

    The file is opened non-blocking and checked to be regular before any read, so a FIFO put
    in its place never blocks; a file that changes while it is read is an error.
    """
    started = _clock_ns()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise TasBenchError(f"{what} not found", path=path) from None
    except OSError as exc:
        raise TasBenchError(f"cannot read {what} ({exc.strerror})", path=path) from None
    with os.fdopen(fd, "rb") as f:
        before = os.fstat(f.fileno())
        if not stat_mod.S_ISREG(before.st_mode):
            raise TasBenchError(f"{what} is {_kind(before.st_mode)}, not a regular file", path=path)
        h = hashlib.sha256()
        while chunk := f.read(_CHUNK):
            h.update(chunk)
        after = os.fstat(f.fileno())
    if _identity(before) != _identity(after):
        raise TasBenchError(f"{what} changed while it was being hashed; try again", path=path)
    digest = h.hexdigest()
    _MEMO[_memo_key(path, after)] = (digest, started)
    return digest, after, started


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


def _record(entry: dict[str, Any], digest: str, st: os.stat_result, hashed_at: int) -> dict[str, Any]:
    """``entry`` updated with a new hash; ``added_sha256`` keeps the hash the file had when it
    was installed (or first seen), which `verify` compares against."""
    return {**entry, "sha256": digest, **_identity(st), "hashed_at_ns": hashed_at,
            "added_sha256": entry.get("added_sha256", entry.get("sha256", digest))}


def _hash_cached(name: str, path: Path, registry: dict[str, dict[str, Any]], *,
                 trust_registry: bool = True, force: bool = False) -> tuple[str, int, bool]:
    """(sha256, size in bytes, registry_changed) of the store file ``path``.

    Re-uses, unless ``force``: this process's hash of the same file (same path and identity),
    then, with ``trust_registry``, the registry's hash when the identity recorded with it still
    matches; a racy hash (see :data:`RACY_NS`) is never re-used. Otherwise rehashes and updates
    ``registry[name]``.
    """
    st = _regular_stat(path, f"weight {name}")
    if st is None:
        raise TasBenchError(missing_message(name, path.parent))
    entry = registry.get(name, {})
    if not force:
        memo = _MEMO.get(_memo_key(path, st))
        if memo is not None and _settled(st, memo[1]):
            return memo[0], st.st_size, False
        if (trust_registry and isinstance(entry.get("sha256"), str)
                and all(entry.get(k) == v for k, v in _identity(st).items())
                and _settled(st, entry.get("hashed_at_ns"))):
            return entry["sha256"], st.st_size, False
    digest, after, started = _hash_file(path, f"weight {name}")
    # write the registry only when what it says changes (not for every process's rehash)
    if (entry.get("sha256") == digest and all(entry.get(k) == v for k, v in _identity(after).items())
            and _settled(after, entry.get("hashed_at_ns"))):
        return digest, after.st_size, False
    registry[name] = _record(entry, digest, after, started)
    return digest, after.st_size, True


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
    """The installed weight ``name`` with the sha256 of its bytes as they are now.

    The file is hashed once per process (again if its device, inode, size, mtime or ctime
    change); the registry's cached hash is never used here, since this is the hash results and
    cache keys record. Raises TasBenchError naming the file, the folder and the command that
    installs it when the file is missing, or saying what it is when it is not a regular file.
    """
    check_name(name)
    folder = _root(root)
    path = folder / name
    if _regular_stat(path, f"weight {name}") is None:
        raise TasBenchError(missing_message(name, folder))
    registry = _read_registry(folder)
    digest, size, changed = _hash_cached(name, path, registry, trust_registry=False)
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
        try:
            present = _regular_stat(path, f"weight {name}") is not None
        except TasBenchError as exc:
            row = _status(name, path, None, None)
            row.note = exc.reason
            out.append(row)
            continue
        if present:
            digest, size, ch = _hash_cached(name, path, registry)
            row = _status(name, path, digest, size)
            if ch:
                changed = True
                registry[name]["custom"] = row.custom
            out.append(row)
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
    use (see the module notes). ``source`` must be a regular file: a directory, a FIFO (never
    opened) or a device is refused, saying what it is.
    """
    check_name(name)
    src = Path(source).expanduser()
    if _regular_stat(src) is None:
        raise TasBenchError("file not found", path=src)
    folder = _root(root)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / name
    digest, src_st, _ = _hash_file(src)
    size = src_st.st_size
    registry = _read_registry(folder)
    if os.path.lexists(dest):
        try:
            dest_st = _regular_stat(dest, f"weight {name} in the store")
        except TasBenchError as exc:
            if not (force and os.path.islink(dest)):  # a dangling link is replaced with --force
                raise TasBenchError(f"{exc.reason}; remove it first", path=dest) from None
            dest_st = None
        if dest_st is None or dest.resolve() == src.resolve():
            pass
        elif not force and _hash_file(dest, f"weight {name}")[0] != digest:
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
    installed, st, hashed_at = _hash_file(dest, f"weight {name}")
    if installed != digest:  # the source changed while copying or linking
        dest.unlink()
        raise TasBenchError("file changed while it was being copied; try again", path=src)
    status = _status(name, dest, digest, size)
    registry[name] = _record({}, digest, st, hashed_at) | {"custom": status.custom,
                                                            "source": str(src.resolve())}
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
        if _regular_stat(path, f"weight {n}") is None:
            if name is not None:
                raise TasBenchError(missing_message(n, folder))
            continue
        entry = registry.get(n, {})
        before = entry.get("added_sha256", entry.get("sha256"))
        digest, size, _ = _hash_cached(n, path, registry, force=True)
        st = _status(n, path, digest, size)
        if before is not None and before != digest:
            st.note = (st.note + "; " if st.note else "") + (
                f"changed since it was added (recorded sha256 {before})")
        registry[n]["custom"] = st.custom
        out.append(st)
    if out:
        _write_registry(folder, registry)
    return out


_URL_SCHEMES = ("http", "https")


def _check_url(url: str, name: str) -> None:
    """Refuse anything but an http(s) address with a host (``file://``, ``ftp://``, ``data:``).

    A local file is installed with ``weights add``, which says what it copies; a download that
    silently reads the local disk would hide where the bytes came from.
    """
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme.lower() not in _URL_SCHEMES or not parts.netloc:
        raise TasBenchError(
            f"{url!r} is not an http:// or https:// address; only those are downloaded (to "
            f"install a file you have, use `tas-bench weights add {name} PATH`)", field="url")


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to http(s) (urllib would also follow one to ``ftp://``)."""

    def http_error_302(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                       headers: Any) -> Any:
        location = headers.get("location") or headers.get("uri")
        if location:
            target = urllib.parse.urljoin(req.full_url, location)
            if urllib.parse.urlsplit(target).scheme.lower() not in _URL_SCHEMES:
                fp.close()
                raise TasBenchError(f"{req.full_url} redirects to {target!r}, which is not an "
                                    f"http:// or https:// address; nothing was downloaded",
                                    field="url")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _http_opener() -> urllib.request.OpenerDirector:
    """An opener that speaks only http(s): no file:, ftp: or data: handler is installed."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(),
                    urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), _HttpOnlyRedirects(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def download_weight(name: str, url: str | None = None, *, root: str | os.PathLike[str] | None = None,
                    timeout: float = 30.0, connect_timeout: float | None = None,
                    progress: Callable[[int, int | None], None] | None = None) -> WeightStatus:
    """Download ``name`` into the store (only when the user asks), resumable, hash-checked.

    Bytes go to ``NAME.part`` in the store folder; an interrupted download keeps it and the next
    call resumes with an HTTP Range request (a server that ignores Range restarts it). When
    complete, the sha256 (and size) are checked against the published values before the atomic
    rename (also when ``url`` is a mirror); on a mismatch the ``.part`` file is deleted (resuming
    a corrupt file cannot fix it) and nothing is installed. Unknown names need ``url`` and are
    registered as custom with the hash of what was downloaded. Only ``http://`` and ``https://``
    addresses are fetched (also after redirects); a local file is installed with
    :func:`add_weight`.

    ``timeout`` (s) bounds each network read; ``connect_timeout`` (s, default ``timeout``) the
    connection and the server's first answer. An address that cannot be reached raises
    :class:`WeightsUnreachable`.
    """
    check_name(name)
    known = KNOWN.get(name)
    if url is None:
        if known is None:
            raise TasBenchError(f"{name} is not a known weight: give its address with --url",
                                field="url")
        url = known.url
    _check_url(url, name)
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
        resp = _http_opener().open(request, timeout=timeout if connect_timeout is None
                                   else connect_timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the .part is complete
            resp = None
        else:
            raise TasBenchError(f"download of {name} failed: HTTP {exc.code} {exc.reason} from "
                                f"{url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeightsUnreachable(
            f"cannot reach {url} ({reason}); download {name} on a machine with network access "
            f"and install it with `tas-bench weights add {name} PATH`") from None
    expected_total: int | None = None
    if resp is not None and connect_timeout is not None:
        _set_read_timeout(resp, timeout)
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
    installed, st, hashed_at = _hash_file(dest, f"weight {name}")
    if installed != digest:
        raise TasBenchError(f"{name} changed while it was being installed; download it again",
                            path=dest)
    status = _status(name, dest, digest, size)
    registry[name] = _record({}, digest, st, hashed_at) | {"custom": status.custom,
                                                            "source": url}
    _write_registry(folder, registry)
    return status


def _set_read_timeout(resp: Any, timeout: float) -> None:
    """Give the open response's socket the read timeout ``timeout`` (s) in place of the
    connect timeout it was opened with (where the socket can be reached; else it keeps it)."""
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)


@dataclass
class FetchOutcome:
    """What :func:`fetch_if_reachable` did for one weight: ``outcome`` is ``fetched``,
    ``already present``, ``custom`` (a file of that name with other bytes is kept), ``not
    reachable`` or ``failed`` (reached, but e.g. an HTTP error or a sha256 mismatch)."""

    name: str
    outcome: str
    detail: str = ""
    status: WeightStatus | None = None

    def line(self) -> str:
        """One line for the user: ``NAME: OUTCOME (detail)``."""
        return f"{self.name}: {self.outcome}" + (f" ({self.detail})" if self.detail else "")


def fetch_if_reachable(names: list[str] | None = None, *, root: str | os.PathLike[str] | None = None,
                       connect_timeout: float = 5.0, timeout: float = 30.0,
                       report: Callable[[FetchOutcome], None] | None = None) -> list[FetchOutcome]:
    """Fetch each official weight in ``names`` (default: every known one) that the store lacks,
    from its published address, as :func:`download_weight` does (resumable, size and sha256
    checked before it is installed); go on without it when the address cannot be reached.

    A file already in the store is left alone (``already present`` when official, ``custom``
    otherwise). ``connect_timeout`` (s) bounds each connection attempt; once a host could not be
    reached, its other files are not tried again. ``report`` gets each outcome as it happens.
    Never raises for a network problem: the outcomes say what happened.
    """
    todo = list(KNOWN) if names is None else list(dict.fromkeys(names))
    for name in todo:
        check_name(name)
        if name not in KNOWN:
            raise TasBenchError(f"{name} is not a known weight (known: {', '.join(KNOWN)}); "
                                f"fetch another file with `tas-bench weights download {name} "
                                f"--url URL`", field="name")
    folder = _root(root)
    present = {r.name: r for r in list_weights(folder) if r.status != "missing"}
    dead_hosts: dict[str, str] = {}
    out = []
    for name in todo:
        known = KNOWN[name]
        host = urllib.parse.urlsplit(known.url).netloc
        if name in present:
            row = present[name]
            result = FetchOutcome(name, "already present" if not row.custom else "custom",
                                  f"sha256 {row.sha256}" if not row.custom
                                  else f"{row.note}; kept, not replaced", row)
        elif host in dead_hosts:
            result = FetchOutcome(name, "not reachable",
                                  f"{host}: not tried again, it could not be reached for "
                                  f"{dead_hosts[host]}")
        else:
            try:
                st = download_weight(name, root=folder, timeout=timeout,
                                     connect_timeout=connect_timeout)
                result = FetchOutcome(name, "fetched", f"sha256 {st.sha256}", st)
            except WeightsUnreachable as exc:
                dead_hosts[host] = name
                result = FetchOutcome(name, "not reachable", f"{host}: {exc.reason.split('; ')[0]}")
            except TasBenchError as exc:
                result = FetchOutcome(name, "failed", exc.reason)
        if report is not None:
            report(result)
        out.append(result)
    return out
