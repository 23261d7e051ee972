"""Full validation of a dataset folder: manifest fields and every audio file."""

from __future__ import annotations

from pathlib import Path

from tas_bench.data.manifest import Problem, check_dataset_info, check_manifest_lines
from tas_bench.runtime.audio_io import container_problem, read_audio
from tas_bench.runtime.errors import AudioError, TasBenchError
from tas_bench.runtime.fileio import safe_join


def validate_dataset(root: str | Path, *, check_audio: bool = True) -> tuple[int, list[Problem]]:
    """Check ``root/manifest.jsonl`` and (optionally) every wav it names.

    ``dataset.json`` is checked with the same reader and schema :func:`load_dataset` (and so
    ``score``) uses; its problems carry ``file="dataset.json"``. Audio checks: the file exists
    inside the folder, is readable (WAV or FLAC, as its name and ``dataset.json``'s
    ``config.audio_format`` say: :func:`~tas_bench.runtime.audio_io.container_problem`), has 2 channels, the manifest's sample rate, a duration
    within 1 % (or 1 sample) of the manifest's, finite samples and is not all-silent.
    Returns (number of clips read, problems with file, line and field).
    """
    root = Path(root)
    clips, problems, line_of = check_manifest_lines(root)
    info, info_problems = check_dataset_info(root)
    problems.extend(info_problems)
    if not check_audio:
        return len(clips), problems
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
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
        if why := container_problem(clip.audio, audio.format, config.get("audio_format")):
            problems.append(Problem(line, "audio", why))
        if audio.sample_rate != clip.sample_rate:
            problems.append(Problem(line, "sample_rate", f"manifest says {clip.sample_rate} Hz, "
                                                        f"{clip.audio} is {audio.sample_rate} Hz"))
        tol = max(0.01 * clip.duration, 1.0 / audio.sample_rate)
        if abs(audio.duration - clip.duration) > tol:
            problems.append(Problem(line, "duration", f"manifest says {clip.duration:.4f} s, "
                                                     f"{clip.audio} lasts {audio.duration:.4f} s"))
    return len(clips), sorted(problems, key=lambda p: (p.file, p.line, p.field))

