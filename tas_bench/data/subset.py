"""A dataset folder holding some clips of another: e.g. the single-source test clips that the
cue targets (left/right, octant) are defined on, so that a system is generated and scored on
them alone.

The subset is itself a valid dataset folder: its ``manifest.jsonl`` holds the kept lines
byte for byte (so its fingerprint is the fingerprint of exactly those clips and files), its
``dataset.json`` is the source's, and its audio is hard-linked where the file system allows
(copied otherwise; a symbolic link would point out of the folder, which the manifest check
refuses).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from tas_bench.data.manifest import DATASET_INFO_NAME, MANIFEST_NAME, Clip, load_dataset
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import write_text_atomic


def single_source_test(clip: Clip) -> bool:
    """True for a test clip with one source (where the cues evaluator scores left/right and octant)."""
    return clip.split == "test" and len(clip.sources) == 1


def subset_dataset(data: str | Path, out: str | Path, keep: Callable[[Clip], bool]) -> Path:
    """Write the clips of dataset ``data`` for which ``keep(clip)`` is true into ``out``.

    Returns ``out``. An ``out`` that already holds a manifest must hold exactly the subset
    that would be written (a rerun), else the call is refused instead of mixing two subsets.
    Raises :class:`TasBenchError` when no clip is kept.
    """
    ds = load_dataset(data)
    out = Path(out)
    kept = [c for c in ds.clips if keep(c)]
    if not kept:
        raise TasBenchError("no clip of the dataset matches the subset", path=ds.root)
    ids = {c.id for c in kept}
    lines = []
    with open(ds.root / MANIFEST_NAME, encoding="utf-8") as f:
        for line in f:
            if line.strip() and json.loads(line)["id"] in ids:
                lines.append(line if line.endswith("\n") else line + "\n")
    text = "".join(lines)
    manifest = out / MANIFEST_NAME
    if manifest.exists() and manifest.read_text(encoding="utf-8") != text:
        raise TasBenchError("holds another subset; choose an empty folder", path=out)
    out.mkdir(parents=True, exist_ok=True)
    for c in kept:
        src, dst = ds.audio_path(c), out / c.audio
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy(src, dst)
    if (ds.root / DATASET_INFO_NAME).exists():
        shutil.copy(ds.root / DATASET_INFO_NAME, out / DATASET_INFO_NAME)
    write_text_atomic(manifest, text)  # last: a folder with a manifest is a finished subset
    return out
