"""Broken plugin registrations are reported, never dropped: the registry's errors and
``tas-bench ls evaluators|systems`` (BROKEN / IGNORED lines, exit 1 when something is broken)."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import tas_bench.runtime.registry as registry_mod
from baselines.registry import SYSTEMS
from evaluators.registry import EVALUATORS
from tas_bench.data.geometry import wrap_azimuth
from tas_bench.pipeline.cli import main
from tas_bench.runtime.registry import PluginError, Registry

BROKEN_MODULE = "tas_test_exploding_plugin"


@pytest.fixture
def exploding_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module on sys.path whose import raises (with a two-line message)."""
    (tmp_path / f"{BROKEN_MODULE}.py").write_text(
        'raise RuntimeError("plugin exploded\\nwhile importing")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    return BROKEN_MODULE


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, list[EntryPoint]]:
    """Entry points the test controls for the real SYSTEMS / EVALUATORS registries (restored
    afterwards) and an empty TAS_BENCH_HOME."""
    eps: dict[str, list[EntryPoint]] = {"tas_bench.systems": [], "tas_bench.evaluators": []}
    monkeypatch.setattr(registry_mod, "entry_points", lambda *, group: list(eps.get(group, [])))
    for reg in (SYSTEMS, EVALUATORS):
        monkeypatch.setattr(reg, "_entries", dict(reg._entries))
        monkeypatch.setattr(reg, "_origins", dict(reg._origins))
        monkeypatch.setattr(reg, "_ignored", [])
        monkeypatch.setattr(reg, "_entry_points_loaded", False)
    monkeypatch.setenv("TAS_BENCH_HOME", str(tmp_path / "home"))
    return eps


def _ls(what: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str], str, str]:
    """(exit status, first line per name, stdout, stderr) of ``tas-bench ls WHAT``."""
    rc = main(["ls", what])
    cap = capsys.readouterr()
    lines: dict[str, str] = {}
    for ln in cap.out.splitlines():
        lines.setdefault(ln.split(" ")[0], ln)
    return rc, lines, cap.out, cap.err


def test_unloadable_entries_raise_one_line_plugin_errors(exploding_module: str) -> None:
    reg: Registry = Registry("thing", "tas_bench.no_such_group")
    reg.register("ok", "tas_bench.data.geometry:wrap_azimuth")
    reg.register("module", "tas_bench.data.geometry")  # a plain module reference is the module
    reg.register("no-module", "tas_bench.no_such_module:thing")
    reg.register("no-attr", "tas_bench.data.geometry:no_such_function")
    reg.register("explodes", f"{exploding_module}:thing")
    reasons = {
        "no-module": "ModuleNotFoundError",
        "no-attr": "AttributeError",
        "explodes": "RuntimeError: plugin exploded while importing",
    }
    for name, why in reasons.items():
        with pytest.raises(PluginError) as e:
            reg.get(name)
        msg = str(e.value)
        assert f"thing {name!r}" in msg and "cannot be loaded" in msg and why in msg
        assert "\n" not in msg
        assert reg.check(name) == msg
    assert reg.check("ok") is None and reg.get("ok") is wrap_azimuth
    import tas_bench.data.geometry as geometry

    assert reg.get("module") is geometry
    status = {n: (obj, err) for n, obj, err in reg.resolve_all()}
    assert set(status) == {"ok", "module", "no-module", "no-attr", "explodes"}
    assert status["ok"] == (wrap_azimuth, None)
    assert all(status[n][0] is None and why in status[n][1] for n, why in reasons.items())


def test_entry_points_broken_or_shadowed_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    group = "tas_bench.test_listing_group"
    eps = [EntryPoint("bad-value", "not a reference !", group),
           EntryPoint("missing", "tas_bench.no_such_module:X", group),
           EntryPoint("taken", "tas_bench.data.geometry:great_circle_deg", group),
           EntryPoint("extra", "tas_bench.data.geometry:boundary_margin [gpu]", group)]
    monkeypatch.setattr(registry_mod, "entry_points", lambda *, group: eps)
    reg: Registry = Registry("plugin", group)
    reg.register("taken", "tas_bench.data.geometry:wrap_azimuth")
    assert reg.names() == ["bad-value", "extra", "missing", "taken"]
    assert "entry point missing = tas_bench.no_such_module:X" in reg.origin("missing")
    for name in ("bad-value", "missing"):
        reason = reg.check(name)
        assert reason is not None and "entry point" in reason and "cannot be loaded" in reason
    assert reg.check("extra") is None  # extras are not part of the reference
    (ignored,) = reg.ignored()
    assert ignored.name == "taken" and "great_circle_deg" in ignored.value
    assert "already registered" in ignored.reason and "wrap_azimuth" in ignored.reason
    assert reg.get("taken") is wrap_azimuth  # the earlier registration wins


def test_ls_systems_lists_broken_registrations(plugins: dict[str, list[EntryPoint]],
                                               exploding_module: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines, _, err = _ls("systems", capsys)
    assert rc == 0 and err == "" and "mono-mono" in lines  # nothing broken: status 0
    plugins["tas_bench.systems"] += [
        EntryPoint("third-party", f"{exploding_module}:System", "tas_bench.systems"),
        EntryPoint("gone", "no_such_package.system:load", "tas_bench.systems"),
        EntryPoint("mono-mono", "no_such_package:Other", "tas_bench.systems"),
    ]
    SYSTEMS._entry_points_loaded = False  # read the group again (the fixture restores it)
    records = tmp_path / "home" / "systems"
    records.mkdir(parents=True)
    (records / "malformed.json").write_text("{oops")
    (records / "incomplete.json").write_text(json.dumps({"name": "incomplete"}))
    (records / "Bad_Name.json").write_text(json.dumps({"run": "x", "checkpoint_sha256": "0"}))
    (records / "lost-run.json").write_text(json.dumps(
        {"name": "lost-run", "run": str(tmp_path / "deleted-run"), "checkpoint_sha256": "0" * 64}))
    (tmp_path / "kept-run").mkdir()
    (records / "kept.json").write_text(json.dumps(
        {"name": "kept", "run": str(tmp_path / "kept-run"), "checkpoint_sha256": "0" * 64,
         "card": {"revision": "abcdef1234567890", "description": "a registered run"}}))
    for _ in range(2):  # the registry state after a first listing changes nothing
        rc, lines, out, err = _ls("systems", capsys)
        assert rc == 1
        expected = {
            "third-party": ["BROKEN", "RuntimeError: plugin exploded while importing",
                            "entry point third-party"],
            "gone": ["BROKEN", "ModuleNotFoundError", "no_such_package"],
            "malformed": ["BROKEN", "malformed.json", "malformed system record"],
            "incomplete": ["BROKEN", "incomplete.json", "'run'"],
            "Bad_Name": ["BROKEN", "not a valid system name"],
            "lost-run": ["BROKEN", "deleted-run", "does not exist"],
        }
        for name, words in expected.items():
            assert name in lines, name
            assert all(w in lines[name] for w in words), lines[name]
        assert lines["kept"].startswith("kept (revision abcdef123456)") and "BROKEN" not in lines["kept"]
        assert "mono-mono (revision" in lines["mono-mono"]
        assert "mono-mono  IGNORED: entry point mono-mono = no_such_package:Other" in out
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "6 broken system registrations" in err and "third-party" in err
    # the Python API lists the same registrations, in the same order, with the same status
    import tas_bench

    df = tas_bench.list_systems()
    from_ls = [(ln.split(" ")[0], "broken" if "  BROKEN: " in ln else
                "ignored" if "  IGNORED: " in ln else "ok") for ln in out.splitlines()]
    assert list(zip(df["name"], df["status"])) == from_ls
    reasons = dict(zip(df["name"], df["reason"]))
    assert "does not exist" in reasons["lost-run"] and "no_such_package" in reasons["gone"]


def test_ls_evaluators_lists_broken_registrations(plugins: dict[str, list[EntryPoint]],
                                                  exploding_module: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines, _, err = _ls("evaluators", capsys)
    assert rc == 0 and err == "" and {"signal", "cues", "generation"} <= set(lines)
    plugins["tas_bench.evaluators"] += [
        EntryPoint("exploding", f"{exploding_module}:Evaluator", "tas_bench.evaluators"),
        EntryPoint("not-an-evaluator", "tas_bench.data.geometry:wrap_azimuth", "tas_bench.evaluators"),
        EntryPoint("signal", "no_such_package:Signal", "tas_bench.evaluators"),
    ]
    EVALUATORS._entry_points_loaded = False
    rc, lines, out, err = _ls("evaluators", capsys)
    assert rc == 1
    assert "BROKEN" in lines["exploding"] and "plugin exploded while importing" in lines["exploding"]
    assert "BROKEN" in lines["not-an-evaluator"] and "not an evaluator" in lines["not-an-evaluator"]
    assert lines["signal"].startswith("signal (v")  # the built-in is listed and used ...
    assert "signal  IGNORED: entry point signal = no_such_package:Signal" in out  # ... and said
    assert "cues (v" in lines["cues"]
    assert "2 broken evaluator registrations: exploding, not-an-evaluator" in err
    assert err.count("\n") == 1 and "Traceback" not in err
