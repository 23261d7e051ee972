"""``tas-bench import``: build a dataset folder from external data.

    tas-bench import spatialsoundqa RECORDS --audio-dir DIR --rir-dir DIR --out OUT
    tas-bench import binaural-folder SRC --out OUT [--splits DIR | --split-file SPLIT=FILE ...]
                                     [--captions FILE] [--sample-rate HZ] [--link]

The logic lives in :mod:`tas_bench.data.importers`; this module only parses arguments and prints the
summary (dataset.json content) as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tas_bench.runtime.errors import TasBenchError

_DESCRIPTION = """Build a tas-bench dataset folder (manifest.jsonl + wavs) from external data.

  spatialsoundqa   render SpatialSoundQA (BAT) QA records: mono sources convolved with the
                   binaural RIRs the records name (fixed pairing), QA items kept
  binaural-folder  real binaural recordings (FAIR-Play binaural_audios/*.wav or *.wav) with
                   optional split lists (.txt or FAIR-Play .h5) and captions (CSV/JSONL)

Every problem found (file and reason) is reported at once; nothing is written until the input
is valid. Prints the dataset summary as JSON."""


def register(subparsers: Any) -> None:
    """Add the ``import`` command and its two importers."""
    p = subparsers.add_parser("import", help="import external data into a dataset folder",
                              description=_DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="importer", metavar="IMPORTER")

    q = sub.add_parser("spatialsoundqa", help="render SpatialSoundQA records (BAT) into clips")
    q.add_argument("records", type=Path, help="JSON list or JSONL of SpatialSoundQA records")
    q.add_argument("--audio-dir", type=Path, required=True,
                   help="folder of mono sources; audio_id is relative to it (.wav/.flac)")
    q.add_argument("--rir-dir", type=Path, required=True,
                   help="folder of binaural RIRs; reverb_id is relative to it (.npy/.wav)")
    q.add_argument("--out", type=Path, required=True, help="dataset folder to create")
    q.add_argument("--sample-rate", type=int, default=32000, help="Hz (default 32000, as BAT)")
    q.add_argument("--rir-sample-rate", type=int, default=32000,
                   help="Hz of .npy RIRs (default 32000)")
    q.add_argument("--duration", type=float, default=10.0, help="clip length in s (default 10)")
    q.add_argument("--limit", type=int, default=None, help="import only the first N clips")
    q.add_argument("--split", default="test", choices=("train", "val", "test"))
    q.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    q.set_defaults(func=run)

    b = sub.add_parser("binaural-folder",
                       help="import real binaural recordings (FAIR-Play / YouTube-Binaural)")
    b.add_argument("src", type=Path, help="folder with binaural_audios/*.wav or *.wav")
    b.add_argument("--out", type=Path, required=True, help="dataset folder to create")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--splits", type=Path, default=None,
                   help="folder holding {train,val,test}.txt or FAIR-Play .h5 split files")
    g.add_argument("--split-file", action="append", default=None, metavar="SPLIT=FILE",
                   help="one split list (repeatable), e.g. test=splits/split1/test.h5")
    b.add_argument("--captions", type=Path, default=None,
                   help="CSV (id,caption) or JSONL captions; they become the prompts")
    b.add_argument("--sample-rate", type=int, default=None,
                   help="resample to this rate (default: keep the files' rate)")
    b.add_argument("--link", action="store_true", help="hard-link audio instead of copying")
    b.add_argument("--name", default=None, help="dataset name (default: source folder name)")
    b.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    b.set_defaults(func=run)
    p.set_defaults(func=_missing_importer, _import_parser=p)


def _missing_importer(args: argparse.Namespace) -> int:
    args._import_parser.print_help()
    return 2


def _split_files(items: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise TasBenchError(f"expected SPLIT=FILE, got {item!r}", field="--split-file")
        if name in out:
            raise TasBenchError(f"split {name!r} given twice", field="--split-file")
        out[name] = Path(path)
    return out


def run(args: argparse.Namespace) -> int:
    """Run the chosen importer and print its summary as JSON."""
    from tas_bench.data.importers import import_binaural_folder, import_spatialsoundqa

    if args.importer == "spatialsoundqa":
        summary = import_spatialsoundqa(
            args.records, args.audio_dir, args.rir_dir, args.out, sample_rate=args.sample_rate,
            limit=args.limit, split=args.split, duration=args.duration,
            rir_sample_rate=args.rir_sample_rate, overwrite=args.overwrite)
    else:
        splits: Any = args.splits
        if args.split_file:
            splits = _split_files(args.split_file)
        summary = import_binaural_folder(
            args.src, args.out, splits=splits, captions=args.captions,
            sample_rate=args.sample_rate, copy=not args.link, name=args.name,
            overwrite=args.overwrite)
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
