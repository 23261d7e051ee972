"""The TAS kinds' loader for the run registry (:mod:`tas_bench.runtime.runs`).

``load_checkpoint_dir(path, *, name=None, expect_sha256=None, device="cpu")`` opens a folder
written by :meth:`~baselines.tas.pipeline.TASPipeline.save_pretrained` (a finished run folder
or a shipped one) and returns a :class:`~baselines.tas.pipeline.TASSystem` with ``card()``,
``checkpoint_sha256`` and ``model_hash``. A ``run.json`` beside the weights (written by the
trainer's ``finish_run``) must agree with the weights' sha256.
"""

from __future__ import annotations

from pathlib import Path

from baselines.tas.config import KINDS
from baselines.tas.pipeline import WEIGHTS_FILE, TASPipeline, TASSystem
from tas_bench.runtime.errors import TasBenchError

__all__ = ["TASSystem", "load_checkpoint_dir", "load_demo", "load_notext_demo", "load_noflip_demo"]

#: The shipped TAS systems and their folders under ``baselines/checkpoints``.
DEMOS = ("tas-demo", "tas-notext-demo", "tas-noflip-demo")
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def load_checkpoint_dir(path: str | Path, *, name: str | None = None,
                        expect_sha256: str | None = None, device: str = "cpu") -> TASSystem:
    """A TAS system from a pipeline folder (refusals: see ``TASPipeline.from_pretrained``)."""
    from tas_bench.runtime.runs import RUN_FILE, read_json

    root = Path(path)
    record = read_json(root / RUN_FILE, "run record") if (root / RUN_FILE).is_file() else {}
    pipe = TASPipeline.from_pretrained(root, device=device, kinds=KINDS, expect_sha256=expect_sha256)
    want = record.get("checkpoint_sha256")
    if want and want != pipe.checkpoint_sha256:
        raise TasBenchError(f"checkpoint sha256 {str(pipe.checkpoint_sha256)[:12]}… does not match "
                            f"run.json ({str(want)[:12]}…): modified or corrupted",
                            path=root / WEIGHTS_FILE)
    if record.get("model_hash") and record["model_hash"] != pipe.config.model_hash():
        raise TasBenchError("tas_config.json does not match the run record (model hash differs)",
                            path=root / RUN_FILE)
    return TASSystem(pipe, name=name or record.get("name") or pipe.config.kind, record=record)


def _shipped(name: str, device: str) -> TASSystem:
    return load_checkpoint_dir(CHECKPOINTS / name, name=name, device=device)


def load_demo(device: str = "cpu") -> TASSystem:
    """The shipped ``tas-demo`` (text + flipper, cpu preset, trained on simulated demo data)."""
    return _shipped("tas-demo", device)


def load_notext_demo(device: str = "cpu") -> TASSystem:
    """The shipped ``tas-notext-demo`` ablation (empty prompts; same network, data and steps)."""
    return _shipped("tas-notext-demo", device)


def load_noflip_demo(device: str = "cpu") -> TASSystem:
    """The shipped ``tas-noflip-demo`` ablation (no flipper; same data and steps)."""
    return _shipped("tas-noflip-demo", device)
