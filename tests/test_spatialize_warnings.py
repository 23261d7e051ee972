"""`tas-bench spatialize` on inputs that cannot carry spatial cues (issue 11, item 8): a silent
and a too-short (1-sample) input give one warning line on stderr and still an output where the
system can make one; TAS, which cannot take a 1-sample input, refuses it in one line naming the
file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_check import run_cli as _cli

from tas_bench.pipeline.commands.spatialize import MIN_CUE_SECONDS, input_warning

SR = 16000
PROMPT = "a dog barks on the left"


def _input(path: Path, x: np.ndarray, sr: int = SR) -> Path:
    sf.write(str(path), x, sr, subtype="FLOAT")
    return path


def _run(system: str, inp: Path, out: Path, capsys) -> tuple[int, str, str]:  # noqa: ANN001
    return _cli(["spatialize", "--system", system, "--input", str(inp), "--prompt", PROMPT,
                 "--out", str(out)], capsys)


def _one_warning(err: str, inp: Path, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tas-bench: warning: {inp}: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_input_warning_hand_cases() -> None:
    tone = 0.1 * np.sin(np.arange(SR) / 3.0)
    assert input_warning(tone, SR) is None
    assert input_warning(tone[:400], SR) is None  # exactly 25 ms
    assert MIN_CUE_SECONDS * SR == 400
    w = input_warning(tone[1:400], SR)
    assert w is not None and "399 sample(s) (24.94 ms) long, shorter than 25 ms" in w
    assert "silent" not in w
    assert "all samples are zero" in input_warning(np.zeros(SR), SR)
    quiet = input_warning(np.full(SR, 10 ** (-90 / 20)), SR)
    assert "peak -90.0 dBFS, below -80 dBFS" in quiet
    assert input_warning(np.full(SR, 10 ** (-79 / 20)), SR) is None
    both = input_warning(np.zeros(1), SR)
    assert "all samples are zero" in both and "1 sample(s)" in both
    assert input_warning(tone[:1102], 44100) is not None  # 24.99 ms at 44.1 kHz


@pytest.mark.parametrize("system", ["mono-mono", "pseudobinaural-demo"])
def test_silent_and_one_sample_inputs_warn_and_still_give_an_output(system: str, tmp_path: Path,
                                                                      capsys) -> None:  # noqa: ANN001
    silent = _input(tmp_path / "silent.wav", np.zeros(SR))
    rc, out, err = _run(system, silent, tmp_path / "s.wav", capsys)
    assert rc == 0, err
    _one_warning(err, silent, "the input is silent (all samples are zero)", "no measurable")
    y, sr = sf.read(str(tmp_path / "s.wav"), always_2d=True)
    assert sr == SR and y.shape == (SR, 2) and not np.any(y)
    one = _input(tmp_path / "one.wav", np.array([0.5]))
    rc, out, err = _run(system, one, tmp_path / "o.wav", capsys)
    assert rc == 0, err
    _one_warning(err, one, "the input is 1 sample(s) (0.06 ms) long, shorter than 25 ms")
    y, _ = sf.read(str(tmp_path / "o.wav"), always_2d=True)
    assert y.shape == (1, 2) and np.isfinite(y).all()
    normal = _input(tmp_path / "n.wav", 0.1 * np.sin(np.arange(SR // 2) / 3.0))
    rc, out, err = _run(system, normal, tmp_path / "n_out.wav", capsys)
    assert rc == 0 and err == "", err


def test_one_silent_sample_is_one_warning_line_naming_both(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    inp = _input(tmp_path / "z.wav", np.zeros(1))
    rc, _, err = _run("mono-mono", inp, tmp_path / "out.wav", capsys)
    assert rc == 0
    _one_warning(err, inp, "all samples are zero", "1 sample(s)")


def test_near_silent_input_warns(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    inp = _input(tmp_path / "hiss.wav", 1e-5 * np.sin(np.arange(SR) / 3.0))
    rc, _, err = _run("mono-mono", inp, tmp_path / "out.wav", capsys)
    assert rc == 0 and (tmp_path / "out.wav").is_file()
    _one_warning(err, inp, "the input is silent (peak -100.0 dBFS, below -80 dBFS)")


def test_tas_refuses_a_one_sample_input_naming_the_file(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """(TAS on a silent input is the shared zero path of every system, tested above.)"""
    one = _input(tmp_path / "one.wav", np.array([0.5]))
    rc, _, err = _run("tas-demo", one, tmp_path / "o.wav", capsys)
    assert rc == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tas-bench: error: {one}: tas-demo cannot "
                                                   "spatialize it: too short: 1 samples"), err
    assert "at least 1600 samples" in lines[0]
    assert not (tmp_path / "o.wav").exists()
