"""The kind-generic run folder (``tas_bench.runtime.runs``): checkpoints, resume, metrics log, kinds,
registration. A toy kind trained here uses the API the way every trainer does."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tas_bench.runtime import runs
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import TMP_MARK, host_tag, sha256_file

ROOT = Path(__file__).resolve().parent.parent
FMT = "tas-bench-toy-1"

# ---------------------------------------------------------------- a toy kind


class ToySystem:
    """What a kind's loader returns: card(), checkpoint_sha256, model_hash."""

    def __init__(self, net: torch.nn.Module, cfg: dict[str, Any], sha: str, name: str) -> None:
        self.net, self.cfg, self.checkpoint_sha256, self.name = net, cfg, sha, name

    @property
    def model_hash(self) -> str:
        return runs.stable_hash({"kind": self.cfg["kind"], "width": self.cfg["width"]})

    def card(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.cfg["kind"],
                "revision": runs.revision(self.checkpoint_sha256, self.model_hash)}


def _toy_hash(cfg: dict[str, Any]) -> str:
    return runs.stable_hash({"kind": cfg["kind"], "width": cfg["width"]})


def _meta(cfg: dict[str, Any]) -> dict[str, str]:
    return {"kind": cfg["kind"], "model_hash": _toy_hash(cfg)}


def toy_train(kind: str, data: str | Path, out: str | Path, *, config_file: Any = None,
              overrides: dict[str, Any] | None = None, progress: bool = False,
              command: str | None = None) -> dict[str, Any]:
    """A 2-layer regression trained with the generic plumbing (resumable)."""
    cfg = {"kind": kind, "width": 4, "steps": 6, "lr": 0.05, "seed": 0, "checkpoint_every": 2,
           **{k: v for k, v in (overrides or {}).items() if v is not None}}
    out = Path(out)
    runs.prepare_run(out, config=cfg, data={"path": str(data), "fingerprint": "fp-" + str(data)},
                     what="toy", resumable={"steps"})
    torch.manual_seed(cfg["seed"])
    net = torch.nn.Sequential(torch.nn.Linear(3, cfg["width"]), torch.nn.Tanh(),
                              torch.nn.Linear(cfg["width"], 1))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], betas=(0.95, 0.999))
    start = 0
    last = runs.latest_checkpoint(out)
    if last is not None:
        ck = runs.load_checkpoint(last, fmt=FMT, what="toy")
        net.load_state_dict(ck.model_state)
        opt.load_state_dict(ck.optimizer_state)
        runs.set_rng_state(ck.rng)
        start = ck.step
    log = runs.MetricsLog(out / runs.METRICS_FILE, ("step", "loss"), start)
    for step in range(start + 1, cfg["steps"] + 1):
        x = torch.randn(8, 3)  # drawn from the checkpointed RNG
        loss = ((net(x) - x.sum(1, keepdim=True)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.write({"step": step, "loss": f"{float(loss.detach()):.6g}"})
        if step % cfg["checkpoint_every"] == 0:
            runs.save_checkpoint(out, step, net.state_dict(), _meta(cfg), opt.state_dict(),
                                 {"seed": cfg["seed"]}, keep=2, fmt=FMT)
        if step == int(os.environ.get("TOY_DIE_AT", "0")):  # test-only: a kill -9 mid-run
            os.kill(os.getpid(), signal.SIGKILL)
    runs.save_model(out / runs.MODEL_FILE, net.state_dict(), _meta(cfg), fmt=FMT)
    return runs.finish_run(out, {"kind": kind, "steps": cfg["steps"], "resumed_from": start,
                                 "model_hash": _toy_hash(cfg)}, command=command or "toy")


def toy_load(path: str | Path, *, name: str | None = None, expect_sha256: str | None = None,
             device: str = "cpu") -> ToySystem:
    md = runs.open_model_dir(path, fmt=FMT, what="toy", kinds=("toy", "toy-qa"),
                             expect_sha256=expect_sha256)
    md.check_model(kind=md.config["kind"], model_hash=_toy_hash(md.config))
    net = torch.nn.Sequential(torch.nn.Linear(3, md.config["width"]), torch.nn.Tanh(),
                              torch.nn.Linear(md.config["width"], 1))
    net.load_state_dict(md.tensors)
    return ToySystem(net, md.config, md.sha256, name or md.config["kind"])


@pytest.fixture
def toy_kinds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TAS_BENCH_HOME", str(tmp_path / "home"))
    specs = [runs.register_kind(runs.KindSpec("toy", role="system", train=toy_train, load=toy_load)),
             runs.register_kind(runs.KindSpec("toy-qa", role="assessor",
                                              train="test_run_folder:toy_train",
                                              load="test_run_folder:toy_load"))]
    yield specs
    for s in specs:
        runs.KINDS._entries.pop(s.kind, None)


def _params(path: Path) -> dict[str, np.ndarray]:
    from safetensors.torch import load_file

    return {k: v.numpy() for k, v in load_file(str(path)).items()}


# ---------------------------------------------------------------- run folder


def test_prepare_run_refusals(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = {"kind": "toy", "width": 4, "steps": 5}
    data = {"path": "D", "fingerprint": "abc"}
    assert runs.prepare_run(out, config=cfg, data=data, what="toy", resumable={"steps"}) is False
    assert json.loads((out / "config.json").read_text()) == cfg
    assert json.loads((out / "data.json").read_text()) == data
    # same run, a longer schedule: resumes
    assert runs.prepare_run(out, config={**cfg, "steps": 9}, data=data, what="toy",
                            resumable={"steps"}) is True
    with pytest.raises(TasBenchError, match=r"another config \(fields \['width'\]\)"):
        runs.prepare_run(out, config={**cfg, "width": 5}, data=data, what="toy", resumable={"steps"})
    with pytest.raises(TasBenchError, match=r"another config \(fields \['new'\]\)"):
        runs.prepare_run(out, config={**cfg, "new": 1}, data=data, what="toy", resumable={"steps"})
    # a normalizer fills fields added since the run was written
    assert runs.prepare_run(out, config={**cfg, "new": 1}, data=data, what="toy",
                            resumable={"steps"}, normalize=lambda d: {**d, "new": 1}) is True
    with pytest.raises(TasBenchError, match="other data"):
        runs.prepare_run(out, config={**cfg, "new": 1}, data={**data, "fingerprint": "xyz"}, what="toy",
                         resumable={"steps"}, normalize=lambda d: {**d, "new": 1})
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("x")
    with pytest.raises(TasBenchError, match="not a toy run"):
        runs.prepare_run(junk, config=cfg, data=data, what="toy")
    (tmp_path / "file").write_text("x")
    with pytest.raises(TasBenchError, match="not a toy run"):
        runs.prepare_run(tmp_path / "file", config=cfg, data=data, what="toy")
    # a non-main process neither checks nor writes
    assert runs.prepare_run(tmp_path / "other", config=cfg, data=data, what="toy", main=False) is False
    assert not (tmp_path / "other").exists()


def _toy_state() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(1)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=0.01, betas=(0.9, 0.99))
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    return net, opt


def test_checkpoint_round_trip_model_optimizer_step_rng(tmp_path: Path) -> None:
    net, opt = _toy_state()
    torch.manual_seed(123)
    torch.rand(3)
    path = runs.save_checkpoint(tmp_path, 7, net.state_dict(), {"kind": "toy"}, opt.state_dict(),
                                {"note": "x"}, keep=2, fmt=FMT)
    expected_next = torch.rand(5)
    assert path.name == "step_00000007" and path.parent.name == "checkpoints"
    ck = runs.load_checkpoint(path, fmt=FMT, what="toy")
    assert ck.step == 7 and ck.state["note"] == "x" and ck.meta["kind"] == "toy"
    assert ck.meta["format"] == FMT
    for k, v in net.state_dict().items():
        assert torch.equal(ck.model_state[k], v)
    runs.set_rng_state(ck.rng)
    assert torch.equal(torch.rand(5), expected_next)
    # the restored optimizer continues exactly like the original one
    net2 = torch.nn.Linear(3, 2)
    net2.load_state_dict(ck.model_state)
    opt2 = torch.optim.AdamW(net2.parameters(), lr=0.5)
    opt2.load_state_dict(ck.optimizer_state)
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.9, 0.99)
    x = torch.randn(4, 3)
    for n, o in ((net, opt), (net2, opt2)):
        o.zero_grad()
        n(x).sum().backward()
        o.step()
    for a, b in zip(net.parameters(), net2.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(TasBenchError, match="not a other checkpoint"):
        runs.load_checkpoint(path, fmt="tas-bench-other-1", what="other")
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.pkl"))


def test_keep_prunes_and_incomplete_checkpoints_are_ignored(tmp_path: Path) -> None:
    net, opt = _toy_state()
    for step in (1, 2, 3, 4):
        runs.save_checkpoint(tmp_path, step, net.state_dict(), {}, opt.state_dict(), keep=2, fmt=FMT)
    names = [p.name for p in runs.list_checkpoints(tmp_path)]
    assert names == ["step_00000003", "step_00000004"]
    root = tmp_path / "checkpoints"
    # a folder under a final name without all files, a mismatching step, a stray file
    (root / "step_00000009").mkdir()
    (root / "step_00000009" / "model.safetensors").write_bytes(b"x")
    bad = root / "step_00000008"
    bad.mkdir()
    for f in ("model.safetensors", "optimizer.safetensors"):
        (bad / f).write_bytes(b"x")
    (bad / "state.json").write_text(json.dumps({"step": 5}))
    (root / "step_00000010").write_text("not a folder")
    # what a killed writer leaves: a temp folder of a process that no longer exists
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    orphan = root / f".step_00000005{TMP_MARK}{host_tag()}.{int(dead.stdout)}.abcd"
    orphan.mkdir()
    (orphan / "model.safetensors").write_bytes(b"partial")
    assert runs.latest_checkpoint(tmp_path) == root / "step_00000004"
    assert not orphan.exists()  # swept


_KILLED = """
import sys
sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
import torch
from tas_bench.runtime import runs
import tas_bench.runtime.runs as r
net = torch.nn.Linear(3, 2)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
runs.save_checkpoint({out!r}, 1, net.state_dict(), {{}}, opt.state_dict(), fmt="tas-bench-toy-1")
def die(*a, **k):
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)  # killed after the tensors, before state.json
r.write_text_atomic = die
runs.save_checkpoint({out!r}, 2, net.state_dict(), {{}}, opt.state_dict(), fmt="tas-bench-toy-1")
"""


def test_kill_during_checkpoint_leaves_previous_one(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _KILLED.format(
        tests=str(ROOT / "tests"), root=str(ROOT), out=str(tmp_path))], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p for p in (tmp_path / "checkpoints").iterdir() if TMP_MARK in p.name]
    assert len(leftovers) == 1 and (leftovers[0] / "model.safetensors").is_file()
    assert runs.latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step_00000001"
    assert not any(TMP_MARK in p.name for p in (tmp_path / "checkpoints").iterdir())


def test_metrics_log_resume_truncates_and_drops_cut_lines(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    log = runs.MetricsLog(path, ("step", "loss", "val"), 0)
    for s in (1, 2, 3, 4):
        log.write({"step": s, "loss": s / 10, "val": None if s % 2 else s})
    assert path.read_text() == "step,loss,val\n1,0.1,\n2,0.2,2\n3,0.3,\n4,0.4,4\n"
    with open(path, "a") as f:
        f.write("5,0.5")  # a line cut by a kill (one field short)
    assert [r["step"] for r in runs.MetricsLog.read(path, ("step", "loss", "val"))] == ["1", "2", "3", "4"]
    log = runs.MetricsLog(path, ("step", "loss", "val"), 2)  # resumed from the step-2 checkpoint
    log.write({"step": 3, "loss": 0.33})
    assert path.read_text() == "step,loss,val\n1,0.1,\n2,0.2,2\n3,0.33,\n"
    with pytest.raises(ValueError):
        runs.MetricsLog(tmp_path / "m2.csv", ("loss",), 0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=20, unique=True), st.integers(0, 30))
def test_metrics_log_keeps_exactly_the_rows_up_to_the_resume_step(steps: list[int], upto: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.csv"
        log = runs.MetricsLog(path, ("step", "x"), 0)
        for s in steps:
            log.write({"step": s, "x": s * 2})
        runs.MetricsLog(path, ("step", "x"), upto)
        rows = runs.MetricsLog.read(path, ("step", "x"))
        assert [int(r["step"]) for r in rows] == sorted(s for s in steps if s <= upto)
        assert all(int(r["x"]) == 2 * int(r["step"]) for r in rows)


# ---------------------------------------------------------------- kinds, resume, register


def test_toy_kind_resume_after_kill_matches_uninterrupted(toy_kinds, tmp_path: Path) -> None:
    ref = runs.train_run("toy", "D", tmp_path / "ref")
    assert ref["steps"] == 6 and ref["resumed_from"] == 0
    assert ref["checkpoint_sha256"] == sha256_file(tmp_path / "ref" / "model.safetensors")
    assert ref["revision"] == runs.revision(ref["checkpoint_sha256"], ref["model_hash"])
    for key in ("command", "git_commit", "torch", "config_sha256", "licence"):
        assert key in ref
    child = ("import sys; sys.path.insert(0, {t!r}); sys.path.insert(0, {r!r});"
             "from test_run_folder import toy_train;"
             "toy_train('toy', 'D', {o!r})")
    proc = subprocess.run([sys.executable, "-c", child.format(t=str(ROOT / "tests"), r=str(ROOT),
                                                              o=str(tmp_path / "killed"))],
                          timeout=120, env={**os.environ, "TOY_DIE_AT": "5"})
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    # step 5 was logged after the step-4 checkpoint: resume drops that row and redoes it
    assert "\n5," in (tmp_path / "killed" / "metrics.csv").read_text()
    rec = runs.train_run("toy", "D", tmp_path / "killed")
    assert rec["resumed_from"] == 4
    a, b = _params(tmp_path / "ref" / "model.safetensors"), _params(tmp_path / "killed" / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    log = (tmp_path / "killed" / "metrics.csv").read_text()
    assert log == (tmp_path / "ref" / "metrics.csv").read_text()


def test_register_and_load_by_kind(toy_kinds, tmp_path: Path) -> None:
    runs.train_run("toy", "D", tmp_path / "sys")
    runs.train_run("toy-qa", "D", tmp_path / "qa")
    assert "toy" in runs.kind_names("system") and "toy-qa" in runs.kind_names("assessor")
    assert isinstance(runs.load_run(tmp_path / "sys"), ToySystem)
    rec = runs.register_run("my-toy", tmp_path / "sys", expect_role="system")
    assert rec["kind"] == "toy" and rec["role"] == "system"
    assert (tmp_path / "home" / "systems" / "my-toy.json").is_file()
    obj = runs.load_registered("my-toy")
    assert obj.card()["revision"] == rec["card"]["revision"] and obj.name == "my-toy"
    assert runs.load_registered("nobody") is None
    qa = runs.register_run("my-qa", tmp_path / "qa")
    assert qa["role"] == "assessor" and (tmp_path / "home" / "assessors" / "my-qa.json").is_file()
    assert runs.load_registered("my-qa", role="system") is None
    assert runs.load_registered("my-qa", role="assessor").cfg["kind"] == "toy-qa"
    with pytest.raises(TasBenchError, match="is a assessor, not a system"):
        runs.register_run("x", tmp_path / "qa", expect_role="system")
    with pytest.raises(TasBenchError, match="built-in system name"):
        runs.register_run("mono-mono", tmp_path / "sys", reserved=["mono-mono"])
    # tampering after registration is refused at load time
    p = tmp_path / "sys" / "model.safetensors"
    raw = bytearray(p.read_bytes())
    raw[-1] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(TasBenchError, match="does not match its registration"):
        runs.load_registered("my-toy")
    with pytest.raises(TasBenchError, match="does not match run.json"):
        runs.register_run("other", tmp_path / "sys")


def test_unknown_kind_errors(toy_kinds, tmp_path: Path) -> None:
    with pytest.raises(TasBenchError, match="trainable kinds: .*toy"):
        runs.get_kind("nope")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps({"kind": "nope"}))
    with pytest.raises(TasBenchError, match="another system kind 'nope'"):
        runs.register_run("x", tmp_path / "r")
    with pytest.raises(TasBenchError, match="run record"):
        runs.register_run("x", tmp_path)
    with pytest.raises(TasBenchError, match="role"):
        runs.register_kind(runs.KindSpec("bad", role="judge", train=toy_train, load=toy_load))


def _imports(path: Path) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
    return mods


def test_generic_code_imports_no_plugin() -> None:
    for mod in ("runs.py", "text.py", "systems_store.py"):
        bad = {m for m in _imports(ROOT / "tas_bench" / "runtime" / mod)
               if m.split(".")[0] in ("baselines", "evaluators")}
        assert not bad, (mod, bad)
    # the system registry names the PseudoBinaural modules only as lazy strings
    assert not any("pseudobinaural" in m for m in _imports(ROOT / "baselines" / "registry.py"))


def test_safetensors_bytes_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """safetensors orders metadata by a per-process hash; save_model must not."""
    import subprocess
    import sys

    code = ("import torch, sys; from tas_bench.runtime import runs; "
            "runs.save_model(sys.argv[1], {'w': torch.arange(3.0), 'b': torch.ones(2)}, "
            "{'kind': 'k', 'model_hash': 'h', 'zeta': 'z', 'alpha': 'a', 'llm_sha256': 'x'}, "
            "fmt='f')")
    outs = []
    for i in range(4):
        f = tmp_path / f"m{i}.safetensors"
        subprocess.run([sys.executable, "-c", code, str(f)], check=True)
        outs.append(f.read_bytes())
    assert len(set(outs)) == 1
    tensors, meta = runs.read_model(tmp_path / "m0.safetensors", fmt="f", what="x")
    assert meta["alpha"] == "a" and float(tensors["w"][2]) == 2.0
