"""Full validation of a dataset folder: manifest fields, the dataset's direction words and every
audio file.

Direction words: ``dataset.json`` may say ``"direction_words": "octants"`` (the paper's three
words per source) or ``"horizontal"`` (two words, lateral and frontal; the prompt/QA variant
without above/below, see :mod:`tas_bench.data.prompts`); without the field (older or imported
datasets) the set is ``horizontal`` when every source has two words, else ``octants``. Every
source must then have that many words, and a horizontal dataset may hold no prompt of type F
and no above/below word (:data:`~tas_bench.data.geometry.VERTICAL_WORDS`: above, below,
higher, lower) in a prompt, question or answer, once the clip's source labels are taken out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tas_bench.data.geometry import DIRECTION_SETS, HORIZONTAL, OCTANTS, VERTICAL_WORDS
from tas_bench.data.manifest import (
    DATASET_INFO_NAME,
    Clip,
    Problem,
    check_dataset_info,
    check_manifest_lines,
)
from tas_bench.runtime.audio_io import container_problem, read_audio
from tas_bench.runtime.errors import AudioError, TasBenchError
from tas_bench.runtime.fileio import safe_join


def validate_dataset(root: str | Path, *, check_audio: bool = True) -> tuple[int, list[Problem]]:
    """Check ``root/manifest.jsonl`` and (optionally) every wav it names.

    ``dataset.json`` is checked with the same reader and schema :func:`load_dataset` (and so
    ``score``) uses; its problems carry ``file="dataset.json"``. The direction
    words are checked by :func:`check_direction_words`. Audio checks: the file exists
    inside the folder, is readable (WAV or FLAC, as its name and ``dataset.json``'s
    ``config.audio_format`` say: :func:`~tas_bench.runtime.audio_io.container_problem`), has 2 channels, the manifest's sample rate, a duration
    within 1 % (or 1 sample) of the manifest's, finite samples and is not all-silent.
    Returns (number of clips read, problems with file, line and field).
    """
    root = Path(root)
    clips, problems, line_of = check_manifest_lines(root)
    info, info_problems = check_dataset_info(root)
    problems.extend(info_problems)
    problems.extend(check_direction_words(clips, info, line_of))
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



def _vertical_words(text: str, labels: list[str]) -> list[str]:
    """The above/below words of ``text`` outside the source labels it names (sorted)."""
    t = text.lower()
    for label in sorted(labels, key=len, reverse=True):
        if label.strip():
            t = t.replace(label.strip().lower(), " ")
    return sorted(set(re.findall(r"[a-z]+", t)) & set(VERTICAL_WORDS))


def dataset_direction_set(clips: list[Clip], info: dict[str, Any]) -> str:
    """The direction set of a dataset: ``dataset.json``'s ``direction_words`` when it is one of
    :data:`~tas_bench.data.geometry.DIRECTION_SETS`, else ``horizontal`` when the clips have
    sources and every one has two direction words, else ``octants``."""
    declared = info.get("direction_words")
    if declared in DIRECTION_SETS:
        return str(declared)
    sizes = {len(s.direction) for c in clips for s in c.sources}
    return HORIZONTAL if sizes == {2} else OCTANTS


def check_direction_words(clips: list[Clip], info: dict[str, Any],
                          line_of: dict[str, int]) -> list[Problem]:
    """Problems of the dataset's direction words (module docstring): a ``direction_words``
    value in ``dataset.json`` that is not a known set, sources with the other set's number of
    words, and in a horizontal dataset type-F prompts and above/below words in prompts,
    questions and answers. Each problem names the manifest line and field."""
    problems: list[Problem] = []
    declared = info.get("direction_words")
    if "direction_words" in info and declared not in DIRECTION_SETS:
        problems.append(Problem(0, "direction_words", f"{declared!r} is not one of "
                                f"{list(DIRECTION_SETS)}", file=DATASET_INFO_NAME))
    dset = dataset_direction_set(clips, info)
    need = 2 if dset == HORIZONTAL else 3
    why = (f"dataset.json says direction_words {dset!r}" if declared in DIRECTION_SETS
           else f"dataset.json declares no direction_words, so the dataset is read as {dset!r}")
    for clip in clips:
        line = line_of.get(clip.id, 0)
        for i, src in enumerate(clip.sources):
            if len(src.direction) != need:
                problems.append(Problem(line, f"sources[{i}].direction",
                                        f"{src.direction} has {len(src.direction)} words; {why}, "
                                        f"which needs {need}"))
        if dset != HORIZONTAL:
            continue
        labels = [s.label for s in clip.sources]
        if clip.prompt_type == "F":
            problems.append(Problem(line, "prompt_type", "type F (above/below) in a horizontal "
                                                         "dataset"))
        texts = [("prompt", clip.prompt)] + [
            (f"qa[{k}].{part}", getattr(q, part)) for k, q in enumerate(clip.qa)
            for part in ("question", "answer")]
        for fld, text in texts:
            found = _vertical_words(text, labels)
            if found:
                problems.append(Problem(line, fld, f"above/below word(s) {', '.join(found)} in a "
                                                   f"horizontal dataset: {text!r}"))
    return problems
