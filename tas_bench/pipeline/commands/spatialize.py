"""``tas-bench spatialize --system NAME --input mono.wav --prompt "..." --out out.wav``.

The input should be mono (the mix m = L + R); a 2-channel file is taken as L and R and summed.
Any sample rate is accepted (resampled to the system's rate); the output is at the system's
rate, written as 32-bit float. ``--out`` must not be the input file (also not through a
symlink or hard link) nor a folder; an existing output file is replaced.

Inputs that cannot carry spatial cues get one warning line on stderr, and the output is still
written wherever the system can make one:
  - silent (the peak of the mix below -80 dBFS; all zero: every system answers silence);
  - shorter than 25 ms (one 400-sample STFT window at 16 kHz, the shortest span the signal and
    cues metrics analyse), e.g. a 1-sample file: mono-mono and pseudobinaural answer with an
    output as long as the input.
A system that cannot take an input refuses it with an error naming the file (exit 2): the
TAS systems need 0.1 s of non-silent audio.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: Inputs shorter than this (seconds) get a warning: one 400-sample STFT window at 16 kHz.
MIN_CUE_SECONDS = 0.025


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spatialize", help="spatialize one mono file with a text prompt",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", required=True)
    p.add_argument("--input", required=True, help="mono wav (the mix)")
    p.add_argument("--prompt", default="", help="text prompt (may be empty)")
    p.add_argument("--out", required=True, help="output binaural wav")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def spatialize_file(system_name: str, input_path: str, prompt: str, out_path: str,
                    device: str = "cpu") -> dict:
    """Spatialize one file; returns {system, revision, sample_rate, seconds, out, warning}
    (``warning``: why the input cannot carry spatial cues, or None)."""
    from baselines.registry import load_system
    from tas_bench.runtime.audio_io import check_output_file, read_audio, write_wav
    from tas_bench.runtime.errors import TasBenchError

    # before any work: never overwrite the input (also through a symlink or hard link)
    check_output_file(out_path, inputs=(input_path,))
    audio = read_audio(input_path)
    if audio.channels > 2:
        raise TasBenchError(f"expected a mono (or stereo) file, found {audio.channels} channels",
                            path=input_path)
    mono = audio.samples.sum(axis=0)
    system = load_system(system_name, device=device)
    try:
        y = system.spatialize(mono, prompt, audio.sample_rate)
    except TasBenchError as exc:
        if not (exc.field or "").startswith("mono input"):
            raise
        raise TasBenchError(f"{system.name} cannot spatialize it: {exc.reason}",
                            path=input_path) from None
    rate = system.output_rate(audio.sample_rate)
    write_wav(out_path, y, rate, subtype="FLOAT")
    return {"system": system.name, "revision": system.card()["revision"], "sample_rate": rate,
            "seconds": y.shape[1] / rate, "out": str(out_path),
            "warning": input_warning(mono, audio.sample_rate)}


def input_warning(mono: np.ndarray, sample_rate: int) -> str | None:
    """Why a mono input (samples at ``sample_rate`` Hz) cannot carry spatial cues: silent
    (peak below :data:`~tas_bench.data.user_sources.SILENCE_FLOOR_DBFS`) and/or shorter than
    :data:`MIN_CUE_SECONDS`; None when it can."""
    import numpy as np

    from tas_bench.data.user_sources import SILENCE_FLOOR_DBFS

    problems = []
    peak = float(np.max(np.abs(mono)))
    if peak == 0:
        problems.append("the input is silent (all samples are zero): the output is silent")
    elif peak < 10 ** (SILENCE_FLOOR_DBFS / 20):
        problems.append(f"the input is silent (peak {20 * math.log10(peak):.1f} dBFS, below "
                        f"{SILENCE_FLOOR_DBFS:g} dBFS)")
    n = int(mono.shape[-1])
    if n < MIN_CUE_SECONDS * sample_rate:
        problems.append(f"the input is {n} sample(s) ({1000 * n / sample_rate:.2f} ms) long, "
                        f"shorter than {1000 * MIN_CUE_SECONDS:g} ms (one STFT window of the "
                        f"signal and cues metrics)")
    if not problems:
        return None
    return "; ".join(problems) + "; it carries no measurable spatial cues"


def run(args: argparse.Namespace) -> int:
    r = spatialize_file(args.system, args.input, args.prompt, args.out, args.device)
    if r["warning"]:
        print(f"tas-bench: warning: {args.input}: {r['warning']}", file=sys.stderr)
    print(f"{r['out']}: {r['seconds']:.2f} s at {r['sample_rate']} Hz by {r['system']} "
          f"({r['revision']})")
    return 0
