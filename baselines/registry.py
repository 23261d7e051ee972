"""The system registry: built-in systems, entry-point plugins and user-registered runs.

* :data:`SYSTEMS` maps a name to a zero-argument factory returning a :class:`System`
  (lazy ``"module:attr"`` strings; third parties add entries through the entry-point group
  ``tas_bench.systems``).
* The trainable kinds of the baselines (``tas-bench train KIND``) are registered here into
  :data:`tas_bench.runtime.runs.KINDS`, each with its train and load function (lazy references).
* Runs registered with ``tas-bench register NAME RUN`` are loaded by their kind through
  :func:`tas_bench.runtime.runs.load_registered`; records live in :mod:`tas_bench.runtime.systems_store`.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from tas_bench.runtime import runs, systems_store
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.registry import Registry

SYSTEMS: Registry = Registry("system", "tas_bench.systems")
SYSTEMS.register("mono-mono", "baselines.mono_mono:MonoMono")
SYSTEMS.register("pseudobinaural-demo", "baselines.pseudobinaural.system:load_demo")
SYSTEMS.register("pseudobinaural-notext-demo", "baselines.pseudobinaural.system:load_notext_demo")
SYSTEMS.register("tas-demo", "baselines.tas.system:load_demo")
SYSTEMS.register("tas-notext-demo", "baselines.tas.system:load_notext_demo")
SYSTEMS.register("tas-noflip-demo", "baselines.tas.system:load_noflip_demo")

for _kind, _desc in (("pseudobinaural", "text-conditioned PseudoBinaural U-Net"),
                     ("pseudobinaural-notext", "PseudoBinaural U-Net, empty prompts (ablation)")):
    runs.register_kind(runs.KindSpec(
        _kind, role="system", description=_desc,
        train="baselines.pseudobinaural.train:train_pseudobinaural",
        load="baselines.pseudobinaural.system:load_checkpoint_dir"))

for _kind, _desc in (("tas", "TAS latent diffusion on L-R, text + flipper (the paper's system)"),
                     ("tas-notext", "TAS latent diffusion, empty prompts (w/o text ablation)"),
                     ("tas-noflip", "TAS latent diffusion without the flipper (w/o flipper ablation)")):
    runs.register_kind(runs.KindSpec(
        _kind, role="system", description=_desc, train="baselines.tas.train:train_tas",
        load="baselines.tas.system:load_checkpoint_dir"))

CHECKPOINTS_DIR = Path(__file__).resolve().parent / "checkpoints"
DEMO_DIR = CHECKPOINTS_DIR / "pseudobinaural-demo"
#: Built-in systems backed by a shipped checkpoint folder (their card is read from card.json).
SHIPPED = {"pseudobinaural-demo": DEMO_DIR,
           "pseudobinaural-notext-demo": CHECKPOINTS_DIR / "pseudobinaural-notext-demo",
           **{n: CHECKPOINTS_DIR / n for n in ("tas-demo", "tas-notext-demo", "tas-noflip-demo")}}


def known_names() -> list[str]:
    """Built-in, plugin and user-registered system names."""
    return sorted(set(SYSTEMS.names()) | {r["name"] for r in systems_store.list_records()})


def load_system(name: str, device: str = "cpu") -> Any:
    """Instantiate the system ``name``; an unknown name is an error listing the known ones."""
    if name in SYSTEMS:
        factory = SYSTEMS.get(name)
        try:
            takes_device = "device" in inspect.signature(factory).parameters
        except (TypeError, ValueError):
            takes_device = False
        return factory(device=device) if takes_device else factory()
    system = runs.load_registered(name, role="system", device=device)
    if system is None:
        raise TasBenchError(f"unknown system {name!r}; known: {', '.join(known_names())}",
                            hint="`tas-bench register NAME RUN` adds a trained run")
    return system


def describe(name: str) -> dict[str, Any]:
    """The card of system ``name`` (built-in cards are read without loading model weights)."""
    if name in SHIPPED and (SHIPPED[name] / "card.json").is_file():
        card = json.loads((SHIPPED[name] / "card.json").read_text(encoding="utf-8"))
        return {k: v for k, v in card.items() if k not in ("evaluation",)} | {"name": name}
    if name in SYSTEMS:
        obj = SYSTEMS.get(name)
        if hasattr(obj, "describe"):
            return dict(obj.describe())
        return obj().card()
    rec = systems_store.load_record(name)
    if rec is None:
        raise TasBenchError(f"unknown system {name!r}; known: {', '.join(known_names())}")
    return {**rec.get("card", {}), "name": name, "registered": True, "run": rec["run"]}


def list_systems() -> list[dict[str, Any]]:
    """Cards of every system: built-ins, entry-point plugins, then user-registered runs."""
    cards = []
    for name in SYSTEMS.names():
        try:
            cards.append(describe(name))
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the others
            cards.append({"name": name, "description": f"(cannot load: {exc})"})
    for rec in systems_store.list_records():
        if rec["name"] not in SYSTEMS:
            cards.append({**rec.get("card", {}), "name": rec["name"], "registered": True,
                          "run": rec["run"]})
    return cards


def register_run(name: str, run: str | Path) -> dict[str, Any]:
    """Make a trained run folder the named system ``name``; returns the stored record.

    Refuses a built-in name, a folder that is not a finished run of a known system kind, a
    checkpoint whose sha256 differs from the run's record, or a config.json that does not match
    it (:func:`tas_bench.runtime.runs.register_run`).
    """
    return runs.register_run(name, run, expect_role="system", reserved=SYSTEMS.names())
