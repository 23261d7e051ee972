"""The paper's published rows (Tables 2-4), shipped as data in ``published_rows.json``.

Each row keeps the values exactly as printed (strings, ``–`` where the paper has no value), a
``published: true`` mark and its provenance (paper, table, dataset, note). They are only ever
shown in their own "published" blocks, never merged with rows measured by tas-bench.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import read_json_object

PUBLISHED_PATH = Path(__file__).with_name("published_rows.json")


@dataclass(frozen=True)
class ColumnSpec:
    """A column of a paper-layout table: tas-bench metric key, printed label, direction."""

    key: str
    label: str
    higher_is_better: bool
    group: str = ""


@dataclass(frozen=True)
class TableSpec:
    """A paper-layout table: id (``table2``...), title, columns and display decimals."""

    id: str
    title: str
    columns: tuple[ColumnSpec, ...]
    decimals: int


#: Layout of the paper's Tables 2, 3 and 4, keyed by tas-bench metric names.
TABLE_SPECS: dict[str, TableSpec] = {
    "table2": TableSpec(
        "table2",
        "Table 2: generation quality and spatial understanding (gaps, percentage points)",
        (
            ColumnSpec("fd", "FD", False, "Generation"),
            ColumnSpec("fad", "FAD", False, "Generation"),
            ColumnSpec("kl", "KL", False, "Generation"),
            ColumnSpec("is", "IS", True, "Generation"),
            ColumnSpec("doa_gap", "DOA", False, "Perception gap"),
            ColumnSpec("de_gap", "DE", False, "Perception gap"),
            ColumnSpec("direction_gap", "Direction", False, "Reasoning gap"),
            ColumnSpec("distance_gap", "Distance", False, "Reasoning gap"),
        ),
        2,
    ),
    "table3": TableSpec(
        "table3",
        "Table 3: binaural signal distances (FAIR-Play layout)",
        (
            ColumnSpec("stft", "STFT", False),
            ColumnSpec("env", "ENV", False),
            ColumnSpec("wav", "WAV", False),
            ColumnSpec("snr", "SNR", True),
        ),
        3,
    ),
    "table4": TableSpec(
        "table4",
        "Table 4: binaural signal distances (360° YouTube-Binaural layout)",
        (ColumnSpec("stft", "STFT", False), ColumnSpec("env", "ENV", False)),
        3,
    ),
}


@dataclass(frozen=True)
class PublishedRow:
    """One row as printed in the paper: values by column label (strings)."""

    table: str
    method: str
    values: dict[str, str]
    provenance: dict[str, Any] = field(default_factory=dict)

    def number(self, label: str) -> float | None:
        """The value under ``label`` as a float, or None where the paper prints no value."""
        try:
            return float(self.values[label])
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True)
class PublishedTable:
    """The published rows of one table with the table's source information."""

    table: str
    paper_table: int
    dataset: str
    columns: tuple[str, ...]
    rows: tuple[PublishedRow, ...]
    paper: str
    source: str
    absent_value: str


def load_published(path: Path = PUBLISHED_PATH) -> dict[str, PublishedTable]:
    """Load and check the published rows; raises :class:`TasBenchError` on a malformed file."""
    doc = read_json_object(path)
    if doc.get("format") != "tas-bench-published-rows":
        raise TasBenchError("not a published-rows file", path=path, field="format")
    src = doc.get("source", {})
    tables: dict[str, PublishedTable] = {}
    for tid, info in doc.get("tables", {}).items():
        if tid not in TABLE_SPECS:
            raise TasBenchError(f"unknown table {tid!r}", path=path, field="tables")
        spec_labels = tuple(c.label for c in TABLE_SPECS[tid].columns)
        if tuple(info["columns"]) != spec_labels:
            raise TasBenchError(f"columns {info['columns']} differ from the layout {spec_labels}",
                                path=path, field=f"tables.{tid}.columns")
        rows = []
        for i, r in enumerate(doc.get("rows", [])):
            if r.get("table") != tid:
                continue
            if r.get("published") is not True:
                raise TasBenchError("row lacks `published: true`", path=path, field=f"rows[{i}]")
            if set(r.get("values", {})) != set(spec_labels):
                raise TasBenchError(f"values must have exactly the columns {spec_labels}",
                                    path=path, field=f"rows[{i}].values")
            rows.append(PublishedRow(tid, r["method"], dict(r["values"]), dict(r.get("provenance", {}))))
        tables[tid] = PublishedTable(
            table=tid, paper_table=int(info["paper_table"]), dataset=info["dataset"],
            columns=spec_labels, rows=tuple(rows), paper=src.get("paper", ""),
            source=src.get("provenance", ""), absent_value=doc.get("absent_value", "–"),
        )
    return tables
