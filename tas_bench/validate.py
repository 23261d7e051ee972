"""Full validation of a dataset folder: manifest fields and every audio file."""

from __future__ import annotations

from pathlib import Path

from tas_bench.audio_io import read_audio
from tas_bench.errors import AudioError, TasBenchError
from tas_bench.fileio import safe_join
from tas_bench.manifest import Problem, check_manifest


def validate_dataset(root: str | Path, *, check_audio: bool = True) -> tuple[int, list[Problem]]:
    """Check ``root/manifest.jsonl`` and (optionally) every wav it names.

    Audio checks: the file exists inside the folder, is readable, has 2 channels, the
    manifest's sample rate, a duration within 1 % (or 1 sample) of the manifest's, finite samples and
    is not all-silent. Returns (number of clips read, problems with line and field).
    """
    root = Path(root)
    clips, problems = check_manifest(root)
    if not check_audio:
        return len(clips), problems
    line_of = _line_numbers(root)
    for clip in clips:
        line = line_of.get(clip.id, 0)
        try:
            path = safe_join(root, clip.audio, what="audio")
        except TasBenchError as exc:
            problems.append(Problem(line, "audio", exc.reason))
            continue
        try:
            audio = read_audio(path, channels=2, allow_silent=False)
        except AudioError as exc:
            problems.append(Problem(line, "audio", f"{clip.audio}: {exc.reason}"))
            continue
        if audio.sample_rate != clip.sample_rate:
            problems.append(Problem(line, "sample_rate", f"manifest says {clip.sample_rate} Hz, "
                                                        f"{clip.audio} is {audio.sample_rate} Hz"))
        tol = max(0.01 * clip.duration, 1.0 / audio.sample_rate)
        if abs(audio.duration - clip.duration) > tol:
            problems.append(Problem(line, "duration", f"manifest says {clip.duration:.4f} s, "
                                                     f"{clip.audio} lasts {audio.duration:.4f} s"))
    return len(clips), sorted(problems, key=lambda p: (p.line, p.field))


def _line_numbers(root: Path) -> dict[str, int]:
    import json

    out: dict[str, int] = {}
    with open(root / "manifest.jsonl", encoding="utf-8") as f:
        for n, raw in enumerate(f, start=1):
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                out.setdefault(obj["id"], n)
    return out

