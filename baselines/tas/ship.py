"""Package a finished TAS run as a shipped system folder (how the ``tas-*-demo`` folders were made).

``python -m baselines.tas.ship RUN DEST --name NAME --data-command "..." [--steps N]
[--guidance-scale S] [--seed K] [--timestep-spacing leading|trailing|linspace]
[--flipper-guidance G] [--eval REPORT.json] [--notes TEXT]``

The folder is written by the kind-generic :func:`tas_bench.runtime.ship.ship` (weights,
configs, run record, ``train_log.csv``, ``card.json``); then the shipped default sampling
(DDIM steps, guidance scale, seed, timestep spacing, flipper guidance: validated by
``TASPipeline.set_sampling``) is written into
DEST's ``tas_config.json`` and the card. Sampling settings are outside the model hash, so the
weights, their sha256 and the revision stay those of the run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from baselines.tas.pipeline import CONFIG_FILE, TASPipeline
from tas_bench.runtime.fileio import write_json_atomic
from tas_bench.runtime.ship import read_evaluation, ship, ship_parser


def ship_tas(run: str | Path, dest: str | Path, name: str, data_command: str, *,
             steps: int | None = None, guidance_scale: float | None = None,
             seed: int | None = None, evaluation: dict[str, Any] | None = None,
             notes: str | None = None, timestep_spacing: str | None = None,
             flipper_guidance: float | None = None) -> dict[str, Any]:
    """Ship ``run`` to ``dest`` with the given default sampling; returns the card."""
    dest = Path(dest)
    card = ship(run, dest, name, data_command, evaluation, notes)
    pipe = TASPipeline.from_pretrained(dest)
    pipe.set_sampling(steps=steps, guidance_scale=guidance_scale, seed=seed,
                      timestep_spacing=timestep_spacing, flipper_guidance=flipper_guidance)
    write_json_atomic(dest / CONFIG_FILE, pipe._document())
    card["sampling"] = pipe.card(name)["sampling"]
    write_json_atomic(dest / "card.json", card)
    return card


def main(argv: list[str] | None = None) -> int:
    ap = ship_parser(__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="shipped DDIM steps")
    ap.add_argument("--guidance-scale", type=float, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--timestep-spacing", default=None, help="DDIM spacing: leading|trailing|linspace")
    ap.add_argument("--flipper-guidance", type=float, default=None)
    a = ap.parse_args(argv)
    evaluation = read_evaluation(a.eval)
    card = ship_tas(a.run, a.dest, a.name, a.data_command, steps=a.steps,
                    guidance_scale=a.guidance_scale, seed=a.seed, evaluation=evaluation,
                    notes=a.notes, timestep_spacing=a.timestep_spacing,
                    flipper_guidance=a.flipper_guidance)
    print(json.dumps({k: card[k] for k in ("name", "revision", "parameters", "sampling")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
