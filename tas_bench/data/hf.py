"""A tas-bench dataset folder as a Hugging Face ``datasets.DatasetDict`` (one split per key).

``load(DIR)`` reads the manifest through :func:`tas_bench.data.manifest.load_dataset` (so every
check of ``tas-bench validate`` applies) and builds the splits in memory: nothing is written to
the dataset folder (its fingerprint is unchanged) or to the Hugging Face cache, and nothing is
downloaded. Columns (one row per clip, in manifest order):

``audio``          an :class:`datasets.Audio` column over the binaural wav (absolute path);
                   read on access (``decode=True``) as ``{"path", "array", "sampling_rate"}``,
                   ``array`` float32 of shape (channels, samples), channel 0 = left, at the
                   file's rate
``id``, ``split``, ``category``, ``prompt``, ``prompt_type``, ``duration`` (s),
``sample_rate`` (Hz), ``n_sources``, ``hrtf`` (name), ``room`` (name), ``seed``
``sources``        list of {label, azimuth, elevation, distance, direction}: degrees (SOFA:
                   azimuth counter-clockwise from the front, 90 = left; elevation up) and metres
``source{k}_label``, ``source{k}_azimuth``, ``source{k}_elevation``, ``source{k}_distance``
                   the same flat, k = 1 .. the most sources of any clip (None where a clip has
                   fewer), as in :func:`tas_bench.load_dataset`'s ``clips`` table
``qa``             list of {question, answer, category, question_type}

Why not ``load_dataset("audiofolder", ...)``: from ``datasets`` 4.0 on, its ``Audio`` feature
encodes and decodes only through ``torchcodec`` (which needs FFmpeg), even for a plain path,
and its ``["array"]`` averages the channels (a binaural clip would come back mono). Here the
audio stays a path in an ``Audio(decode=False)`` column and is decoded with ``soundfile``
(both channels) by a formatting transform; ``ds.reset_format()`` drops it, and
``ds.cast_column("audio", datasets.Audio())`` then hands decoding to ``datasets`` itself where
``torchcodec`` is installed. ``datasets`` is imported only when :func:`load` is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tas_bench.runtime.errors import TasBenchError

if TYPE_CHECKING:
    import datasets

SPLIT_ORDER = ("train", "val", "test")
FLAT_FIELDS = ("label", "azimuth", "elevation", "distance")


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise TasBenchError("Hugging Face `datasets` is not installed: "
                            "`pip install datasets` (or tas-bench[test])",
                            field="datasets") from None
    return datasets


def features(max_sources: int) -> datasets.Features:
    """The columns and types of :func:`load` for a dataset whose clips have at most
    ``max_sources`` sources (the ``audio`` column not yet cast to ``Audio``)."""
    ds = _import_datasets()
    v = ds.Value
    cols: dict[str, Any] = {
        "audio": {"bytes": v("binary"), "path": v("string")},
        "id": v("string"), "split": v("string"), "category": v("string"),
        "prompt": v("string"), "prompt_type": v("string"), "duration": v("float64"),
        "sample_rate": v("int32"), "n_sources": v("int32"), "hrtf": v("string"),
        "room": v("string"), "seed": v("int64"),
        "sources": ds.List({"label": v("string"), "azimuth": v("float64"),
                            "elevation": v("float64"), "distance": v("float64"),
                            "direction": ds.List(v("string"))}),
    }
    for k in range(1, max_sources + 1):
        cols[f"source{k}_label"] = v("string")
        for f in FLAT_FIELDS[1:]:
            cols[f"source{k}_{f}"] = v("float64")
    cols["qa"] = ds.List({"question": v("string"), "answer": v("string"),
                          "category": v("string"), "question_type": v("string")})
    return ds.Features(cols)


def _name(info: dict[str, Any] | None) -> str | None:
    name = (info or {}).get("name")
    return name if isinstance(name, str) else None


def _row(dataset: Any, clip: Any, max_sources: int) -> dict[str, Any]:
    """One clip as a row of :func:`features` (floats as floats, angles in degrees)."""
    row: dict[str, Any] = {
        "audio": {"bytes": None, "path": str(dataset.audio_path(clip))},
        "id": clip.id, "split": clip.split, "category": clip.category, "prompt": clip.prompt,
        "prompt_type": clip.prompt_type, "duration": float(clip.duration),
        "sample_rate": int(clip.sample_rate), "n_sources": len(clip.sources),
        "hrtf": _name(clip.hrtf), "room": _name(clip.room), "seed": clip.seed,
        "sources": [{"label": s.label, "azimuth": float(s.azimuth),
                     "elevation": float(s.elevation), "distance": float(s.distance),
                     "direction": list(s.direction)} for s in clip.sources],
        "qa": [{"question": q.question, "answer": q.answer, "category": q.category,
                "question_type": q.question_type} for q in clip.qa],
    }
    for k in range(1, max_sources + 1):
        s = clip.sources[k - 1] if k <= len(clip.sources) else None
        row[f"source{k}_label"] = s.label if s else None
        for f in FLAT_FIELDS[1:]:
            row[f"source{k}_{f}"] = float(getattr(s, f)) if s else None
    return row


def decode_audio(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Formatting transform of :func:`load`: each ``audio`` value ``{"path", "bytes"}`` becomes
    ``{"path", "array", "sampling_rate"}``, ``array`` float32 (channels, samples) read with
    soundfile, ``sampling_rate`` in Hz. Other columns pass through."""
    if "audio" not in batch:
        return batch
    import io

    import soundfile as sf

    out = []
    for a in batch["audio"]:
        src = io.BytesIO(a["bytes"]) if a.get("bytes") is not None else a["path"]
        x, sr = sf.read(src, dtype="float32", always_2d=True)
        out.append({"path": a.get("path"), "array": x.T.copy(), "sampling_rate": int(sr)})
    return {**batch, "audio": out}


def load(root: str | Path, *, splits: list[str] | None = None,
         decode: bool = True) -> datasets.DatasetDict:
    """The dataset folder ``root`` as a ``datasets.DatasetDict`` keyed by split (``train``,
    ``val``, ``test`` as the manifest names them; ``splits`` keeps only those), columns as in
    the module notes. With ``decode`` the ``audio`` column reads each wav on access (see
    :func:`decode_audio`); without it, it is ``{"path", "bytes": None}``.

    A manifest problem, or a requested split the dataset lacks, raises :class:`TasBenchError`.
    """
    from tas_bench.data.manifest import load_dataset

    data = load_dataset(root)
    ds = _import_datasets()
    present = list(dict.fromkeys(c.split for c in data.clips))
    present.sort(key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s))
    wanted = present if splits is None else list(dict.fromkeys(splits))
    for s in wanted:
        if s not in present:
            raise TasBenchError(f"no clip of split {s!r} (the dataset has: "
                                f"{', '.join(present)})", path=root, field="split")
    max_sources = max((len(c.sources) for c in data.clips), default=0)
    feats = features(max_sources)
    out = {}
    for s in wanted:
        rows = [_row(data, c, max_sources) for c in data.clips if c.split == s]
        columns = {k: [r[k] for r in rows] for k in feats}
        part = ds.Dataset.from_dict(columns, features=feats, split=s)
        part = part.cast_column("audio", ds.Audio(decode=False))
        if decode:
            part.set_transform(decode_audio)
        out[s] = part
    return ds.DatasetDict(out)
