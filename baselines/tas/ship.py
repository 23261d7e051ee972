"""Package a finished TAS run as a shipped system folder (how the ``tas-*-demo`` folders were made).

``python -m baselines.tas.ship RUN DEST --name NAME --data-command "..." [--steps N]
[--guidance-scale S] [--seed K] [--timestep-spacing leading|trailing|linspace]
[--flipper-guidance G] [--eval REPORT.json] [--notes TEXT]``

``python -m baselines.tas.ship --resample DEST --why "..." [--steps N] [--guidance-scale S]
[--seed K] [--timestep-spacing ...] [--flipper-guidance G]`` changes the default sampling of an
already shipped folder (weights untouched); the card keeps the settings it replaced, with the
reason, under ``sampling_history``.

The folder is written by the kind-generic :func:`tas_bench.runtime.ship.ship` (weights,
configs, run record, ``train_log.csv``, ``card.json``); then the shipped default sampling
(DDIM steps, guidance scale, seed, timestep spacing, flipper guidance: validated by
``TASPipeline.set_sampling``) is written into
DEST's ``tas_config.json`` and the card. Sampling settings are outside the model hash, so the
weights, their sha256 and the revision stay those of the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from baselines.tas.pipeline import CONFIG_FILE, TASPipeline
from tas_bench.runtime.errors import TasBenchError
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
    card["sampling"] = _write_sampling(dest, card["name"], steps=steps,
                                       guidance_scale=guidance_scale, seed=seed,
                                       timestep_spacing=timestep_spacing,
                                       flipper_guidance=flipper_guidance)
    write_json_atomic(dest / "card.json", card)
    return card


def _write_sampling(dest: Path, name: str, **sampling: Any) -> dict[str, Any]:
    """Validate ``sampling``, write it into ``dest``'s tas_config.json; the card's new
    ``sampling`` entry (the caller writes the card)."""
    pipe = TASPipeline.from_pretrained(dest)
    pipe.set_sampling(**sampling)
    write_json_atomic(dest / CONFIG_FILE, pipe._document())
    return pipe.card(name)["sampling"]


def resample_shipped(dest: str | Path, why: str, **sampling: Any) -> dict[str, Any]:
    """Change the default sampling (``steps``, ``guidance_scale``, ``seed``,
    ``timestep_spacing``, ``flipper_guidance``) of a shipped folder ``dest``; the replaced
    settings and ``why`` are appended to the card's ``sampling_history``. Returns the card."""
    if not why.strip():
        raise TasBenchError("--why must say why the shipped sampling changes", field="why")
    dest = Path(dest)
    card = json.loads((dest / "card.json").read_text(encoding="utf-8"))
    old, card["sampling"] = card.get("sampling"), _write_sampling(dest, card["name"], **sampling)
    if card["sampling"] != old:
        card.setdefault("sampling_history", []).append({"replaced": old, "why": why.strip()})
    write_json_atomic(dest / "card.json", card)
    return card


def _sampling_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--steps", type=int, default=None, help="shipped DDIM steps")
    ap.add_argument("--guidance-scale", type=float, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--timestep-spacing", default=None, help="DDIM spacing: leading|trailing|linspace")
    ap.add_argument("--flipper-guidance", type=float, default=None)


def _sampling_args(a: argparse.Namespace) -> dict[str, Any]:
    return {"steps": a.steps, "guidance_scale": a.guidance_scale, "seed": a.seed,
            "timestep_spacing": a.timestep_spacing, "flipper_guidance": a.flipper_guidance}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--resample"]:
        ap = argparse.ArgumentParser(description="change a shipped TAS folder's default sampling")
        ap.add_argument("--resample", dest="dest", required=True, metavar="DEST")
        ap.add_argument("--why", required=True)
        _sampling_options(ap)
        a = ap.parse_args(argv)
        card = resample_shipped(a.dest, a.why, **_sampling_args(a))
    else:
        ap = ship_parser(__doc__.splitlines()[0])
        _sampling_options(ap)
        a = ap.parse_args(argv)
        card = ship_tas(a.run, a.dest, a.name, a.data_command, evaluation=read_evaluation(a.eval),
                        notes=a.notes, **_sampling_args(a))
    print(json.dumps({k: card.get(k) for k in ("name", "revision", "parameters", "sampling")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
