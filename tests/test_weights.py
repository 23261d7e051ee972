"""The local weights store and ``tas-bench weights``; downloads use a local HTTP server only."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tas_bench.pipeline.cli import main as cli_main
from tas_bench.pipeline.commands import weights as cmd
from tas_bench.runtime import weights as W
from tas_bench.runtime.errors import TasBenchError

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "store"
    monkeypatch.setenv(W.ENV_VAR, str(root))
    return root


def _known(name: str, url: str, data: bytes = PAYLOAD, prefix_only: bool = False) -> W.KnownWeight:
    digest = hashlib.sha256(data).hexdigest()
    return W.KnownWeight(name=name, url=url, size=len(data),
                         sha256=None if prefix_only else digest,
                         sha256_prefix=digest[:8] if prefix_only else None,
                         description="test", verified="test")


def test_weights_dir_env_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(W.ENV_VAR, str(tmp_path / "x"))
    assert W.weights_dir() == tmp_path / "x"
    monkeypatch.delenv(W.ENV_VAR)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert W.weights_dir() == tmp_path / ".cache" / "tas-bench" / "weights"


def test_known_table_is_complete() -> None:
    assert {"Cnn14_16k_mAP=0.438.pth", "Cnn14_mAP=0.431.pth", "vggish-10086976.pth"} <= set(W.KNOWN)
    for name, k in W.KNOWN.items():
        assert k.name == name and W.check_name(name) == name
        assert k.url.startswith("https://") and k.description and k.verified
        assert k.size is None or (type(k.size) is int and k.size > 0)
        # a full hash is 64 lower-case hex digits (the form hashlib and `weights list` print);
        # a prefix is a non-empty lower-case hex string shorter than that; at least one is known
        assert k.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", k.sha256), name
        assert k.sha256_prefix is None or re.fullmatch(r"[0-9a-f]{1,63}", k.sha256_prefix), name
        assert k.sha256 is not None or k.sha256_prefix is not None, name
        if k.sha256 is None:
            assert k.size is not None, name  # a prefix alone is too weak: the size is checked too
        if k.sha256 is not None and k.sha256_prefix is not None:
            assert k.sha256.startswith(k.sha256_prefix)
    assert W.KNOWN["vggish-10086976.pth"].sha256_prefix == "10086976"
    assert W.KNOWN["Cnn14_16k_mAP=0.438.pth"].size == 358_668_570


def test_list_empty_store(store: Path) -> None:
    rows = W.list_weights()
    assert [r.name for r in rows] == list(W.KNOWN)
    assert all(r.status == "missing" and r.sha256 is None for r in rows)


def test_missing_message_names_file_folder_and_command(store: Path) -> None:
    with pytest.raises(TasBenchError) as e:
        W.resolve_weight("Cnn14_16k_mAP=0.438.pth")
    msg = str(e.value)
    assert "Cnn14_16k_mAP=0.438.pth" in msg and str(store) in msg
    assert "tas-bench weights add Cnn14_16k_mAP=0.438.pth" in msg
    assert "tas-bench weights download Cnn14_16k_mAP=0.438.pth" in msg
    with pytest.raises(TasBenchError, match="tas-bench weights add mine.pth"):
        W.resolve_weight("mine.pth")


@pytest.mark.parametrize("bad", ["", "../x.pth", "a/b.pth", ".hidden", "x..y", "a b"])
def test_invalid_names(store: Path, tmp_path: Path, bad: str) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(b"x")
    with pytest.raises(TasBenchError, match="invalid weight name"):
        W.add_weight(bad, src)


def test_add_custom_and_resolve(store: Path, tmp_path: Path) -> None:
    src = tmp_path / "my.bin"
    src.write_bytes(PAYLOAD)
    st = W.add_weight("my_model.safetensors", src)
    assert st.status == "custom" and st.custom and not st.known
    assert st.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert (store / "my_model.safetensors").read_bytes() == PAYLOAD
    again = W.resolve_weight("my_model.safetensors")
    assert again.sha256 == st.sha256 and again.custom
    assert "my_model.safetensors" in [r.name for r in W.list_weights()]


def test_add_known_with_other_content_is_custom_with_warning(store: Path, tmp_path: Path) -> None:
    src = tmp_path / "fake.pth"
    src.write_bytes(b"not the real checkpoint")
    warnings: list[str] = []
    st = W.add_weight("Cnn14_16k_mAP=0.438.pth", src, warn=warnings.append)
    assert st.custom and st.known and st.status == "custom"
    assert warnings and "CUSTOM" in warnings[0]
    assert W.resolve_weight("Cnn14_16k_mAP=0.438.pth").custom


def test_add_known_official(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(W.KNOWN, "official.pth", _known("official.pth", "http://x"))
    monkeypatch.setitem(W.KNOWN, "prefix.pth", _known("prefix.pth", "http://x", prefix_only=True))
    src = tmp_path / "o.pth"
    src.write_bytes(PAYLOAD)
    assert W.add_weight("official.pth", src).status == "present"
    st = W.add_weight("prefix.pth", src)
    assert st.status == "present" and not st.custom
    # a prefix-only entry also checks the size
    src.write_bytes(PAYLOAD + b"!")
    assert W.add_weight("prefix.pth", src, force=True).custom


def test_add_refuses_to_overwrite_without_force(store: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"aaa")
    b.write_bytes(b"bbb")
    W.add_weight("w.bin", a)
    W.add_weight("w.bin", a)  # same content: fine
    with pytest.raises(TasBenchError, match="--force"):
        W.add_weight("w.bin", b)
    assert W.add_weight("w.bin", b, force=True).sha256 == hashlib.sha256(b"bbb").hexdigest()
    with pytest.raises(TasBenchError, match="file not found"):
        W.add_weight("w.bin", tmp_path / "nope")


def _count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = W._hash_file
    monkeypatch.setattr(W, "_hash_file", lambda p, *a: calls.append(p) or real(p, *a))
    return calls


def _later_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash as if 10 s after the files were written (they are then not "racy")."""
    monkeypatch.setattr(W, "_clock_ns", lambda: time.time_ns() + 10 * 10**9)


def test_file_dropped_in_folder_and_hash_cache(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(W.KNOWN, "official.pth", _known("official.pth", "http://x"))
    store.mkdir(parents=True)
    (store / "official.pth").write_bytes(PAYLOAD)  # no `add`: still recognised
    assert W.resolve_weight("official.pth").status == "present"
    calls = _count_hashes(monkeypatch)
    W.resolve_weight("official.pth")
    assert calls  # hashed within RACY_NS of its last change: not trusted, hashed again
    _later_clock(monkeypatch)
    W.resolve_weight("official.pth")
    calls.clear()
    W.resolve_weight("official.pth")
    W.list_weights()
    assert calls == []  # once per process
    W._MEMO.clear()  # a new process: `list` uses the registry, `resolve` (results, keys) rehashes
    W.list_weights()
    assert calls == []
    W.resolve_weight("official.pth")
    assert calls == [store / "official.pth"]
    monkeypatch.setattr(W, "_clock_ns", time.time_ns)
    W._MEMO.clear()  # stamps from the moved clock would be wrong now
    calls.clear()
    (store / "official.pth").write_bytes(PAYLOAD[:-1] + b"\x00")
    st = W.resolve_weight("official.pth")
    assert calls and st.custom  # rehashed after the change


def test_rewrite_with_same_size_and_mtime_is_rehashed(store: Path) -> None:
    """A file rewritten in place with the same size whose mtime is put back (``touch -d``,
    ``os.utime``) must not keep its old hash: neither in this process nor in a later one, in
    `resolve` (what results and cache keys record) nor in `list`."""
    store.mkdir(parents=True)
    f = store / "w.bin"
    f.write_bytes(PAYLOAD)
    old = hashlib.sha256(PAYLOAD).hexdigest()
    assert W.resolve_weight("w.bin").sha256 == old
    assert {r.name: r.sha256 for r in W.list_weights()}["w.bin"] == old
    before = f.stat()
    other = bytes(reversed(PAYLOAD))
    with open(f, "r+b") as fh:  # in place: same inode
        fh.write(other)
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = f.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns,
                                                                before.st_ino)
    new = hashlib.sha256(other).hexdigest()
    for _ in ("this process", "a later process"):
        assert W.resolve_weight("w.bin").sha256 == new
        assert {r.name: r.sha256 for r in W.list_weights()}["w.bin"] == new
        W._MEMO.clear()


@pytest.mark.parametrize("field", ["size", "mtime_ns", "ctime_ns", "ino", "dev", "racy"])
def test_registry_hash_is_reused_only_for_the_same_file(store: Path, field: str) -> None:
    """`list` takes the registry's hash only while device, inode, size, mtime and ctime all
    match and the file had settled when it was hashed; a forged hash shows which was used."""
    store.mkdir(parents=True)
    (store / "w.bin").write_bytes(PAYLOAD)
    W.list_weights()
    reg = json.loads((store / W.REGISTRY).read_text())
    st = (store / "w.bin").stat()
    assert {k: reg["w.bin"][k] for k in ("size", "mtime_ns", "ctime_ns", "ino", "dev")} == {
        "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino, "dev": st.st_dev}
    forged = "0" * 64
    reg["w.bin"]["sha256"] = forged
    reg["w.bin"]["hashed_at_ns"] = st.st_ctime_ns + W.RACY_NS + 10**9  # settled
    (store / W.REGISTRY).write_text(json.dumps(reg))
    W._MEMO.clear()
    assert {r.name: r.sha256 for r in W.list_weights()}["w.bin"] == forged  # the cache is used
    reg["w.bin"]["sha256"] = forged
    if field == "racy":
        reg["w.bin"]["hashed_at_ns"] = st.st_ctime_ns + W.RACY_NS // 2
    else:
        reg["w.bin"][field] += 1
    (store / W.REGISTRY).write_text(json.dumps(reg))
    W._MEMO.clear()
    assert {r.name: r.sha256 for r in W.list_weights()}["w.bin"] == hashlib.sha256(PAYLOAD).hexdigest()


def test_verify_reports_changes(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(W.KNOWN, "official.pth", _known("official.pth", "http://x"))
    src = tmp_path / "o.pth"
    src.write_bytes(PAYLOAD)
    W.add_weight("official.pth", src)
    W.add_weight("other.bin", src)
    rows = W.verify_weights()
    assert {r.name: r.status for r in rows} == {"official.pth": "present", "other.bin": "custom"}
    (store / "official.pth").write_bytes(b"tampered")
    W.list_weights()  # rehashes it: the hash recorded at `add` must survive that
    W.resolve_weight("official.pth")
    (row,) = W.verify_weights("official.pth")
    assert row.custom and "changed since it was added" in row.note
    assert hashlib.sha256(PAYLOAD).hexdigest() in row.note
    (row,) = W.verify_weights("official.pth")  # still flagged until it is added again
    assert "changed since it was added" in row.note
    W.add_weight("official.pth", src, force=True)
    (row,) = W.verify_weights("official.pth")
    assert row.status == "present" and row.note == ""
    with pytest.raises(TasBenchError, match="not found"):
        W.verify_weights("absent.pth")


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail instead of blocking forever (opening a FIFO for reading waits for a writer)."""
    def boom(*_: object) -> None:
        raise TimeoutError("blocked: something opened the FIFO")

    old = signal.signal(signal.SIGALRM, boom)
    signal.setitimer(signal.ITIMER_REAL, 10)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_add_directory_or_fifo_says_what_it_is(store: Path, tmp_path: Path, no_hang: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "weights_dir"
    folder.mkdir()
    fifo = tmp_path / "pipe.pth"
    os.mkfifo(fifo)
    dangling = tmp_path / "gone.pth"
    dangling.symlink_to(tmp_path / "nowhere.pth")
    for src, words in ((folder, "is a directory"), (fifo, "is a FIFO (named pipe)"),
                       (dangling, "symbolic link")):
        with pytest.raises(TasBenchError) as e:
            W.add_weight("w.pth", src)
        assert words in str(e.value) and str(src) in str(e.value)
        assert "not found" not in str(e.value)
        assert cli_main(["weights", "add", "w.pth", str(src)]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (store / "w.pth").exists()
    with pytest.raises(TasBenchError, match="file not found"):
        W.add_weight("w.pth", tmp_path / "absent.pth")


def test_store_entry_that_is_not_a_file(store: Path, no_hang: None) -> None:
    store.mkdir(parents=True)
    (store / "Cnn14_16k_mAP=0.438.pth").mkdir()
    os.mkfifo(store / "vggish-10086976.pth")
    with pytest.raises(TasBenchError, match="is a directory, not a regular file"):
        W.resolve_weight("Cnn14_16k_mAP=0.438.pth")
    with pytest.raises(TasBenchError, match=r"is a FIFO \(named pipe\), not a regular file"):
        W.resolve_weight("vggish-10086976.pth")
    rows = {r.name: r for r in W.list_weights()}
    assert rows["vggish-10086976.pth"].status == "missing"
    assert "FIFO" in rows["vggish-10086976.pth"].note
    assert "directory" in rows["Cnn14_16k_mAP=0.438.pth"].note


def test_malformed_registry(store: Path) -> None:
    store.mkdir(parents=True)
    (store / W.REGISTRY).write_text("{oops")
    with pytest.raises(TasBenchError, match="malformed weights registry"):
        W.list_weights()


# ---- downloads from a local server -------------------------------------------------------------

class _Server:
    """Serves ``data`` at /file with Range support; ``cut_after`` makes the next response stop
    after that many body bytes (connection closed), ``ignore_range`` answers 200 always."""

    def __init__(self) -> None:
        self.data = PAYLOAD
        self.cut_after: int | None = None
        self.ignore_range = False
        self.ranges: list[str | None] = []
        self.redirects: dict[str, str] = {}  # path -> Location
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path in outer.redirects:
                    self.send_response(302)
                    self.send_header("Location", outer.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path != "/file":
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                body, status = outer.data, 200
                if rng and not outer.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    body, status = outer.data[start:], 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut_after is not None:
                    self.wfile.write(body[: outer.cut_after])
                    self.wfile.flush()
                    outer.cut_after = None
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def test_download_success(store: Path, server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(W.KNOWN, "dl.pth", _known("dl.pth", server.url))
    seen: list[int] = []
    st = W.download_weight("dl.pth", progress=lambda got, total: seen.append(got))
    assert st.status == "present" and (store / "dl.pth").read_bytes() == PAYLOAD
    assert not (store / "dl.pth.part").exists() and seen[-1] == len(PAYLOAD)
    assert W.resolve_weight("dl.pth").sha256 == hashlib.sha256(PAYLOAD).hexdigest()


def test_download_checksum_failure(store: Path, server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(W.KNOWN, "dl.pth", _known("dl.pth", server.url, data=b"something else"))
    with pytest.raises(TasBenchError, match="does not match the published file"):
        W.download_weight("dl.pth")
    assert not (store / "dl.pth").exists()
    assert not (store / "dl.pth.part").exists()  # a corrupt partial file is not kept


def test_download_interrupted_then_resumed(store: Path, server: _Server,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(W.KNOWN, "dl.pth", _known("dl.pth", server.url))
    server.cut_after = 30000
    with pytest.raises(TasBenchError, match="interrupted"):
        W.download_weight("dl.pth")
    part = store / "dl.pth.part"
    assert part.exists() and 0 < part.stat().st_size < len(PAYLOAD)
    assert not (store / "dl.pth").exists()
    have = part.stat().st_size
    st = W.download_weight("dl.pth")
    assert server.ranges[-1] == f"bytes={have}-"
    assert st.status == "present" and (store / "dl.pth").read_bytes() == PAYLOAD
    assert not part.exists()


def test_download_restarts_when_range_is_ignored(store: Path, server: _Server,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(W.KNOWN, "dl.pth", _known("dl.pth", server.url))
    store.mkdir(parents=True)
    (store / "dl.pth.part").write_bytes(PAYLOAD[:5000])
    server.ignore_range = True
    st = W.download_weight("dl.pth")
    assert server.ranges == ["bytes=5000-"]
    assert st.status == "present" and (store / "dl.pth").read_bytes() == PAYLOAD


def test_download_custom_url_and_errors(store: Path, server: _Server) -> None:
    with pytest.raises(TasBenchError, match="--url"):
        W.download_weight("unknown.bin")
    st = W.download_weight("unknown.bin", url=server.url)
    assert st.custom and st.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(TasBenchError, match="HTTP 404"):
        W.download_weight("other.bin", url=server.url.replace("/file", "/nothing"))


def test_download_accepts_only_http(store: Path, tmp_path: Path, server: _Server) -> None:
    local = tmp_path / "local.bin"
    local.write_bytes(PAYLOAD)
    for url in (local.as_uri(), f"FILE://{local}", "ftp://127.0.0.1/x.bin",
                "data:application/octet-stream;base64,AAAA", str(local), "http:///no-host"):
        with pytest.raises(TasBenchError) as e:
            W.download_weight("x.bin", url=url)
        assert "not an http:// or https:// address" in str(e.value)
        assert "tas-bench weights add x.bin" in str(e.value)
    with pytest.raises(TasBenchError, match="not an http"):
        _run(["weights", "download", "x.bin", "--url", local.as_uri()])
    assert not (store / "x.bin").exists() and not (store / "x.bin.part").exists()
    # redirects: to http(s) followed, to anything else refused before fetching it
    base = server.url.rsplit("/", 1)[0]
    server.redirects = {"/ok": "/file", "/to-file": local.as_uri(),
                        "/to-ftp": "ftp://127.0.0.1:9/x.bin"}
    assert W.download_weight("r.bin", url=f"{base}/ok").sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    for path in ("/to-file", "/to-ftp"):
        with pytest.raises(TasBenchError) as e:
            W.download_weight("x.bin", url=base + path)
        assert "redirects to" in str(e.value) and "not an http" in str(e.value)
    assert not (store / "x.bin").exists()


def test_download_offline_is_a_clear_error(store: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    with pytest.raises(TasBenchError) as e:
        W.download_weight("off.bin", url=f"http://127.0.0.1:{port}/x", timeout=5)
    assert "cannot reach" in str(e.value) and "tas-bench weights add off.bin" in str(e.value)


# ---- the command -------------------------------------------------------------------------------

def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cmd.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_command(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "Cnn14_16k_mAP=0.438.pth" in out and "missing" in out and str(store) in out
    src = tmp_path / "c.bin"
    src.write_bytes(PAYLOAD)
    assert _run(["weights", "add", "vggish-10086976.pth", str(src)]) == 0
    captured = capsys.readouterr()
    assert "custom" in captured.out and "CUSTOM" in captured.err
    assert _run(["weights", "verify"]) == 1  # a known name with other bytes
    monkeypatch.setitem(W.KNOWN, "official.pth", _known("official.pth", "http://x"))
    assert _run(["weights", "add", "official.pth", str(src)]) == 0
    assert _run(["weights", "verify", "official.pth"]) == 0
    assert "present" in capsys.readouterr().out
    with pytest.raises(TasBenchError):
        _run(["weights", "add", "official.pth", str(tmp_path / "missing")])
    assert _run(["weights"]) == 2


def test_add_link_and_dropped_files_listed(store: Path, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(PAYLOAD)
    st = W.add_weight("linked.bin", src, link=True)
    assert (store / "linked.bin").is_symlink() and st.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    src.write_bytes(b"changed later")  # a linked file is rehashed when it changes
    assert W.resolve_weight("linked.bin").sha256 == hashlib.sha256(b"changed later").hexdigest()
    (store / "dropped.safetensors").write_bytes(b"abc")  # copied in by hand, never added
    (store / "half.pth.part").write_bytes(b"abc")
    names = [r.name for r in W.list_weights()]
    assert "dropped.safetensors" in names and "linked.bin" in names
    assert "half.pth.part" not in names and W.REGISTRY not in names
    assert {r.name for r in W.verify_weights()} == {"dropped.safetensors", "linked.bin"}


def test_registry_with_bad_entry(store: Path) -> None:
    store.mkdir(parents=True)
    (store / W.REGISTRY).write_text('{"a.pth": 3}')
    (store / "a.pth").write_bytes(b"x")
    with pytest.raises(TasBenchError, match="malformed weights registry"):
        W.resolve_weight("a.pth")
