"""The shipped published rows reproduce the paper's Tables 2-4 cell for cell.

The expected tables below are typed in independently from REFERENCE.md section 1.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from leaderboard.build import build_leaderboard
from leaderboard.published import PUBLISHED_PATH, load_published
from tas_bench.runtime.errors import TasBenchError

TABLE2 = """
Method | FD | FAD | KL | IS | DOA | DE | Direction | Distance
Mono-Mono | 9.03 | 3.67 | 0.99 | 1.61 | 19.66 | 18.12 | 12.79 | 15.33
PseudoBinaural (retrained) | 7.23 | 2.81 | 0.65 | 1.85 | 6.39 | 4.00 | 10.36 | 12.91
TAS (ours) | 4.93 | 1.44 | 0.58 | 2.23 | 3.07 | 2.45 | 6.99 | 8.16
TAS w/o text | 6.77 | 2.54 | 0.63 | 2.00 | 5.87 | 4.03 | 9.25 | 11.40
TAS w/o flipper | 5.08 | 1.72 | 0.61 | 2.15 | 4.14 | 2.89 | 8.63 | 10.03
"""
TABLE3 = """
Method | STFT | ENV | WAV | SNR
Mono-Mono | 1.155 | 0.153 | 7.666 | 5.735
L2BNet (2021) | 1.028 | 0.148 | – | –
Mono2Binaural (2019) | 0.959 | 0.141 | 6.496 | 6.232
APNet (2020) | 0.889 | 0.136 | 5.758 | 6.972
Sep-binaural (2020) | 0.879 | 0.135 | 6.526 | 6.422
Main-net (2021) | 0.867 | 0.135 | 5.750 | 6.985
Complete-net (2021) | 0.856 | 0.134 | 5.787 | 6.959
AVSN (2024b) | 0.849 | 0.133 | – | –
Cyclic (2024a) | 0.787 | 0.128 | 5.244 | 7.546
TAS (2024b) | 0.914 | 0.137 | 6.092 | 6.771
Ours | 0.773 | 0.126 | 5.019 | 7.966
"""
TABLE4 = """
Method | STFT | ENV
Mono-Mono | 4.715 | 0.261
Audio-only | 3.129 | 0.213
Mono2Binaural (2019) | 2.892 | 0.208
APNet (2024b) | 2.733 | 0.204
SimBinaural (2023) | 2.544 | 0.196
Ours | 2.471 | 0.188
"""
EXPECTED = {"table2": TABLE2, "table3": TABLE3, "table4": TABLE4}


def _parse(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("|")] for line in text.strip().splitlines()]


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("empty") / "res"
    root.mkdir()
    out = tmp_path_factory.mktemp("board")
    build_leaderboard(root, out, figures=False)
    return out


def _published_md_rows(md: str) -> list[list[str]]:
    """Header + rows of the published block of a Markdown table file, bold removed."""
    lines = md.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("## Published"))
    table = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        if ln.startswith("|:--"):
            continue
        cells = [c.strip().replace("**", "") for c in ln.strip("|").split(" | ")]
        table.append(cells[:-1])  # drop the Provenance column
    return table


@pytest.mark.parametrize("table", ["table2", "table3", "table4"])
def test_markdown_reproduces_paper_table(board: Path, table: str) -> None:
    got = _published_md_rows((board / f"{table}.md").read_text(encoding="utf-8"))
    assert got == _parse(EXPECTED[table])


@pytest.mark.parametrize("table", ["table2", "table3", "table4"])
def test_csv_reproduces_paper_table(board: Path, table: str) -> None:
    expected = _parse(EXPECTED[table])
    with open(board / f"{table}.csv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["source"] == "published"]
    got = [[r["method"], *[r[c] for c in expected[0][1:]]] for r in rows]
    assert got == expected[1:]
    assert all(r["block"] == f"{table}-published" for r in rows)


@pytest.mark.parametrize("table", ["table2", "table3", "table4"])
def test_latex_holds_every_cell(board: Path, table: str) -> None:
    tex = (board / f"{table}.tex").read_text(encoding="utf-8")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    for row in _parse(EXPECTED[table])[1:]:
        cells = [c.replace("–", "--") for c in row]
        line = next(ln for ln in tex.splitlines() if ln.startswith(row[0] + " &"))
        assert line.endswith(" \\\\")
        got = [re.sub(r"^\\textbf\{(.*)\}$", r"\1", c.strip()) for c in line[:-3].split(" & ")]
        assert got == cells


def test_best_values_bold_as_in_paper(board: Path) -> None:
    # The paper's own method is best in every column of every table.
    for table, method in (("table2", "TAS (ours)"), ("table3", "Ours"), ("table4", "Ours")):
        md = (board / f"{table}.md").read_text(encoding="utf-8")
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {method} |"))
        cells = line.strip("|").split(" | ")[1:-1]
        assert all(c.startswith("**") for c in cells), line
        others = [ln for ln in md.splitlines() if ln.startswith("| ") and "published" in ln
                  and not ln.startswith(f"| {method} |")]
        assert others and not any("**" in ln for ln in others)


def test_rows_are_marked_published_with_provenance() -> None:
    doc = json.loads(PUBLISHED_PATH.read_text(encoding="utf-8"))
    assert doc["rows"] and all(r["published"] is True for r in doc["rows"])
    assert all(r["provenance"]["paper"].startswith("In-the-wild Audio Spatialization") for r in doc["rows"])
    notes = {r["method"]: r["provenance"].get("note") for r in doc["rows"] if r["table"] == "table2"}
    assert notes["PseudoBinaural (retrained)"] == "PseudoBinaural retrained on SpatialTAS"
    tables = load_published()
    assert [len(t.rows) for t in tables.values()] == [5, 11, 6]


def test_measured_and_published_never_share_a_block(board: Path) -> None:
    with open(board / "table3.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    blocks = {}
    for r in rows:
        blocks.setdefault(r["block"], set()).add(r["source"])
    assert all(len(s) == 1 for s in blocks.values())


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.update(format="x"), "format"),
    (lambda d: d["rows"][0].update(published=False), "rows[0]"),
    (lambda d: d["rows"][0]["values"].pop("FD"), "rows[0].values"),
    (lambda d: d["tables"]["table3"].update(columns=["STFT"]), "tables.table3.columns"),
])
def test_bad_published_file_is_rejected(tmp_path: Path, mutate, field: str) -> None:
    doc = json.loads(PUBLISHED_PATH.read_text(encoding="utf-8"))
    mutate(doc)
    p = tmp_path / "pub.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(TasBenchError) as e:
        load_published(p)
    assert e.value.field == field and str(p) in str(e.value)
