"""The system registry: built-in systems, entry-point plugins and user-registered runs.

* :data:`SYSTEMS` maps a name to a zero-argument factory returning a :class:`System`
  (lazy ``"module:attr"`` strings; third parties add entries through the entry-point group
  ``tas_bench.systems``).
* :data:`TRAINABLE` maps a kind (``tas-bench train KIND``) to its training function.
* Runs registered with ``tas-bench register NAME RUN`` live in :mod:`tas_bench.systems_store`.
"""

from __future__ import annotations

import inspect
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tas_bench import systems_store
from tas_bench.errors import TasBenchError
from tas_bench.registry import Registry

SYSTEMS: Registry = Registry("system", "tas_bench.systems")
SYSTEMS.register("mono-mono", "baselines.mono_mono:MonoMono")
SYSTEMS.register("pseudobinaural-demo", "baselines.pseudobinaural.system:load_demo")
SYSTEMS.register("pseudobinaural-notext-demo", "baselines.pseudobinaural.system:load_notext_demo")

#: Kinds that ``tas-bench train`` / ``register`` know, with the loader of their run folders.
TRAINABLE = {
    "pseudobinaural": "baselines.pseudobinaural.train:train_pseudobinaural",
    "pseudobinaural-notext": "baselines.pseudobinaural.train:train_pseudobinaural",
}

CHECKPOINTS_DIR = Path(__file__).resolve().parent / "checkpoints"
DEMO_DIR = CHECKPOINTS_DIR / "pseudobinaural-demo"
#: Built-in systems backed by a shipped checkpoint folder (their card is read from card.json).
SHIPPED = {"pseudobinaural-demo": DEMO_DIR,
           "pseudobinaural-notext-demo": CHECKPOINTS_DIR / "pseudobinaural-notext-demo"}


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
    rec = systems_store.load_record(name)
    if rec is None:
        raise TasBenchError(f"unknown system {name!r}; known: {', '.join(known_names())}",
                            hint="`tas-bench register NAME RUN` adds a trained run")
    return _load_registered(rec, device)


def _load_registered(rec: dict[str, Any], device: str = "cpu") -> Any:
    from baselines.pseudobinaural.config import KINDS
    from baselines.pseudobinaural.system import load_checkpoint_dir

    if rec.get("kind") not in KINDS:
        raise TasBenchError(f"registered system {rec.get('name')!r} has unknown kind {rec.get('kind')!r}")
    system = load_checkpoint_dir(rec["run"], name=rec["name"], expect_sha256=rec["checkpoint_sha256"],
                                 device=device, kinds=KINDS)
    if rec.get("model_hash") and system.cfg.model_hash() != rec["model_hash"]:
        raise TasBenchError("config.json changed since registration (model hash differs)",
                            path=Path(rec["run"]) / "config.json")
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

    Refuses a built-in name, a folder that is not a finished run of a known kind, a checkpoint
    whose sha256 differs from the run's record, or a config.json that does not match it.
    """
    from baselines.pseudobinaural.checkpoint import RUN_FILE, read_json
    from baselines.pseudobinaural.config import KINDS
    from baselines.pseudobinaural.system import load_checkpoint_dir

    systems_store.check_name(name)
    if name in SYSTEMS:
        raise TasBenchError(f"{name!r} is a built-in system name; choose another", field="name")
    run_p = Path(run).resolve()
    if not run_p.is_dir():
        raise TasBenchError("run folder not found", path=run_p)
    rec = read_json(run_p / RUN_FILE, "run record (is training finished?)")
    if rec.get("kind") not in KINDS:
        raise TasBenchError(f"checkpoint of another system kind {rec.get('kind')!r}; registrable "
                            f"kinds: {list(KINDS)}", path=run_p / RUN_FILE)
    system = load_checkpoint_dir(run_p, name=name, kinds=KINDS)  # checks sha256, kind, config
    if system.cfg.kind != rec["kind"]:
        raise TasBenchError(f"config.json kind {system.cfg.kind!r} differs from run.json "
                            f"{rec['kind']!r}", path=run_p)
    if rec.get("model_hash") != system.cfg.model_hash():
        raise TasBenchError("config.json does not match the run record (model hash differs)",
                            path=run_p / "config.json")
    card = system.card() | {"name": name}
    record = {
        "name": name,
        "kind": rec["kind"],
        "run": str(run_p),
        "checkpoint_sha256": system.checkpoint_sha256,
        "model_hash": system.cfg.model_hash(),
        "registered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "card": card,
    }
    systems_store.save_record(name, record)
    return record
