"""``tas-bench weights download --all --if-reachable`` (what ``make demo`` runs first): fetches
the official files it can reach, once, sha256-checked, and goes on without the others.

Only a local HTTP server the test starts and a closed local port are contacted: no network.
"""

from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tas_bench.pipeline.cli import main as cli_main
from tas_bench.runtime import weights as W

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = bytes(range(256)) * 64  # 16,384 bytes
OTHER = b"not the official bytes" * 100


class _Server:
    """Serves ``files`` (path -> bytes) and counts the requests per path."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server({"/a.pth": PAYLOAD, "/bad.pth": OTHER})
    yield s
    s.close()


@pytest.fixture
def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: connection refused at once
    return port


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "store"
    monkeypatch.setenv(W.ENV_VAR, str(root))
    return root


def _known(name: str, url: str, data: bytes = PAYLOAD) -> W.KnownWeight:
    return W.KnownWeight(name=name, url=url, size=len(data),
                         sha256=hashlib.sha256(data).hexdigest(), sha256_prefix=None,
                         description="test", verified="test")


def _set_known(monkeypatch: pytest.MonkeyPatch, *weights: W.KnownWeight) -> None:
    """The project's override point: the table of official files (sha256, size, address)."""
    monkeypatch.setattr(W, "KNOWN", {w.name: w for w in weights})


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_fetches_reachable_and_goes_on_without_the_rest(
        store: Path, server: _Server, closed_port: int, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _set_known(monkeypatch, _known("a.pth", f"{server.base}/a.pth"),
               _known("off.pth", f"http://127.0.0.1:{closed_port}/off.pth"))
    assert cli_main(["weights", "download", "--all", "--if-reachable"]) == 0
    out = _lines(capsys)
    assert out[0].startswith("a.pth: fetched (sha256 " + hashlib.sha256(PAYLOAD).hexdigest())
    assert out[1].startswith("off.pth: not reachable (127.0.0.1:")
    assert "going on without 1 weight file(s)" in out[2]
    assert (store / "a.pth").read_bytes() == PAYLOAD and not (store / "off.pth").exists()
    assert not list(store.glob("*.part"))
    assert W.resolve_weight("a.pth").status == "present"  # official: sha256 and size match
    # once: the second run finds it in the store and does not ask the server again
    assert cli_main(["weights", "download", "--all", "--if-reachable"]) == 0
    out = _lines(capsys)
    assert out[0].startswith("a.pth: already present") and server.hits["/a.pth"] == 1
    assert out[1].startswith("off.pth: not reachable")


def test_checksum_mismatch_installs_nothing_and_exits_1(
        store: Path, server: _Server, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _set_known(monkeypatch, _known("bad.pth", f"{server.base}/bad.pth", data=PAYLOAD))
    assert cli_main(["weights", "download", "--all", "--if-reachable"]) == 1
    out = _lines(capsys)
    assert out[0].startswith("bad.pth: failed (downloaded bad.pth does not match the published")
    assert not (store / "bad.pth").exists() and not list(store.glob("*.part"))


def test_a_users_file_is_kept_and_a_dead_host_is_tried_once(
        store: Path, tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{closed_port}"
    _set_known(monkeypatch, _known("mine.pth", f"{dead}/mine.pth"),
               _known("x.pth", f"{dead}/x.pth"), _known("y.pth", f"{dead}/y.pth"))
    src = tmp_path / "mine.bin"
    src.write_bytes(OTHER)
    W.add_weight("mine.pth", src)
    calls: list[str] = []
    real = W.download_weight
    monkeypatch.setattr(W, "download_weight",
                        lambda name, **kw: calls.append(name) or real(name, **kw))
    rows = W.fetch_if_reachable(connect_timeout=2.0)
    assert [(r.name, r.outcome) for r in rows] == [
        ("mine.pth", "custom"), ("x.pth", "not reachable"), ("y.pth", "not reachable")]
    assert calls == ["x.pth"]  # y.pth is on the same unreachable host
    assert "x.pth" in rows[1].detail and "/y.pth" not in rows[2].detail  # no other file's URL
    assert "not tried again" in rows[2].detail and "x.pth" in rows[2].detail
    assert (store / "mine.pth").read_bytes() == OTHER


def test_bad_requests_are_clear_errors(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["weights", "download", "nope.pth", "--if-reachable"]) == 2
    assert "nope.pth is not a known weight" in capsys.readouterr().err
    assert cli_main(["weights", "download", "--all", "--url", "http://127.0.0.1/x"]) == 2
    assert cli_main(["weights", "download"]) == 2
    assert "--all" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_fetches_weights_before_reproduce() -> None:
    out = subprocess.run(["make", "-n", "demo"], cwd=ROOT, text=True,
                         capture_output=True, check=True).stdout.splitlines()
    fetch = [i for i, line in enumerate(out) if "weights download --all --if-reachable" in line]
    run = [i for i, line in enumerate(out) if "tas-bench reproduce --preset demo" in line]
    assert fetch and run and fetch[0] < run[0]


def test_connect_timeout_is_short_and_reads_get_the_long_timeout(server: _Server) -> None:
    resp = W._http_opener().open(f"{server.base}/a.pth", timeout=0.5)
    with resp:
        sock = resp.fp.raw._sock
        assert sock.gettimeout() == 0.5
        W._set_read_timeout(resp, 30.0)
        assert sock.gettimeout() == 30.0 and resp.read() == PAYLOAD
