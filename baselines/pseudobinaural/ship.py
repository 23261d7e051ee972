"""Package a finished PseudoBinaural run as a shipped system folder (how
``pseudobinaural-demo`` was made): the kind-generic :func:`tas_bench.runtime.ship.ship` with the
systems' 25 MB limit.

``python -m baselines.pseudobinaural.ship RUN DEST --data-command "..." [--eval REPORT.json]``
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tas_bench.runtime import ship as _ship

#: Largest checkpoint folder a shipped system may be (bytes).
MAX_SHIPPED_BYTES = 25 * 2**20


def ship(run: str | Path, dest: str | Path, name: str, data_command: str,
         evaluation: dict[str, Any] | None = None, notes: str | None = None) -> dict[str, Any]:
    """Copy the run's files into ``dest`` and write its card; returns the card."""
    return _ship.ship(run, dest, name, data_command, evaluation, notes,
                      max_bytes=MAX_SHIPPED_BYTES)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--name" not in args:
        args += ["--name", "pseudobinaural-demo"]
    return _ship.main(args, max_bytes=MAX_SHIPPED_BYTES)


if __name__ == "__main__":
    sys.exit(main())
