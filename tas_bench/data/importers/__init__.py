"""Importers: turn external data into a tas-bench dataset folder (manifest.jsonl + wavs).

* :func:`import_spatialsoundqa` - SpatialSoundQA QA records + mono sources + binaural RIRs,
  rendered into binaural clips (BAT's recipe).
* :func:`import_binaural_folder` - a folder of real binaural recordings (FAIR-Play /
  YouTube-Binaural layout) with optional split lists and captions.

Both validate everything first and report every problem (file and reason) in one
:class:`~tas_bench.runtime.errors.TasBenchError`; nothing is written to ``out`` before validation passes,
and ``manifest.jsonl`` is written last, so an interrupted import never looks complete.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tas_bench import __version__
from tas_bench.data.manifest import (
    DATASET_INFO_NAME,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    SPLITS,
    Clip,
    write_manifest,
)
from tas_bench.runtime.audio_io import write_wav
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import write_json_atomic

#: How many problems one error message lists before summarising the rest.
MAX_LISTED_PROBLEMS = 20


def raise_problems(problems: list[str], what: str, path: str | Path) -> None:
    """Raise one TasBenchError listing ``problems`` (each "file: reason"); no-op if empty."""
    if not problems:
        return
    shown = "; ".join(problems[:MAX_LISTED_PROBLEMS])
    more = (f" (+{len(problems) - MAX_LISTED_PROBLEMS} more)"
            if len(problems) > MAX_LISTED_PROBLEMS else "")
    n = len(problems)
    raise TasBenchError(f"{n} problem{'s' if n != 1 else ''} in {what}: {shown}{more}", path=path)


def write_float_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write ``samples`` (channels, T) as a 32-bit float WAV, atomically and byte-reproducibly
    (see :func:`tas_bench.runtime.audio_io.write_wav`)."""
    write_wav(path, np.asarray(samples, dtype=np.float32), sample_rate, subtype="FLOAT")


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an output path that is a file, or a folder holding a dataset (unless overwrite)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TasBenchError("output path exists and is not a folder", path=out)
    if (out / MANIFEST_NAME).exists() and not overwrite:
        raise TasBenchError("output folder already holds a dataset",
                            path=out, hint="choose another folder or pass --overwrite")


def prepare_out(out: Path, overwrite: bool) -> None:
    """Make ``out`` ready to receive a dataset (see :func:`check_out`).

    With ``overwrite`` an old manifest, dataset.json and audio/ folder are removed first.
    """
    out = Path(out)
    check_out(out, overwrite)
    for name in (MANIFEST_NAME, DATASET_INFO_NAME):
        if (out / name).exists():
            (out / name).unlink()
    if overwrite and (out / "audio").is_dir():
        shutil.rmtree(out / "audio")
    out.mkdir(parents=True, exist_ok=True)


def split_counts(clips: list[Clip]) -> dict[str, int]:
    """Number of clips per split (every split listed, zeros included)."""
    return {s: sum(c.split == s for c in clips) for s in SPLITS}


def write_dataset(out: Path, clips: list[Clip], info: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``dataset.json`` then ``manifest.jsonl`` into ``out``; return the info written."""
    full = {
        **info,
        "counts": split_counts(clips),
        "n_clips": len(clips),
        "manifest_version": MANIFEST_VERSION,
        "tas_bench_version": __version__,
    }
    write_json_atomic(Path(out) / DATASET_INFO_NAME, full)
    write_manifest(out, clips)
    return full


from tas_bench.data.importers.binaural_folder import import_binaural_folder  # noqa: E402
from tas_bench.data.importers.spatialsoundqa import import_spatialsoundqa  # noqa: E402

__all__ = ["check_out", "import_binaural_folder", "import_spatialsoundqa", "prepare_out", "raise_problems",
           "write_dataset"]
