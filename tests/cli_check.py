"""Running the CLI in-process and checking its one-line user errors (shared by the tests)."""

from __future__ import annotations

import pytest

from tas_bench.pipeline.cli import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``tas-bench ARGV`` run in this process."""
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc: int, err: str, *needles: str) -> str:
    """Assert a user error: exit 2, no traceback, one ``tas-bench: error: ...`` line holding
    every needle; returns that line."""
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tas-bench: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]
