"""``tas-bench spatialize --system NAME --input mono.wav --prompt "..." --out out.wav``.

The input should be mono (the mix m = L + R); a 2-channel file is taken as L and R and summed.
Any sample rate is accepted (resampled to the system's rate); the output is at the system's
rate, written as 32-bit float. ``--out`` must not be the input file (also not through a
symlink or hard link) nor a folder; an existing output file is replaced.
"""

from __future__ import annotations

import argparse


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
    """Spatialize one file; returns {system, revision, sample_rate, seconds, out}."""
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
    y = system.spatialize(mono, prompt, audio.sample_rate)
    rate = system.output_rate(audio.sample_rate)
    write_wav(out_path, y, rate, subtype="FLOAT")
    return {"system": system.name, "revision": system.card()["revision"], "sample_rate": rate,
            "seconds": y.shape[1] / rate, "out": str(out_path)}


def run(args: argparse.Namespace) -> int:
    r = spatialize_file(args.system, args.input, args.prompt, args.out, args.device)
    print(f"{r['out']}: {r['seconds']:.2f} s at {r['sample_rate']} Hz by {r['system']} "
          f"({r['revision']})")
    return 0
