"""Build the whole leaderboard: tables in Markdown/CSV/LaTeX, ``board.json`` and ``index.html``.

Output folder layout::

    BOARD/table2.{md,csv,tex}    paper layout of Table 2 (published block + measured blocks)
    BOARD/table3.{md,csv,tex}    Table 3
    BOARD/table4.{md,csv,tex}    Table 4
    BOARD/extended.{md,csv,tex}  every metric with 95 % CI and significance marks
    BOARD/board.json             what was built: rows, problems, bootstrap settings
    BOARD/index.html             static, self-contained page

Bad results folders are reported (path + problem) and left out; the rest is still built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from leaderboard.collect import BoardProblem, MeasuredResult, collect
from leaderboard.figures import FigureSet
from leaderboard.published import load_published
from leaderboard.significance import BootstrapConfig
from leaderboard.tables import (
    PAPER_TABLES,
    TableFile,
    extended_table,
    paper_table,
    render_csv,
    render_latex,
    render_markdown,
    row_anchor,
    table_frame,
)
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

PAGE_TITLE = "tas-bench leaderboard"


@dataclass
class LeaderboardSummary:
    """What :func:`build_leaderboard` wrote: files, table rows, input problems."""

    out: Path
    index_html: Path
    files: list[Path]
    rows: list[dict[str, str]]
    problems: list[BoardProblem] = field(default_factory=list)
    n_measured: int = 0
    n_published: int = 0

    @property
    def errors(self) -> list[BoardProblem]:
        """Problems that made a results folder be left out."""
        return [p for p in self.problems if p.severity == "error"]


def build_tables(results: list[MeasuredResult], *, include_published: bool,
                 boot: BootstrapConfig) -> list[TableFile]:
    """The four table files (table2, table3, table4, extended) from measured results."""
    published = load_published() if include_published else None
    tables = [paper_table(t, published, results) for t in PAPER_TABLES]
    tables.append(extended_table(results, boot))
    return tables


def _check_results_dir(results_dir: Path) -> None:
    if not results_dir.is_dir():
        raise TasBenchError("results folder not found", path=results_dir)


def table_frames(results_dir: Path, *, include_published: bool = True,
                 bootstrap: BootstrapConfig | None = None) -> dict[str, pd.DataFrame]:
    """The tables :func:`build_leaderboard` writes, as DataFrames keyed by table id (numbers,
    not display texts: see :func:`leaderboard.tables.table_frame`); results folders with
    problems are left out, as there. Raises :class:`TasBenchError` when ``results_dir`` is not
    a folder."""
    results_dir = Path(results_dir)
    _check_results_dir(results_dir)
    tables = build_tables(collect(results_dir).results, include_published=include_published,
                          boot=bootstrap or BootstrapConfig())
    return {t.id: table_frame(t, numeric=True) for t in tables}


def build_leaderboard(results_dir: Path, out: Path, *, include_published: bool = True,
                      bootstrap: BootstrapConfig | None = None, figures: bool = True,
                      max_figure_clips: int = 2) -> LeaderboardSummary:
    """Read every results folder under ``results_dir`` and write the leaderboard to ``out``.

    Raises :class:`TasBenchError` only when ``results_dir`` is not a folder or ``out`` cannot
    be written; problems with single results folders are returned in the summary.
    """
    results_dir, out = Path(results_dir), Path(out)
    _check_results_dir(results_dir)
    if out.exists() and not out.is_dir():
        raise TasBenchError("output path exists and is not a folder", path=out)
    if out.resolve() == results_dir.resolve() or results_dir.resolve() in out.resolve().parents:
        raise TasBenchError("output folder must not be inside the results folder "
                            "(the board would be read back as results)", path=out)
    boot = bootstrap or BootstrapConfig()
    coll = collect(results_dir)
    tables = build_tables(coll.results, include_published=include_published, boot=boot)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for t in tables:
        for ext, render in (("md", render_markdown), ("csv", render_csv), ("tex", render_latex)):
            p = out / f"{t.id}.{ext}"
            write_text_atomic(p, render(t))
            files.append(p)
    figs: dict[str, FigureSet] = {}
    if figures:
        from leaderboard.figures import system_figures

        for r in coll.results:
            figs[row_anchor(r)] = system_figures(r, max_clips=max_figure_clips)
    rows = [{"table": t.id, "block": b.id, "source": r.source, "method": r.label,
             "provenance": r.provenance} for t in tables for b in t.blocks for r in b.rows]
    board_json = out / "board.json"
    index = out / "index.html"
    files += [board_json, index]
    write_json_atomic(board_json, {
        "kind": "tas-bench-leaderboard", "version": "1.0",
        "results_dir": str(results_dir),
        "bootstrap": {"test": "one-sided paired bootstrap over shared clips", "n_boot": boot.n_boot,
                      "seed": boot.seed, "alpha": boot.alpha},
        "include_published": include_published,
        "measured": [{"system": r.system, "revision": r.revision, "dataset": r.dataset_name,
                      "split": r.split, "fingerprint": r.fingerprint, "code": r.code_label,
                      "results": r.rel} for r in coll.results],
        "rows": rows,
        "problems": [{"path": p.path, "severity": p.severity, "message": p.message}
                     for p in coll.problems],
        "files": [p.name for p in files],
    })
    from leaderboard.html import render_page

    write_text_atomic(index, render_page(PAGE_TITLE, tables, coll.results, figs, coll.problems,
                                         [p.name for p in files]))
    return LeaderboardSummary(
        out=out, index_html=index, files=files, rows=rows, problems=coll.problems,
        n_measured=len(coll.results),
        n_published=sum(1 for r in rows if r["source"] == "published" and r["table"] in PAPER_TABLES),
    )
