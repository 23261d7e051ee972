"""The local weights store and ``tas-bench weights``; downloads use a local HTTP server only."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tas_bench import weights as W
from tas_bench.commands import weights as cmd
from tas_bench.errors import TasBenchError

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
    for name in ("Cnn14_16k_mAP=0.438.pth", "Cnn14_mAP=0.431.pth", "vggish-10086976.pth"):
        k = W.KNOWN[name]
        assert k.url.startswith("https://") and k.size and (k.sha256 or k.sha256_prefix)
        if k.sha256:
            assert len(k.sha256) == 64 and int(k.sha256, 16) >= 0
    assert W.KNOWN["vggish-10086976.pth"].sha256_prefix == "10086976"


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


def test_file_dropped_in_folder_and_hash_cache(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(W.KNOWN, "official.pth", _known("official.pth", "http://x"))
    store.mkdir(parents=True)
    (store / "official.pth").write_bytes(PAYLOAD)  # no `add`: still recognised
    assert W.resolve_weight("official.pth").status == "present"
    calls = []
    real = W.sha256_file
    monkeypatch.setattr(W, "sha256_file", lambda p: calls.append(p) or real(p))
    W.resolve_weight("official.pth")
    assert calls == []  # cached by size and mtime
    (store / "official.pth").write_bytes(PAYLOAD[:-1] + b"\x00")
    st = W.resolve_weight("official.pth")
    assert calls and st.custom  # rehashed after the change


def test_verify_reports_changes(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(W.KNOWN, "official.pth", _known("official.pth", "http://x"))
    src = tmp_path / "o.pth"
    src.write_bytes(PAYLOAD)
    W.add_weight("official.pth", src)
    W.add_weight("other.bin", src)
    rows = W.verify_weights()
    assert {r.name: r.status for r in rows} == {"official.pth": "present", "other.bin": "custom"}
    (store / "official.pth").write_bytes(b"tampered")
    (row,) = W.verify_weights("official.pth")
    assert row.custom and "changed since it was added" in row.note
    with pytest.raises(TasBenchError, match="not found"):
        W.verify_weights("absent.pth")


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
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
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
