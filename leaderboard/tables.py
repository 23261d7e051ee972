"""Leaderboard tables: a small table model, its builders and Markdown / CSV / LaTeX renderers.

A table file (``table2``, ``table3``, ``table4``, ``extended``) is a list of :class:`Block`s.
Published rows get their own block; measured rows are grouped so that a block only holds rows
measured on the same dataset (fingerprint and split) with the same evaluator versions, configs
and backbone weights. Missing cells are "—" with a numbered footnote giving the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from leaderboard.collect import INFORMATIONAL, KNOWN_EVALUATOR, MeasuredResult
from leaderboard.published import TABLE_SPECS, PublishedTable, TableSpec
from leaderboard.significance import BootstrapConfig, paired_bootstrap

if TYPE_CHECKING:
    import pandas as pd

MISSING = "—"
PAPER_TABLES = ("table2", "table3", "table4")
TABLE_IDS = (*PAPER_TABLES, "extended")

#: Column order of the extended table (metrics tas-bench knows); others follow alphabetically.
KNOWN_ORDER = (
    "stft", "env", "wav", "snr", "mag", "phase",
    "fd", "fad", "kl", "kl_sigmoid", "is",
    "itd_error_us", "ild_error_db", "ild_band_error_db", "ic_error",
    "lr_correct", "octant_correct", "lr_correct_ref", "octant_correct_ref",
    "lr_undecided", "lr_undecided_ref",
    "doa_gap", "de_gap", "direction_gap", "distance_gap",
    "doa_acc_ref", "doa_acc_pred", "de_acc_ref", "de_acc_pred", "direction_acc_ref",
    "direction_acc_pred", "distance_acc_ref", "distance_acc_pred", "unparseable_pred",
    "unparseable_ref", "unknown_items",
    "itd_pred_us", "itd_ref_us", "ild_pred_db", "ild_ref_db",
)
_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass
class Column:
    """A table column: metric key, label, direction (None = not ranked) and decimals."""

    key: str
    label: str
    higher_is_better: bool | None
    decimals: int = 3
    description: str = ""
    group: str = ""


@dataclass
class Cell:
    """One cell: displayed text, numeric value, CI, marks and footnote number."""

    text: str
    value: float | None = None
    ci: tuple[float, float] | None = None
    ci_text: str = ""
    n: int | None = None
    best: bool = False
    sig: bool = False
    p_value: float | None = None
    note: int | None = None


@dataclass
class Row:
    """A table row: method/system label, source (``published`` | ``measured``), cells."""

    label: str
    source: str
    cells: dict[str, Cell]
    provenance: str
    anchor: str = ""
    dataset: str = ""
    fingerprint: str = ""
    code: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Block:
    """One rendered table: rows comparable with each other, with footnotes and remarks."""

    table: str
    id: str
    title: str
    source: str
    columns: list[Column]
    rows: list[Row]
    footnotes: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    show_ci: bool = False


@dataclass
class TableFile:
    """Everything of one table id (e.g. ``table2``): heading, blocks, remarks."""

    id: str
    title: str
    blocks: list[Block]
    remarks: list[str] = field(default_factory=list)


def fmt(v: float, decimals: int) -> str:
    """Fixed-point text of ``v`` (``-0.000`` printed as ``0.000``)."""
    s = f"{v:.{decimals}f}"
    return s[1:] if re.fullmatch(r"-0\.?0*", s) else s


def auto_decimals(values: Iterable[float]) -> int:
    """Decimals for a column: 1 for magnitudes >= 100, 2 for >= 10, else 3."""
    m = max((abs(v) for v in values), default=0.0)
    return 1 if m >= 100 else 2 if m >= 10 else 3


def slug(text: str) -> str:
    """An HTML-id-safe slug of ``text``."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def row_anchor(r: MeasuredResult) -> str:
    """Anchor id of a measured system's figures on the HTML page."""
    return f"sys-{slug(r.system)}-{r.fingerprint[:8]}-{slug(r.split)}"


def _mark_best(block: Block) -> None:
    for col in block.columns:
        if col.higher_is_better is None:
            continue
        vals = [(float(c.text), c) for r in block.rows if (c := r.cells.get(col.key))
                and c.value is not None and _is_number(c.text)]
        if len(vals) < 2:
            continue
        best = max(v for v, _ in vals) if col.higher_is_better else min(v for v, _ in vals)
        for v, c in vals:
            c.best = v == best


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _add_footnotes(block: Block, missing: list[tuple[Cell, str, str]]) -> None:
    """Number the reasons of missing cells: one footnote per reason, listing its columns."""
    order: list[str] = []
    labels: dict[str, list[str]] = {}
    for cell, label, reason in missing:
        if reason not in labels:
            order.append(reason)
            labels[reason] = []
        if label not in labels[reason]:
            labels[reason].append(label)
        cell.note = order.index(reason) + 1
    block.footnotes = [f"{', '.join(labels[r])}: {r}" for r in order]


def published_block(pt: PublishedTable, spec: TableSpec) -> Block:
    """The paper's rows of one table as a block, values exactly as printed."""
    columns = [Column(c.key, c.label, c.higher_is_better, spec.decimals, group=c.group)
               for c in spec.columns]
    rows = []
    for pr in pt.rows:
        cells = {}
        for c in spec.columns:
            text = pr.values[c.label]
            cells[c.key] = Cell(text=text, value=pr.number(c.label))
        note = pr.provenance.get("note")
        prov = f"published: paper Table {pt.paper_table} ({pt.dataset})" + (f"; {note}" if note else "")
        rows.append(Row(pr.method, "published", cells, prov, dataset=pt.dataset,
                        notes=[note] if note else []))
    block = Block(
        table=pt.table, id=f"{pt.table}-published",
        title=f"Published: Table {pt.paper_table} of the paper ({pt.dataset})",
        source="published", columns=columns, rows=rows,
        remarks=[f"Published values, copied as printed from \"{pt.paper}\", Table {pt.paper_table} "
                 f"(source: {pt.source}); not measured by tas-bench, never merged with measured rows.",
                 f"{pt.absent_value} = not reported in the paper. Bold = best value per column."],
    )
    _mark_best(block)
    return block


def _relevant_evaluators(r: MeasuredResult, keys: Sequence[str] | None) -> set[str]:
    if keys is None:
        return {mv.evaluator for mv in r.metrics.values()}
    return {r.metrics[k].evaluator for k in keys if k in r.metrics}


def group_results(results: Sequence[MeasuredResult], keys: Sequence[str] | None
                  ) -> list[tuple[dict[str, tuple[str, str, str] | None], list[MeasuredResult]]]:
    """Group results that may share columns: same fingerprint and split, and equal
    (version, config hash, weights) for every evaluator that produced the columns ``keys``
    (all metrics when None) in both. A result lacking an evaluator joins any compatible group."""
    order = sorted(results, key=lambda r: (-len(_relevant_evaluators(r, keys)), r.fingerprint,
                                           r.split, r.system, r.rel))
    groups: list[tuple[tuple[str, str], dict[str, tuple[str, str, str] | None], list[MeasuredResult]]] = []
    for r in order:
        sigs = {ev: r.evaluator_signature(ev) for ev in _relevant_evaluators(r, keys)}
        for (fp, split), gsigs, members in groups:
            if (fp, split) == (r.fingerprint, r.split) and all(
                    gsigs.get(e, s) == s for e, s in sigs.items()):
                gsigs.update(sigs)
                members.append(r)
                break
        else:
            groups.append(((r.fingerprint, r.split), dict(sigs), [r]))
    out = [(sigs, sorted(m, key=lambda r: (r.system, r.rel))) for _, sigs, m in groups]
    out.sort(key=lambda g: (g[1][0].fingerprint, g[1][0].split, sorted(
        (k, str(v)) for k, v in g[0].items())))
    return out


def _sig_text(sigs: dict[str, tuple[str, str, str] | None]) -> str:
    parts = []
    for ev in sorted(sigs):
        s = sigs[ev]
        if s is None:
            parts.append(f"{ev} (version not recorded)")
            continue
        version, chash, weights = s
        t = f"{ev} v{version} (config {chash[:8]}"
        if weights:
            t += "; weights " + ", ".join(
                f"{w.split('=')[0]} {w.split('=')[1][:8]}" for w in weights.split(","))
        parts.append(t + ")")
    return "; ".join(parts) if parts else "none (no metric of this table was computed)"


def _measured_row(r: MeasuredResult) -> Row:
    return Row(
        label=r.system, source="measured", cells={},
        provenance=f"measured: dataset {r.dataset_label}; {r.code_label}; results {r.rel}",
        anchor=row_anchor(r), dataset=f"{r.dataset_name}/{r.split}", fingerprint=r.fingerprint,
        code=r.code_label,
    )


Groups = list[tuple[dict[str, tuple[str, str, str] | None], list[MeasuredResult]]]


def measured_blocks(table: str, groups: Groups,
                    columns: list[Column] | Callable[[list[MeasuredResult]], list[Column]],
                    *, show_ci: bool, boot: BootstrapConfig | None) -> list[Block]:
    """Blocks of measured rows, one per comparable group (see :func:`group_results`);
    ``columns`` is a list or a function of the group's members."""
    blocks = []
    per_dataset: dict[tuple[str, str], int] = {}
    for _, members in groups:
        per_dataset[(members[0].fingerprint, members[0].split)] = per_dataset.get(
            (members[0].fingerprint, members[0].split), 0) + 1
    for gi, (sigs, members) in enumerate(groups, start=1):
        first = members[0]
        title = f"Measured on {first.dataset_label}"
        if per_dataset[(first.fingerprint, first.split)] > 1:
            title += f" with evaluators {_sig_text(sigs)}"
        block = Block(table=table, id=f"{table}-measured-{gi}", title=title, source="measured",
                      columns=[Column(c.key, c.label, c.higher_is_better, c.decimals, c.description, c.group)
                               for c in (columns(members) if callable(columns) else columns)],
                      rows=[], show_ci=show_ci)
        missing: list[tuple[Cell, str, str]] = []
        for r in members:
            row = _measured_row(r)
            for col in block.columns:
                mv = r.metrics.get(col.key)
                if mv is None or mv.mean is None:
                    cell = Cell(MISSING)
                    hint = KNOWN_EVALUATOR.get(col.key) or next(
                        (o.metrics[col.key].evaluator for o in members if col.key in o.metrics), None)
                    missing.append((cell, col.label, r.missing_reason(col.key, hint)))
                    row.notes.append(f"{col.key}: {r.missing_reason(col.key, hint)}")
                else:
                    cell = Cell(fmt(mv.mean, col.decimals), mv.mean, mv.ci95, n=mv.n)
                    if mv.ci95:
                        cell.ci_text = f"[{fmt(mv.ci95[0], col.decimals)}, {fmt(mv.ci95[1], col.decimals)}]"
                row.cells[col.key] = cell
            block.rows.append(row)
        _add_footnotes(block, missing)
        _mark_best(block)
        block.remarks.append(
            f"Measured by tas-bench on dataset {first.dataset_name!r}, split {first.split!r}, "
            f"fingerprint {first.fingerprint}. Evaluators: {_sig_text(sigs)}.")
        if per_dataset[(first.fingerprint, first.split)] > 1:
            block.remarks.append(
                "Note: other blocks on this same dataset were measured with different evaluator "
                "versions, configs or backbone weights, so their rows are kept apart.")
        block.remarks.append("Bold = best value per column.")
        if boot is not None:
            n_tests = _significance(block, members, boot)
            block.remarks.append(boot.describe() + f" ({n_tests} comparisons run in this block.)")
        blocks.append(block)
    return blocks


def _significance(block: Block, members: Sequence[MeasuredResult], boot: BootstrapConfig) -> int:
    by_label = {r.system: r for r in members}
    n_tests = 0
    for col in block.columns:
        if col.higher_is_better is None:
            continue
        ranked = [row for row in block.rows if row.cells[col.key].value is not None]
        sign = -1.0 if col.higher_is_better else 1.0
        ranked.sort(key=lambda row: (sign * row.cells[col.key].value, row.label))
        for better, worse in zip(ranked, ranked[1:]):
            ra, rb = by_label[better.label], by_label[worse.label]
            mv = ra.metrics.get(col.key)
            if mv is None or not mv.per_clip or ra.per_clip is None or rb.per_clip is None:
                continue
            a, b = ra.per_clip.get(col.key), rb.per_clip.get(col.key)
            if not a or not b:
                continue
            res = paired_bootstrap(a, b, higher_is_better=bool(col.higher_is_better), config=boot)
            if res is None:
                continue
            n_tests += 1
            cell = better.cells[col.key]
            cell.p_value = res.p_value
            cell.sig = res.p_value < boot.alpha
    return n_tests


def paper_table(table: str, published: dict[str, PublishedTable] | None,
                results: Sequence[MeasuredResult]) -> TableFile:
    """Table 2, 3 or 4: the published block (if given) then measured blocks in that layout."""
    spec = TABLE_SPECS[table]
    tf = TableFile(table, spec.title, [])
    if published and table in published:
        tf.blocks.append(published_block(published[table], spec))
    keys = [c.key for c in spec.columns]
    shown = [r for r in results if any(k in r.metrics for k in keys)
             or any(KNOWN_EVALUATOR.get(k) in r.skipped for k in keys)]
    columns = [Column(c.key, c.label, c.higher_is_better, spec.decimals, group=c.group)
               for c in spec.columns]
    tf.blocks += measured_blocks(table, group_results(shown, keys), columns, show_ci=False,
                                 boot=None)
    left = [r for r in results if r not in shown]
    if left:
        tf.remarks.append("Not listed (none of these metrics measured or skipped): " + ", ".join(
            f"{r.system} on {r.dataset_label}" for r in left) + ".")
    if not results:
        tf.remarks.append("No measured results.")
    return tf


def extended_table(results: Sequence[MeasuredResult], boot: BootstrapConfig) -> TableFile:
    """Every metric of every comparable group, with 95 % CIs and significance marks."""
    tf = TableFile("extended", "Extended: every metric, mean with 95 % CI", [])

    def columns(members: list[MeasuredResult]) -> list[Column]:
        names = {k for r in members for k in r.metrics}
        ordered = [k for k in KNOWN_ORDER if k in names] + sorted(names - set(KNOWN_ORDER))
        cols = []
        for k in ordered:
            dirs = {r.metrics[k].higher_is_better for r in members if k in r.metrics}
            hib = dirs.pop() if len(dirs) == 1 and k not in INFORMATIONAL else None
            unit = next((r.metrics[k].unit for r in members if k in r.metrics and r.metrics[k].unit), "")
            vals = [r.metrics[k].mean for r in members if k in r.metrics and r.metrics[k].mean is not None]
            about = next((r.metrics[k].description for r in members
                          if k in r.metrics and r.metrics[k].description), "")
            cols.append(Column(k, f"{k} ({unit})" if unit else k, hib, auto_decimals(vals), about))
        return cols

    tf.blocks = measured_blocks("extended", group_results(results, None), columns, show_ci=True,
                                boot=boot)
    for b in tf.blocks:
        b.remarks.append("Cells: mean [95 % CI] (corpus-level metrics such as FD, FAD and IS show "
                         "a CI only where the results file has one). Arrows: ↑ higher is better, "
                         "↓ lower is better; unmarked columns are informational (not ranked).")
    for b in tf.blocks:
        for c in b.columns:
            c.label += " ↑" if c.higher_is_better else " ↓" if c.higher_is_better is False else ""
    if not results:
        tf.remarks.append("No measured results.")
    return tf


# ----------------------------------------------------------------------------- renderers
#
# Every table is assembled as a pandas DataFrame (:func:`table_frame`, :func:`block_frame`) and
# rendered by pandas where pandas does the job: CSV with ``DataFrame.to_csv``, LaTeX with
# ``Styler.to_latex`` (booktabs rules, caption, label, multi-level headers for column groups, bold
# best values). Hand-written, because pandas cannot: the Markdown pipe table (pandas'
# ``to_markdown`` needs ``tabulate``, which is not a dependency, and pads every cell to the
# column width), the LaTeX escape map (``Styler.format(escape="latex")`` knows only ASCII
# specials, not the —, †, ↑, ° ... these tables print), the booktabs ``\cmidrule`` under column
# groups and the footnote paragraph after the tabular (Styler writes neither).

#: Extra per-column fields of tables with CIs (the extended table), in order.
CI_FIELDS = ("ci95_low", "ci95_high", "significant", "p_next")
#: Row-identity columns of :func:`table_frame`: before and after the metric columns.
HEAD_COLUMNS = ("block", "source", "method")
TAIL_COLUMNS = ("dataset", "fingerprint", "code_version", "provenance", "notes")


def table_labels(tf: TableFile) -> list[str]:
    """Metric column labels of a table file, in order of first appearance over its blocks."""
    labels: list[str] = []
    for b in tf.blocks:
        for c in b.columns:
            if c.label not in labels:
                labels.append(c.label)
    return labels


def table_frame(tf: TableFile, *, numeric: bool = False) -> pd.DataFrame:
    """One row per (block, system): ``block, source`` (``published`` | ``measured``),
    ``method``, one column per metric label (plus ``LABEL ci95_low/ci95_high/significant/p_next``
    in tables with CIs), then ``dataset, fingerprint, code_version, provenance, notes``.

    ``numeric=False``: the displayed texts ("—" for a missing value, "†" for significant),
    which is the CSV file. ``numeric=True``: metric values, CI bounds and p-values as floats
    (NaN where missing), ``significant`` as bool.
    """
    import pandas as pd

    labels = table_labels(tf)
    with_ci = any(b.show_ci for b in tf.blocks)
    columns = list(HEAD_COLUMNS)
    for lab in labels:
        columns += [lab] + ([f"{lab} {f}" for f in CI_FIELDS] if with_ci else [])
    columns += TAIL_COLUMNS
    nan = float("nan")
    records = []
    for b in tf.blocks:
        by_label = {c.label: c for c in b.columns}
        for r in b.rows:
            rec: dict[str, object] = {"block": b.id, "source": r.source, "method": r.label}
            for lab in labels:
                col = by_label.get(lab)
                cell = r.cells.get(col.key) if col else None
                ci = cell.ci if cell is not None else None
                p = cell.p_value if cell is not None else None
                if numeric:
                    rec[lab] = nan if cell is None or cell.value is None else float(cell.value)
                    if with_ci:
                        rec[f"{lab} ci95_low"] = nan if ci is None else float(ci[0])
                        rec[f"{lab} ci95_high"] = nan if ci is None else float(ci[1])
                        rec[f"{lab} significant"] = bool(cell is not None and cell.sig)
                        rec[f"{lab} p_next"] = nan if p is None else float(p)
                    continue
                rec[lab] = "" if cell is None else cell.text
                if with_ci:
                    rec[f"{lab} ci95_low"] = "" if ci is None else fmt(ci[0], col.decimals)
                    rec[f"{lab} ci95_high"] = "" if ci is None else fmt(ci[1], col.decimals)
                    rec[f"{lab} significant"] = "†" if cell is not None and cell.sig else ""
                    rec[f"{lab} p_next"] = "" if p is None else f"{p:.4f}"
            rec.update(dataset=r.dataset, fingerprint=r.fingerprint, code_version=r.code,
                       provenance=r.provenance, notes="; ".join(r.notes))
            records.append(rec)
    df = pd.DataFrame.from_records(records, columns=columns)
    return df if numeric else df.astype(object).fillna("")


def render_csv(tf: TableFile) -> str:
    """CSV of a table file (:func:`table_frame`, displayed values): one line per row."""
    return table_frame(tf).to_csv(index=False, lineterminator="\n")


def block_frame(b: Block, cell_text: Callable[[Cell, bool], str]) -> pd.DataFrame:
    """The cells of one block as texts made by ``cell_text(cell, show_ci)``: one row per system
    (index: position), one column per metric key, under a (group, key) MultiIndex when the
    block's columns have groups."""
    import pandas as pd

    data = [[cell_text(r.cells[c.key], b.show_ci) for c in b.columns] for r in b.rows]
    if any(c.group for c in b.columns):
        cols = pd.MultiIndex.from_tuples([(c.group, c.key) for c in b.columns], names=["", "Method"])
    else:
        cols = pd.Index([c.key for c in b.columns], name="Method")
    return pd.DataFrame(data, columns=cols, index=pd.RangeIndex(len(b.rows)), dtype=object)


def _cell_md(c: Cell, show_ci: bool) -> str:
    t = f"**{c.text}**" if c.best else c.text
    if c.sig:
        t += "†"
    if show_ci and c.ci_text:
        t += f" {c.ci_text}"
    if c.note:
        t += str(c.note).translate(_SUP)
    return t.replace("|", "\\|")


def _pipe_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str) -> list[str]:
    """A GitHub pipe table, unpadded, from cells already escaped (hand-written: see the note
    at the top of the renderers); ``align`` holds one of l / r per column."""
    rule = "|" + "".join(":--|" if a == "l" else "--:|" for a in align)
    return ["| " + " | ".join(header) + " |", rule, *("| " + " | ".join(r) + " |" for r in rows)]


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def render_markdown(tf: TableFile) -> str:
    """GitHub-flavoured Markdown of a table file."""
    out = [f"# {tf.title}", ""]
    for b in tf.blocks:
        out += [f"## {b.title}", ""]
        cells = block_frame(b, _cell_md)  # cells escaped by _cell_md
        head = [_md_escape(h) for h in ("Method", *[c.label for c in b.columns], "Provenance")]
        body = ([_md_escape(r.label), *vals, _md_escape(r.provenance)]
                for r, vals in zip(b.rows, cells.itertuples(index=False, name=None)))
        out += [*_pipe_table(head, body, "l" + "r" * len(b.columns) + "l"), ""]
        for i, note in enumerate(b.footnotes, start=1):
            out.append(f"{str(i).translate(_SUP)} {note}  ")
        if b.footnotes:
            out.append("")
        for rem in b.remarks:
            out += [rem, ""]
    for rem in tf.remarks:
        out += [rem, ""]
    return "\n".join(out).rstrip("\n") + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "°": r"\textdegree{}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", "—": "---", "–": "--", "†": r"$^\dagger$", "↑": r"$\uparrow$",
        "↓": r"$\downarrow$", "→": r"$\rightarrow$", "≤": r"$\leq$", "≥": r"$\geq$",
        "µ": r"$\mu$", "μ": r"$\mu$", "±": r"$\pm$", "×": r"$\times$", "²": r"$^2$", "³": r"$^3$",
        "¹": r"$^1$", "⁰": r"$^0$", "√": r"$\surd$", "…": r"\ldots{}", "’": "'", "‘": "`",
        "“": "``", "”": "''"}


def tex_escape(s: str) -> str:
    """Escape text for LaTeX (special characters and the few Unicode symbols we print)."""
    return "".join(_TEX.get(ch, ch) for ch in s)


def _cell_tex(c: Cell, show_ci: bool) -> str:
    # bold is not added here: Styler wraps best cells in \textbf (see _block_latex)
    t = tex_escape(c.text)
    if c.sig:
        t += r"$^\dagger$"
    if show_ci and c.ci_text:
        t += f" {{\\scriptsize {tex_escape(c.ci_text)}}}"
    if c.note:
        t += f"\\textsuperscript{{{c.note}}}"
    return t


def _tex_cmidrules(columns: Sequence[Column]) -> str:
    """``\\cmidrule`` under each named column group (1-based columns, after Method)."""
    spans: list[tuple[str, int, int]] = []
    for i, c in enumerate(columns, start=2):
        if spans and spans[-1][0] == c.group:
            spans[-1] = (c.group, spans[-1][1], i)
        else:
            spans.append((c.group, i, i))
    return " ".join(f"\\cmidrule(lr){{{a}-{b}}}" for g, a, b in spans if g)


def _block_latex(b: Block) -> str:
    import pandas as pd

    df = block_frame(b, _cell_tex)
    label_of = {c.key: c.label for c in b.columns}
    bold = pd.DataFrame([["textbf: --rwrap;" if r.cells[c.key].best else "" for c in b.columns]
                         for r in b.rows], index=df.index, columns=df.columns, dtype=object)
    grouped = isinstance(df.columns, pd.MultiIndex)
    styler = (df.style.apply(lambda _: bold, axis=None)
              .format_index(lambda i: tex_escape(b.rows[i].label), axis=0)
              .format_index(lambda k: tex_escape(label_of[k]), axis=1, level=1 if grouped else 0)
              .hide(axis="index", names=True)
              .set_table_styles([{"selector": "small", "props": ":;"}]))
    if grouped:
        styler = styler.format_index(tex_escape, axis=1, level=0)
    tex = styler.to_latex(environment="table", position="t", position_float="centering",
                          caption=tex_escape(b.title), label=f"tab:{b.id}", hrules=True,
                          column_format="l" + "r" * len(b.columns), multicol_align="c")
    lines = tex.rstrip("\n").split("\n")
    if grouped:  # the rules under the group row: just below the header line after \toprule
        lines.insert(lines.index(r"\toprule") + 2, _tex_cmidrules(b.columns))
    notes = [f"\\textsuperscript{{{i}}}{tex_escape(n)}" for i, n in enumerate(b.footnotes, 1)]
    notes += [tex_escape(rem) for rem in b.remarks]
    if b.source == "measured":
        notes.append("Rows: " + "; ".join(tex_escape(f"{r.label}: {r.provenance}") for r in b.rows) + ".")
    if notes:
        end = lines.index(r"\end{table}")
        lines[end:end] = [r"\par\smallskip", r"\parbox{\linewidth}{\footnotesize",
                          *[n + r"\\" for n in notes[:-1]], notes[-1] + "}"]
    return "\n".join(lines)


def render_latex(tf: TableFile) -> str:
    """LaTeX (booktabs) of a table file: one ``table`` environment per block."""
    out = [f"% tas-bench leaderboard: {tex_escape(tf.title)}",
           "% requires \\usepackage{booktabs}", ""]
    for b in tf.blocks:
        out += [_block_latex(b), ""]
    for rem in tf.remarks:
        out.append(f"% {rem}")
    return "\n".join(out).rstrip("\n") + "\n"
