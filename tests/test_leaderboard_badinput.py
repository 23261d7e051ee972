"""Bad results folders are reported with their path; the rest of the board is still built."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_leaderboard_fixtures import refresh_files, signal_values, write_result  # noqa: E402

from leaderboard.build import build_leaderboard  # noqa: E402
from leaderboard.collect import read_per_clip  # noqa: E402
from tas_bench.pipeline.commands import leaderboard as cmd  # noqa: E402
from tas_bench.runtime.errors import TasBenchError  # noqa: E402


def _good(root: Path) -> None:
    rng = np.random.default_rng(0)
    write_result(root, "good-a", system="good-a", per_clip=signal_values(rng, 10, 0.9, 7.0, 100))
    write_result(root, "good-b", system="good-b", per_clip=signal_values(rng, 10, 1.1, 6.0, 300))


def _messages(summary) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in summary.problems:
        out.setdefault(p.path, []).append(p.message)
    return out


def _build(root: Path, out: Path):
    return build_leaderboard(root, out, figures=False)


def _assert_good_rows_built(out: Path) -> None:
    md = (out / "table3.md").read_text(encoding="utf-8")
    assert "| good-a |" in md and "| good-b |" in md
    assert "good-a" in (out / "index.html").read_text(encoding="utf-8")


def test_missing_results_json(tmp_path: Path) -> None:
    root = tmp_path / "res"
    _good(root)
    (root / "empty-run").mkdir()
    d = write_result(root, "no-json", system="x", per_clip={"stft": [1.0, 2.0]})
    (d / "results.json").unlink()
    s = _build(root, tmp_path / "board")
    msgs = _messages(s)
    assert any("missing results.json" in m for m in msgs["res/empty-run"])
    assert any("missing results.json" in m for m in msgs["res/no-json"])
    assert s.n_measured == 2
    _assert_good_rows_built(tmp_path / "board")


@pytest.mark.parametrize("text, needle", [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"schema_version": "1.0", "kind": "tas-bench-results", "complete": True}), "missing or bad field"),
])
def test_malformed_results_json(tmp_path: Path, text: str, needle: str) -> None:
    root = tmp_path / "res"
    _good(root)
    d = write_result(root, "bad", system="bad", per_clip={"stft": [1.0, 2.0]})
    (d / "results.json").write_text(text, encoding="utf-8")
    s = _build(root, tmp_path / "board")
    assert any(needle in m for m in _messages(s)["res/bad/results.json"])
    assert s.n_measured == 2 and len(s.errors) == 1
    _assert_good_rows_built(tmp_path / "board")


@pytest.mark.parametrize("overrides, needle", [
    ({"schema_version": "9.9"}, "unknown schema_version '9.9'"),
    ({"schema_version": None}, "unknown schema_version None"),
    ({"complete": False}, "incomplete"),
    ({"kind": "something-else"}, "kind is 'something-else'"),
])
def test_rejected_header(tmp_path: Path, overrides: dict, needle: str) -> None:
    root = tmp_path / "res"
    _good(root)
    write_result(root, "odd", system="odd", per_clip={"stft": [1.0, 2.0]}, overrides=overrides)
    s = _build(root, tmp_path / "board")
    assert any(needle in m for m in _messages(s)["res/odd/results.json"])
    assert "odd" not in (tmp_path / "board" / "table3.md").read_text(encoding="utf-8")
    _assert_good_rows_built(tmp_path / "board")


def test_duplicate_system_and_dataset(tmp_path: Path) -> None:
    root = tmp_path / "res"
    _good(root)
    write_result(root, "run1/dup", system="dup", per_clip={"stft": [1.0, 2.0]})
    write_result(root, "run2/dup", system="dup", per_clip={"stft": [1.5, 2.5]})
    s = _build(root, tmp_path / "board")
    msgs = _messages(s)
    for p in ("res/run1/dup", "res/run2/dup"):
        assert any("duplicate results for system 'dup'" in m and "res/run1/dup" in m
                   and "res/run2/dup" in m for m in msgs[p])
    assert "| dup |" not in (tmp_path / "board" / "table3.md").read_text(encoding="utf-8")
    _assert_good_rows_built(tmp_path / "board")


def test_same_system_on_other_dataset_is_not_a_duplicate(tmp_path: Path) -> None:
    root = tmp_path / "res"
    write_result(root, "a", system="s", per_clip={"stft": [1.0, 2.0]})
    write_result(root, "b", system="s", per_clip={"stft": [1.0, 2.0]}, fingerprint="f" * 64)
    s = _build(root, tmp_path / "board")
    assert s.problems == [] and s.n_measured == 2


def test_nan_metric(tmp_path: Path) -> None:
    root = tmp_path / "res"
    _good(root)
    d = write_result(root, "nan", system="nan-sys", per_clip={"stft": [1.0, 2.0], "snr": [3.0, 4.0]})
    text = (d / "results.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    doc["metrics"]["stft"]["mean"] = float("nan")
    doc["metrics"]["snr"]["mean"] = None  # how a strict writer stores NaN
    (d / "results.json").write_text(json.dumps(doc), encoding="utf-8")  # writes NaN literally
    assert "NaN" in (d / "results.json").read_text(encoding="utf-8")
    s = _build(root, tmp_path / "board")
    msgs = _messages(s)["res/nan/results.json"]
    assert any("metrics.stft.mean is not a finite number" in m for m in msgs)
    assert any("metrics.snr.mean is not a finite number" in m for m in msgs)
    md = (tmp_path / "board" / "table3.md").read_text(encoding="utf-8")
    line = next(ln for ln in md.splitlines() if ln.startswith("| nan-sys |"))
    assert line.startswith("| nan-sys | —¹ |")
    assert "¹ STFT, SNR: mean is NaN/null in results.json" in md
    _assert_good_rows_built(tmp_path / "board")


def test_malformed_per_clip_keeps_row_without_significance(tmp_path: Path) -> None:
    root = tmp_path / "res"
    _good(root)
    (root / "good-b" / "per_clip.csv").write_text("id,category,stft\nc1,x,abc\n", encoding="utf-8")
    refresh_files(root / "good-b")  # malformed as written by its run (not a mixed folder)
    s = _build(root, tmp_path / "board")
    msgs = _messages(s)["res/good-b/per_clip.csv"]
    assert any("not a number 'abc'" in m for m in msgs)
    assert s.errors == [] and s.n_measured == 2


@pytest.mark.parametrize("text, needle", [
    ("x,stft\n", "first column must be 'id'"),
    ("id,stft\na,1\na,2\n", "duplicate clip id"),
    ("id,stft\na,1,2\n", "3 fields, header has 2"),
    ("id,stft\na,\na,\n", "duplicate clip id"),
])
def test_read_per_clip_errors(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "per_clip.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=needle):
        read_per_clip(p)


def test_read_per_clip_drops_empty_and_nan(tmp_path: Path) -> None:
    p = tmp_path / "per_clip.csv"
    p.write_text("id,category,stft,snr\na,x,1.5,\nb,x,nan,2\n", encoding="utf-8")
    values, cats = read_per_clip(p)
    assert values == {"stft": {"a": 1.5}, "snr": {"b": 2.0}} and cats == {"a": "x", "b": "x"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers())
    return parser


def test_command_exit_codes(tmp_path: Path, capsys) -> None:
    root = tmp_path / "res"
    _good(root)
    args = ["leaderboard", "--results", str(root), "--out", str(tmp_path / "board"), "--no-figures",
            "--bootstrap", "100"]
    ns = _parser().parse_args(args)
    assert ns.func(ns) == 0
    out = capsys.readouterr().out
    assert "2 measured result(s)" in out and str(tmp_path / "board" / "index.html") in out
    (root / "broken").mkdir()
    (root / "broken" / "results.json").write_text("{", encoding="utf-8")
    ns = _parser().parse_args(args)
    assert ns.func(ns) == 0  # built, with a warning
    err = capsys.readouterr().err
    assert "res/broken/results.json" in err and "malformed JSON" in err
    ns = _parser().parse_args([*args, "--strict"])
    assert ns.func(ns) == 1
    ns = _parser().parse_args(["leaderboard", "--results", str(tmp_path / "nope"), "--out",
                               str(tmp_path / "b2")])
    with pytest.raises(TasBenchError, match="results folder not found"):
        ns.func(ns)
    ns = _parser().parse_args(["leaderboard", "--results", str(root), "--out", str(root / "board")])
    with pytest.raises(TasBenchError, match="must not be inside the results folder"):
        ns.func(ns)


def test_no_published_option(tmp_path: Path) -> None:
    root = tmp_path / "res"
    _good(root)
    s = build_leaderboard(root, tmp_path / "board", include_published=False, figures=False)
    assert s.n_published == 0
    assert "Published" not in (tmp_path / "board" / "table3.md").read_text(encoding="utf-8")


def test_reads_what_the_results_writer_writes(tmp_path: Path) -> None:
    import tas_bench.runtime.results as results_mod  # a broken import must fail, not skip
    root = tmp_path / "res"
    metrics = {
        "stft": {"evaluator": "signal", "mean": 0.5, "std": 0.1, "ci95": [0.4, 0.6], "n": 2,
                 "higher_is_better": False, "unit": "", "per_clip": True},
        "snr": {"evaluator": "signal", "mean": float("nan"), "std": None, "ci95": None, "n": 0,
                "higher_is_better": True, "unit": "dB", "per_clip": True},
    }
    doc = {"created_utc": "2026-11-26T03:00:00Z",
           "code": {"tas_bench_version": "0.1.0", "git_commit": None, "git_dirty": False},
           "system": {"name": "writer-sys", "revision": "abc"},
           "dataset": {"path": "/gone", "name": "demo", "fingerprint": "a" * 64, "split": "test", "n_clips": 2},
           "predictions": {"path": "/gone/pred", "n_files": 2},
           "evaluators": {"signal": {"version": "1.0", "config": {}, "config_hash": "h", "weights": {}}},
           "skipped": {}, "metrics": metrics, "invalid": [], "warnings": [], "packages": {}}
    rows = [{"id": "a", "category": "real", "stft": 0.4, "snr": float("nan")},
            {"id": "b", "category": "real", "stft": 0.6, "snr": float("nan")}]
    results_mod.write_results(root / "writer-sys", doc, rows, ["id", "category", "stft", "snr"])
    s = build_leaderboard(root, tmp_path / "board", figures=False)
    assert s.n_measured == 1
    assert any("metrics.snr.mean is not a finite number" in p.message for p in s.problems)
    md = (tmp_path / "board" / "table3.md").read_text(encoding="utf-8")
    assert "| writer-sys | 0.500 | —¹ | —¹ | —² |" in md
    assert "¹ ENV, WAV: not reported by the 'signal' evaluator in results.json" in md
    assert "² SNR: mean is NaN/null in results.json" in md
    assert "tas-bench 0.1.0;" in md  # no git commit recorded: version only
