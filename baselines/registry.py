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


def system_listing() -> list[dict[str, Any]]:
    """Every system registration, usable or not, in listing order: built-ins and plugins, the
    entry points ignored because their name is taken, then user-registered runs.

    Each entry: ``name``, ``status`` (``"ok"``, ``"broken"`` or ``"ignored"``), ``reason``
    (why it is broken or ignored; ``None`` when ok) and ``card`` (the system card; ``{}`` when
    it cannot be read). ``tas-bench ls systems`` and :func:`tas_bench.list_systems` both print
    this list, so they never disagree."""
    from tas_bench.runtime.registry import one_line

    out: list[dict[str, Any]] = []

    def add(name: str, status: str, reason: str | None = None,
            card: dict[str, Any] | None = None) -> None:
        out.append({"name": name, "status": status, "reason": reason, "card": card or {}})

    for name, _obj, err in SYSTEMS.resolve_all():
        if err is None:
            try:
                card = describe(name)
                if not isinstance(card, dict):
                    raise TypeError(f"its card is a {type(card).__name__}, not an object")
                add(name, "ok", card={**card, "name": name})
                continue
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the others
                err = f"system {name!r} ({SYSTEMS.origin(name)}): cannot describe it ({one_line(exc)})"
        add(name, "broken", err)
    for e in SYSTEMS.ignored():
        add(e.name, "ignored", f"{e.origin}: {e.reason}")
    folder = systems_store.systems_dir()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        name = path.stem
        try:
            rec = systems_store.load_record(name)
            if rec is None:
                raise TasBenchError(f"{name!r} is not a valid system name (lower-case letters, "
                                    f"digits, . _ -), so the record is never used", path=path)
            if not isinstance(rec.get("card", {}), dict):
                raise TasBenchError("'card' is not an object", path=path)
        except TasBenchError as exc:
            add(name, "broken", f"registered system record {exc}")
            continue
        if name in SYSTEMS:
            add(name, "ignored", f"registered system record {path}: the name is taken by a "
                                 f"built-in or plugin system")
            continue
        run = Path(str(rec.get("run")))
        if not run.is_dir():
            add(name, "broken", f"registered system record {path}: its run folder {run} does "
                                f"not exist")
            continue
        add(name, "ok", card={**rec.get("card", {}), "name": name, "registered": True,
                              "run": rec["run"]})
    return out


def list_systems() -> list[dict[str, Any]]:
    """Cards of every usable system (built-ins, entry-point plugins, then user-registered runs),
    in :func:`system_listing` order; broken and ignored registrations are left out (see
    :func:`system_listing` for those)."""
    return [e["card"] for e in system_listing() if e["status"] == "ok"]


def register_run(name: str, run: str | Path) -> dict[str, Any]:
    """Make a trained run folder the named system ``name``; returns the stored record.

    Refuses a built-in name, a folder that is not a finished run of a known system kind, a
    checkpoint whose sha256 differs from the run's record, or a config.json that does not match
    it (:func:`tas_bench.runtime.runs.register_run`).
    """
    return runs.register_run(name, run, expect_role="system", reserved=SYSTEMS.names())
