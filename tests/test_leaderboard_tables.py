"""Golden-file tests of the Markdown / CSV / LaTeX tables, grouping, footnotes, significance.

Regenerate the golden files (after checking the diff!) with
``TAS_BENCH_UPDATE_GOLDEN=1 pytest tests/test_leaderboard_tables.py``.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from test_leaderboard_fixtures import FP_DEMO, small_board, write_result  # noqa: E402

from leaderboard.build import build_leaderboard  # noqa: E402
from leaderboard.significance import BootstrapConfig, paired_bootstrap  # noqa: E402
from leaderboard.tables import auto_decimals, fmt, render_markdown, tex_escape  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "leaderboard"
BOOT = BootstrapConfig(n_boot=500, seed=0, alpha=0.05)
FILES = [f"{t}.{e}" for t in ("table2", "table3", "table4", "extended") for e in ("md", "csv", "tex")]


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    root = small_board(tmp_path_factory.mktemp("in") / "res")
    out = tmp_path_factory.mktemp("board")
    s = build_leaderboard(root, out, figures=False, bootstrap=BOOT)
    assert s.problems == []
    return out


@pytest.mark.parametrize("name", FILES)
def test_golden(board: Path, name: str) -> None:
    got = (board / name).read_text(encoding="utf-8")
    golden = GOLDEN / name
    if os.environ.get("TAS_BENCH_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got, encoding="utf-8")
    assert golden.is_file(), f"{golden} missing: run with TAS_BENCH_UPDATE_GOLDEN=1 once"
    assert got == golden.read_text(encoding="utf-8"), f"{name} differs from {golden}"


def _csv(board: Path, name: str) -> list[dict[str, str]]:
    with open(board / name, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_missing_cells_have_reason_footnotes(board: Path) -> None:
    md = (board / "table2.md").read_text(encoding="utf-8")
    assert "| mono-mono | —¹ | —¹ | —¹ | —¹ | —² |" in md
    assert "¹ FD, FAD, KL, IS: PANNs weights not installed: Cnn14_16k_mAP=0.438.pth missing" in md
    assert "² DOA, DE, Direction, Distance: evaluator 'spatial_qa' was not run" in md
    rows = [r for r in _csv(board, "table2.csv") if r["method"] == "tas-demo"]
    assert rows[0]["FD"] == "5.12" and rows[0]["IS"] == "2.25" and rows[0]["DOA"] == "—"


def test_rows_from_different_datasets_or_evaluators_are_separate(board: Path) -> None:
    rows = _csv(board, "table3.csv")
    measured = [r for r in rows if r["source"] == "measured"]
    blocks: dict[str, list[dict[str, str]]] = {}
    for r in measured:
        blocks.setdefault(r["block"], []).append(r)
    for rs in blocks.values():  # one dataset per block, and provenance on every row
        assert len({r["fingerprint"] for r in rs}) == 1
        assert all("tas-bench 0.1.0 @abc1234" in r["code_version"] for r in rs)
    legacy = next(r for r in measured if r["method"] == "legacy-sys")
    assert [r["method"] for r in blocks[legacy["block"]]] == ["legacy-sys"]
    demo = next(r["block"] for r in measured if r["method"] == "tas-demo")
    assert sorted(r["method"] for r in blocks[demo]) == ["mono-mono", "pseudobinaural", "tas-demo"]
    md = (board / "table3.md").read_text(encoding="utf-8")
    assert "signal v0.9" in md and "kept apart" in md


def test_best_is_bold_per_column(board: Path) -> None:
    rows = {r["method"]: r for r in _csv(board, "table3.csv") if r["block"] == "table3-measured-2"}
    best_stft = min(rows, key=lambda m: float(rows[m]["STFT"]))
    best_snr = max(rows, key=lambda m: float(rows[m]["SNR"]))
    md = (board / "table3.md").read_text(encoding="utf-8")
    assert f"| {best_stft} | **{rows[best_stft]['STFT']}** |" in md
    assert f"**{rows[best_snr]['SNR']}** |" in md
    tex = (board / "table3.tex").read_text(encoding="utf-8")
    assert f"\\textbf{{{rows[best_stft]['STFT']}}}" in tex


def test_extended_has_ci_and_significance_statement(board: Path) -> None:
    rows = {r["method"]: r for r in _csv(board, "extended.csv") if r["fingerprint"] == FP_DEMO
            and r["block"] == "extended-measured-1"}
    assert set(rows) == {"mono-mono", "pseudobinaural", "tas-demo"}
    r = rows["tas-demo"]
    assert float(r["stft ↓ ci95_low"]) < float(r["stft ↓"]) < float(r["stft ↓ ci95_high"])
    # mono-mono's STFT (~1.2) is far worse than the others (~0.9): the next-better is marked.
    assert rows["mono-mono"]["stft ↓ significant"] == ""
    second = max(("pseudobinaural", "tas-demo"), key=lambda m: float(rows[m]["stft ↓"]))
    assert rows[second]["stft ↓ significant"] == "†" and float(rows[second]["stft ↓ p_next"]) < 0.05
    md = (board / "extended.md").read_text(encoding="utf-8")
    assert "paired bootstrap" in md and "B = 500" in md and "seed 0" in md and "p < 0.05" in md
    assert "itd_pred_us (us) |" in md  # informational column: shown, not ranked (no arrow)


def test_significance_depends_on_data_not_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 30
    base = rng.normal(1.0, 0.2, n)
    root = tmp_path / "res"
    write_result(root, "a", system="a", per_clip={"stft": list(base - 0.3)})
    write_result(root, "b", system="b", per_clip={"stft": list(base + 0.001 * rng.standard_normal(n))})
    write_result(root, "c", system="c", per_clip={"stft": list(base + 0.01 + 0.2 * rng.standard_normal(n))})
    build_leaderboard(root, tmp_path / "board", figures=False, bootstrap=BOOT)
    rows = {r["method"]: r for r in _csv(tmp_path / "board", "extended.csv")}
    assert rows["a"]["stft ↓ significant"] == "†"  # better than b and c on every clip
    second, last = sorted(("b", "c"), key=lambda m: float(rows[m]["stft ↓"]))
    assert rows[second]["stft ↓ significant"] == ""  # b vs c differ by noise only
    assert float(rows[second]["stft ↓ p_next"]) > 0.05
    assert rows[last]["stft ↓ p_next"] == ""  # last-ranked: nothing to compare with


def test_paired_bootstrap_hand_cases() -> None:
    a = {"x": 1.0, "y": 2.0, "z": 3.0}
    b = {"x": 2.0, "y": 3.0, "z": 4.0, "only_b": 0.0}
    r = paired_bootstrap(a, b, higher_is_better=False)
    assert r is not None and r.n_shared == 3 and r.mean_diff == pytest.approx(1.0) and r.p_value == 0.0
    r = paired_bootstrap(a, b, higher_is_better=True)
    assert r.p_value == 1.0 and r.mean_diff == pytest.approx(-1.0)
    assert paired_bootstrap(a, a, higher_is_better=True).p_value == 1.0  # ties are never "better"
    assert paired_bootstrap({"x": 1.0}, {"x": 0.0}, higher_is_better=True) is None


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=20), st.lists(st.floats(-5, 5), min_size=20, max_size=20),
       st.integers(0, 2**31))
def test_paired_bootstrap_properties(xs, ys, seed) -> None:
    a = {f"c{i}": x for i, x in enumerate(xs)}
    b = {f"c{i}": ys[i] for i in range(len(xs))}
    cfg = BootstrapConfig(n_boot=200, seed=seed)
    ab = paired_bootstrap(a, b, higher_is_better=True, config=cfg)
    ba = paired_bootstrap(b, a, higher_is_better=True, config=cfg)
    assert 0.0 <= ab.p_value <= 1.0
    assert ab.p_value + ba.p_value >= 1.0 - 1e-12  # the two one-sided tests cover every resample
    lo = paired_bootstrap(a, b, higher_is_better=False, config=cfg)
    assert lo.p_value == pytest.approx(ba.p_value)  # lower-is-better = swapped roles
    shuffled = dict(reversed(list(a.items())))
    assert paired_bootstrap(shuffled, b, higher_is_better=True, config=cfg) == ab


def test_formatting_helpers() -> None:
    assert fmt(0.12345, 3) == "0.123" and fmt(-0.0001, 3) == "0.000" and fmt(9.03, 2) == "9.03"
    assert auto_decimals([0.5, 1.2]) == 3 and auto_decimals([12.0]) == 2 and auto_decimals([-150.0]) == 1
    assert tex_escape("a_b & 50% — 360°") == "a\\_b \\& 50\\% --- 360\\textdegree{}"


def _measured(name: str, metrics: dict[str, tuple[float, bool]]):
    from leaderboard.collect import MeasuredResult, MetricValue

    return MeasuredResult(
        folder=Path("/x") / name, rel=f"res/{name}", system=name, revision=None, dataset_name="demo",
        fingerprint=FP_DEMO, split="test", n_clips=3, dataset_path=None, predictions_path=None,
        tas_bench_version="0.1.0", git_commit=None, git_dirty=None, created_utc="",
        evaluators={"signal": {"version": "1.0", "config_hash": "h", "weights": {}}}, skipped={},
        metrics={k: MetricValue(k, v, None, None, 3, hib, "", True, "signal") for k, (v, hib) in metrics.items()})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=6), st.booleans())
def test_bold_marks_exactly_the_best_displayed_values(means, higher) -> None:
    from leaderboard.tables import extended_table

    results = [_measured(f"s{i}", {"m": (v, higher)}) for i, v in enumerate(means)]
    tf = extended_table(results, BootstrapConfig(n_boot=10))
    (block,) = tf.blocks
    cells = [r.cells["m"] for r in block.rows]
    shown = [float(c.text) for c in cells]
    best = max(shown) if higher else min(shown)
    assert [c.best for c in cells] == [len(cells) > 1 and v == best for v in shown]
    md = render_markdown(tf)
    assert md.count("**") == 2 * sum(c.best for c in cells)
    assert all(not c.sig for c in cells)  # no per-clip values: nothing is tested


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
def test_latex_compiles(board: Path, tmp_path: Path) -> None:
    names = ("table2", "table3", "table4", "extended")
    for n in names:
        shutil.copy(board / f"{n}.tex", tmp_path / f"{n}.tex")
    body = "\n".join(f"\\input{{{n}.tex}}\\clearpage" for n in names)
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs}\n"
        f"\\begin{{document}}\n{body}\n\\end{{document}}\n", encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_special_characters_are_escaped(tmp_path: Path) -> None:
    root = tmp_path / "res"
    name = "a|b_<i>&c%"
    write_result(root, "odd", system=name, per_clip={"stft": [1.0, 2.0], "snr": [3.0, 4.0]})
    build_leaderboard(root, tmp_path / "board", figures=False, bootstrap=BOOT)
    md = (tmp_path / "board" / "table3.md").read_text(encoding="utf-8")
    assert "| a\\|b_<i>&c% | 1.500 |" in md
    tex = (tmp_path / "board" / "table3.tex").read_text(encoding="utf-8")
    assert "a\\textbar{}b\\_\\textless{}i\\textgreater{}\\&c\\% & 1.500" in tex
    html = (tmp_path / "board" / "index.html").read_text(encoding="utf-8")
    assert "<i>&c" not in html and "a|b_&lt;i&gt;&amp;c%" in html
    with open(tmp_path / "board" / "table3.csv", encoding="utf-8") as f:
        assert any(r["method"] == name for r in csv.DictReader(f))
