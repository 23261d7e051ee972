"""The generation runner: a system's predictions for every clip of a dataset split.

``generate_predictions(system, data, out, split)`` writes ``out/{id}.wav`` (binaural, 32-bit
float, at the system's sample rate; rate-agnostic systems answer at the clip's rate) and
``out/system.json`` (the system card, dataset fingerprint, split). The mono input of every clip
is ``m = L + R`` of its reference. Each wav is written atomically, so a killed run leaves only
complete files (a rerun first removes the temporary files a killed run left), and a rerun
skips the clips whose wav already exists and reads back whole. A folder
holding predictions of another system revision or dataset is refused rather than mixed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from tas_bench.data.manifest import SPLITS, dataset_fingerprint, load_dataset
from tas_bench.runtime.audio_io import check_output_folder, probe_audio, read_audio, write_wav
from tas_bench.runtime.errors import AudioError, TasBenchError
from tas_bench.runtime.fileio import sweep_orphans, write_json_atomic

SYSTEM_FILE = "system.json"


def _complete(path: Path) -> bool:
    """Whether a prediction already written reads back whole (2 channels, frames, not cut)."""
    if not path.exists():
        return False
    try:
        info = probe_audio(path)
    except AudioError:
        return False
    return info.channels == 2 and info.frames > 0


def _check_targets(out: Path, ds: Any, clips: list[Any]) -> None:
    """Before any work: every ``out/{id}.wav`` must be writable by a rename (not a folder or a
    FIFO) and must not be one of the dataset's reference files (an ``--out`` inside the dataset
    folder could otherwise overwrite the references)."""
    refs = set()
    for c in ds.clips:
        try:
            refs.add(ds.audio_path(c))
        except TasBenchError:
            continue
    for c in clips:
        target = out / f"{c.id}.wav"
        if target.exists() and not target.is_file():
            raise TasBenchError("exists and is not a regular file; remove it", path=target)
        if target.resolve() in refs:
            raise TasBenchError("is a reference file of the dataset; choose an --out folder "
                                "outside the dataset's audio", path=target)


def prediction_identity(card: dict[str, Any]) -> dict[str, Any]:
    """What makes two prediction folders of a system interchangeable: its revision (weights and
    model config) and its sampling settings (DDIM steps, guidance, seed, ...: outside the
    revision, but they change every output). ``None`` where a card has no sampling."""
    return {"revision": card.get("revision"), "sampling": card.get("sampling")}


def _check_out(out: Path, meta: dict[str, Any]) -> None:
    path = out / SYSTEM_FILE
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TasBenchError("malformed system.json in the predictions folder", path=path) from None
    old_system = old.get("system") if isinstance(old.get("system"), dict) else {}
    was = {**prediction_identity(old_system), "dataset_fingerprint": old.get("dataset_fingerprint"),
           "split": old.get("split")}
    now = {**prediction_identity(meta["system"]), "dataset_fingerprint": meta["dataset_fingerprint"],
           "split": meta["split"]}
    for key, what in (("revision", "system revision"), ("sampling", "sampling setting"),
                      ("dataset_fingerprint", "dataset"), ("split", "split")):
        a, b = was[key], now[key]
        if a != b:
            raise TasBenchError(f"holds predictions of another {what} ({a!r}, now {b!r}); use an "
                                "empty --out folder", path=out)


def generate_predictions(system_name: str | Any, data: str | Path, out: str | Path,
                         split: str = "test", batch_size: int = 8, progress: bool = True,
                         device: str = "cpu") -> dict[str, Any]:
    """Spatialize every clip of ``split``; returns a summary (counts, seconds, rates, paths).

    ``system_name`` is a registered name or an already loaded System object.
    """
    from tqdm.auto import tqdm

    from baselines.registry import load_system

    if split not in SPLITS:
        raise TasBenchError(f"unknown split {split!r}; expected one of {list(SPLITS)}", field="split")
    if batch_size < 1:
        raise TasBenchError("batch size must be >= 1", field="batch_size")
    out = Path(out)
    check_output_folder(out, inputs=(data,), file_names=(SYSTEM_FILE,))
    ds = load_dataset(data)
    clips = ds.split(split)
    if not clips:
        raise TasBenchError(f"no clips in split {split!r}", path=ds.root)
    _check_targets(out, ds, clips)
    sweep_orphans(out)
    system = load_system(system_name, device=device) if isinstance(system_name, str) else system_name
    meta = {
        "system": system.card(),
        "dataset": str(ds.root),
        "dataset_fingerprint": dataset_fingerprint(ds.root, ds.clips),
        "split": split,
        "mono_input": "L + R of the reference clip",
        "format": "wav FLOAT, binaural (ch0 = left)",
    }
    _check_out(out, meta)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / SYSTEM_FILE, meta)
    todo = [c for c in clips if not _complete(out / f"{c.id}.wav")]
    skipped = len(clips) - len(todo)
    t0 = time.time()
    audio_s = 0.0
    bar = tqdm(total=len(clips), initial=skipped, disable=not progress, unit="clip",
               desc=f"generate {meta['system']['name']}", dynamic_ncols=True)
    for b in range(0, len(todo), batch_size):
        batch = todo[b: b + batch_size]
        by_rate: dict[int, list[Any]] = {}
        for clip in batch:
            ref = read_audio(ds.audio_path(clip), channels=2)
            by_rate.setdefault(ref.sample_rate, []).append((clip, ref.samples[0] + ref.samples[1]))
        for rate, items in by_rate.items():
            preds = system.spatialize_batch([m for _, m in items], [c.prompt for c, _ in items], rate)
            out_rate = system.output_rate(rate)
            for (clip, _), y in zip(items, preds):
                write_wav(out / f"{clip.id}.wav", np.asarray(y, dtype=np.float32), out_rate,
                          subtype="FLOAT")
                audio_s += y.shape[1] / out_rate
                bar.update(1)
    bar.close()
    wall = time.time() - t0
    return {"system": meta["system"]["name"], "revision": meta["system"].get("revision"),
            "out": str(out), "split": split, "clips": len(clips), "generated": len(todo),
            "skipped": skipped, "audio_seconds": audio_s, "wall_seconds": wall,
            "realtime_factor": audio_s / wall if wall > 0 else None}
