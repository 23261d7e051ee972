"""Import a folder of real binaural recordings (FAIR-Play / YouTube-Binaural use case).

Layout read:

* audio: ``SRC/binaural_audios/*.wav`` (FAIR-Play) if that folder exists, else ``SRC/*.wav``;
  the clip id is the file name without ``.wav``. Every wav must be a regular file (a symlink
  must stay inside SRC), readable, complete (not cut short), non-empty, 2-channel (ch0 = left),
  finite, at a rate in [1000, 384000] Hz; an entry named ``*.wav`` that is a folder, a FIFO or
  an outside symlink is reported, not skipped.
* splits (optional): for each of train/val/test a list of clips, either
  a plain text file (one entry a line; blank lines and ``#`` comments ignored) or a FAIR-Play
  ``.h5`` file whose dataset ``audio`` holds byte-string paths (FAIR-Play's
  ``splits/splitN/{train,val,test}.h5``). An entry may be an id, a file name or a path (absolute
  or relative, any folder): only its last path component, minus ``.wav``, is used. Given as a
  folder holding ``{train,val,test}.{txt,h5}``, or as a mapping split -> file or list of ids.
  Recordings listed in no split are left out (counted as ``unlisted``). Without splits every
  recording goes to ``test``.
* captions (optional): CSV with a header naming an id column (``id``/``clip_id``/``audio``/
  ``file``) and a text column (``caption``/``text``/``prompt``), or JSONL objects with those keys.
  A caption becomes the clip's prompt (``prompt_type`` null); clips without one get ``""``.

Clips get category ``real``, no sources and no QA items.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tas_bench.data.manifest import SPLITS, Clip
from tas_bench.runtime.audio_io import check_sample_rate, read_audio, require_regular_file
from tas_bench.runtime.errors import TasBenchError

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_ID_KEYS = ("id", "clip_id", "audio", "file", "filename")
_TEXT_KEYS = ("caption", "text", "prompt")

SplitSpec = Mapping[str, "str | os.PathLike[str] | Sequence[str]"] | str | os.PathLike[str] | None


def entry_to_id(entry: str) -> str:
    """Clip id named by a split-list entry: last path component without a ``.wav`` suffix."""
    name = entry.strip().replace("\\", "/").rstrip("/").split("/")[-1]
    return name[:-4] if name.lower().endswith(".wav") else name


def read_split_file(path: Path, problems: list[str]) -> list[str]:
    """Entries of one split file (.txt lines or FAIR-Play .h5 dataset ``audio``) as clip ids."""
    try:
        require_regular_file(path, "split file", error=TasBenchError)
    except TasBenchError as exc:
        problems.append(str(exc))
        return []
    if path.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                if "audio" not in f:
                    problems.append(f"{path}: no dataset 'audio' (expected FAIR-Play split layout)")
                    return []
                raw = f["audio"][()]
        except OSError as exc:
            problems.append(f"{path}: unreadable HDF5 file ({exc})")
            return []
        try:
            items = [x.decode("utf-8") if isinstance(x, bytes) else str(x)
                     for x in np.atleast_1d(raw).ravel().tolist()]
        except UnicodeDecodeError:
            problems.append(f"{path}: dataset 'audio' holds non-UTF-8 bytes")
            return []
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: unreadable split file ({exc})")
            return []
        items = [ln for ln in (x.strip() for x in text.splitlines()) if ln and not ln.startswith("#")]
    return [entry_to_id(x) for x in items]


def _resolve_splits(splits: SplitSpec, problems: list[str]) -> dict[str, list[str]] | None:
    if splits is None:
        return None
    if isinstance(splits, (str, os.PathLike)):
        folder = Path(splits)
        if not folder.is_dir():
            problems.append(f"{folder}: split folder not found")
            return {}
        files: dict[str, Any] = {}
        for s in SPLITS:
            found = [folder / f"{s}{ext}" for ext in (".txt", ".h5", ".hdf5")
                     if (folder / f"{s}{ext}").is_file()]
            if len(found) > 1:
                problems.append(f"{folder}: several files for split {s!r}: "
                                f"{', '.join(p.name for p in found)}")
            elif found:
                files[s] = found[0]
        if not files:
            problems.append(f"{folder}: no train/val/test .txt or .h5 split file")
        splits = files
    out: dict[str, list[str]] = {}
    for name, spec in splits.items():
        if name not in SPLITS:
            problems.append(f"split {name!r}: not one of {list(SPLITS)}")
            continue
        if isinstance(spec, (str, os.PathLike)):
            out[name] = read_split_file(Path(spec), problems)
        else:
            out[name] = [entry_to_id(str(x)) for x in spec]
    return out


def read_captions(path: Path, problems: list[str]) -> dict[str, str]:
    """Map clip id -> caption from a CSV (header with id and caption columns) or JSONL file."""
    try:
        require_regular_file(path, "captions file", error=TasBenchError)
    except TasBenchError as exc:
        problems.append(str(exc))
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: unreadable captions file ({exc})")
        return {}
    rows: list[tuple[str, dict[str, Any]]] = []
    if path.suffix.lower() in (".jsonl", ".json"):
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path}: line {n}: malformed JSON ({exc.msg})")
                continue
            if not isinstance(obj, dict):
                problems.append(f"{path}: line {n}: expected a JSON object")
                continue
            rows.append((f"line {n}", obj))
    else:
        reader = csv.DictReader(text.splitlines())
        for n, row in enumerate(reader, start=2):
            rows.append((f"line {n}", row))
    captions: dict[str, str] = {}
    where: dict[str, str] = {}
    for loc, row in rows:
        key = next((k for k in _ID_KEYS if row.get(k) not in (None, "")), None)
        txt = next((k for k in _TEXT_KEYS if k in row), None)
        if key is None or txt is None or not isinstance(row[txt], str):
            problems.append(f"{path}: {loc}: needs an id field ({'/'.join(_ID_KEYS)}) and a text "
                            f"field ({'/'.join(_TEXT_KEYS)})")
            continue
        cid = entry_to_id(str(row[key]))
        if cid in captions:
            problems.append(f"{path}: {loc}: duplicate caption for clip id {cid!r} "
                            f"(first on {where[cid]})")
            continue
        captions[cid] = " ".join(row[txt].split())
        where[cid] = loc
    return captions


def _find_wavs(src: Path, problems: list[str]) -> tuple[Path, list[Path]]:
    """The ``*.wav`` entries of the audio folder that can be imported; every other entry named
    ``*.wav`` (a folder, a FIFO, a broken symlink, a symlink leading outside ``src``) is a
    problem, never skipped silently. A FIFO is refused by ``stat`` alone, never opened."""
    folder = src / "binaural_audios" if (src / "binaural_audios").is_dir() else src
    root = src.resolve()
    wavs = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() != ".wav":
            continue
        if p.is_symlink():
            try:
                target = p.resolve(strict=True)
            except (OSError, RuntimeError):
                problems.append(f"{p}: broken symbolic link")
                continue
            if target != root and root not in target.parents:
                problems.append(f"{p}: symbolic link to {target}, outside the source folder "
                                f"{root} (copy the file into the folder instead)")
                continue
        try:
            require_regular_file(p, "audio file", error=TasBenchError)
        except TasBenchError as exc:
            problems.append(str(exc))
            continue
        wavs.append(p)
    return folder, wavs


def _place(src: Path, dst: Path, copy: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    if not copy:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # another file system or no hard links: fall back to copying
    shutil.copyfile(src, dst)


def import_binaural_folder(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    splits: SplitSpec = None,
    captions: str | os.PathLike[str] | None = None,
    sample_rate: int | None = None,
    copy: bool = True,
    name: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Import real binaural recordings from ``src`` into the dataset folder ``out``.

    Audio is copied (``copy=False``: hard-linked where possible) to ``out/audio/{id}.wav``, or
    resampled to ``sample_rate`` Hz and written as 32-bit float wav. Every problem (missing or
    bad wav, duplicate id, unknown id in a split or caption list, malformed caption line) is
    collected and raised together as one TasBenchError before anything is written.
    Returns the dataset.json content (name, source, importer, counts, ...).
    """
    from tas_bench.data.importers import (
        check_out,
        prepare_out,
        raise_problems,
        write_dataset,
        write_float_wav,
    )

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise TasBenchError("source folder not found", path=src)
    check_out(out, overwrite)
    if sample_rate is not None:
        sample_rate = check_sample_rate(sample_rate, field="sample_rate")
    problems: list[str] = []
    folder, wavs = _find_wavs(src, problems)
    if not wavs and not problems:
        raise TasBenchError("no .wav files found (looked in binaural_audios/ and the folder "
                            "itself)", path=src)
    by_id: dict[str, Path] = {}
    for p in wavs:
        cid = p.name[:-4]
        if not _ID_RE.match(cid):
            problems.append(f"{p}: file name {cid!r} is not a valid clip id "
                            "(letters, digits, _ - . ; max 200 chars)")
        elif cid.lower() in {k.lower() for k in by_id}:
            problems.append(f"{p}: duplicate clip id {cid!r} (differs only in case from "
                            f"{by_id[next(k for k in by_id if k.lower() == cid.lower())]})")
        else:
            by_id[cid] = p
    split_lists = _resolve_splits(splits, problems)
    assignment: dict[str, str] = {}
    if split_lists is None:
        assignment = {cid: "test" for cid in by_id}
    else:
        for split, ids in split_lists.items():
            for cid in ids:
                if cid in assignment:
                    problems.append(f"split {split}: clip id {cid!r} listed twice "
                                    f"(also in {assignment[cid]})")
                elif cid not in by_id:
                    problems.append(f"split {split}: {folder / (cid + '.wav')}: audio file not found")
                else:
                    assignment[cid] = split
    caps = read_captions(Path(captions), problems) if captions is not None else {}
    for cid in caps:
        if cid not in by_id:
            problems.append(f"{captions}: caption for unknown clip id {cid!r}")
    audio_info: dict[str, tuple[int, float]] = {}
    for cid in sorted(assignment):
        try:
            a = read_audio(by_id[cid], channels=2)
        except TasBenchError as exc:
            problems.append(str(exc))
            continue
        audio_info[cid] = (a.sample_rate, a.duration)
    raise_problems(problems, "binaural folder import", src)

    prepare_out(out, overwrite)
    clips: list[Clip] = []
    for cid in sorted(assignment):
        rel = f"audio/{cid}.wav"
        sr, dur = audio_info[cid]
        if sample_rate is not None and int(sample_rate) != sr:
            a = read_audio(by_id[cid], channels=2, sample_rate=int(sample_rate))
            write_float_wav(out / rel, a.samples, a.sample_rate)
            sr, dur = a.sample_rate, a.duration
        else:
            _place(by_id[cid], out / rel, copy)
        clips.append(Clip(
            id=cid, split=assignment[cid], audio=rel, sample_rate=int(sr), duration=float(dur),
            category="real", sources=[], prompt=caps.get(cid, ""), prompt_type=None, qa=[],
            hrtf=None, room=None, seed=None,
            extra={"source_file": str(by_id[cid].relative_to(src))},
        ))
    info = {
        "name": name or src.resolve().name,
        "source": str(src.resolve()),
        "importer": "binaural-folder",
        "splits": ("all clips in test" if split_lists is None
                   else {k: len(v) for k, v in split_lists.items()}),
        "captions": None if captions is None else str(Path(captions).resolve()),
        "n_captioned": sum(cid in caps for cid in assignment),
        "n_unlisted": len(set(by_id) - set(assignment)),
        "resampled_to": sample_rate,
        "copy": "copy" if copy else "hardlink",
    }
    return write_dataset(out, clips, info)
