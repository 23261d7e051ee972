"""``tas-bench reproduce``: simulate -> generate (every registered system) -> score -> leaderboard.

Layout under OUT::

    data/                     the benchmark dataset (simulated)
    predictions/SYSTEM/       {id}.wav + system.json per system
    results/SYSTEM/           results.json + per_clip.csv per system
    board/                    leaderboard tables (md, csv, tex) and index.html
    stages.json               what each completed stage was run with

Each stage is skipped when its output is complete *and* was produced from the same inputs
(config hash, dataset fingerprint, system revision); otherwise it runs again. Generation and
scoring are themselves resumable/cached, so an interrupted run picks up where it stopped.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import read_json_object, stable_hash, write_json_atomic

#: Seed of the benchmark set that `reproduce` simulates. It differs from the seed the shipped
#: PseudoBinaural checkpoint was trained on (0), so its test clips are unseen.
BENCHMARK_SEED = 2026


@dataclass
class StageReport:
    name: str
    status: str  # "ran" | "skipped"
    seconds: float
    detail: str = ""


@dataclass
class ReproduceSummary:
    out: Path
    stages: list[StageReport] = field(default_factory=list)
    board: Path | None = None


def _load_stages(out: Path) -> dict[str, Any]:
    p = out / "stages.json"
    if not p.is_file():
        return {}
    try:
        return read_json_object(p)
    except TasBenchError:
        return {}  # a broken stamp only means the stages run again


def _stale_predictions(pred: Path, fingerprint: str, card: dict) -> bool:
    """True when ``pred`` holds predictions made for another dataset, system revision or
    sampling setting (:func:`~tas_bench.pipeline.generate.prediction_identity`)."""
    from tas_bench.pipeline.generate import prediction_identity

    path = pred / "system.json"
    if not path.is_file():
        return False
    try:
        meta = read_json_object(path)
        old_fp = meta.get("dataset_fingerprint")
        old_id = prediction_identity(meta.get("system") or {})
    except (TasBenchError, AttributeError):
        return True
    return old_fp != fingerprint or old_id != prediction_identity(card)


def reproduce(preset: str, out: Path, *, seed: int = BENCHMARK_SEED, systems: list[str] | None = None,
              evaluators: list[str] | None = None, n_test: int | None = None,
              progress: bool = True, log=print) -> ReproduceSummary:  # noqa: ANN001
    """Run the whole chain for ``preset`` into ``out``; see the module docstring."""
    from baselines.registry import system_listing
    from leaderboard.build import build_leaderboard
    from tas_bench.data.manifest import MANIFEST_NAME, dataset_fingerprint
    from tas_bench.data.simulate import default_workers, simulate_dataset
    from tas_bench.pipeline.generate import generate_predictions
    from tas_bench.pipeline.scoring import ScoreOptions, score

    listing = system_listing()
    cards = [e["card"] for e in listing if e["status"] == "ok"]
    unusable = {e["name"]: e["reason"] for e in listing if e["status"] == "broken"}
    names = systems or [c["name"] for c in cards]
    known = {c["name"] for c in cards}
    for name in names:
        if name in unusable:
            raise TasBenchError(f"system {name!r} cannot be used: {unusable[name]}")
        if name not in known:
            raise TasBenchError(f"unknown system {name!r}; known: {', '.join(sorted(known))}")
    if not systems:
        for name, reason in unusable.items():
            log(f"      warning: broken system registration {name!r} left out: {reason}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stamps = _load_stages(out)
    summary = ReproduceSummary(out=out)

    def stamp(key: str, value: dict[str, Any]) -> None:
        stamps[key] = value
        write_json_atomic(out / "stages.json", stamps)

    # 1. dataset -------------------------------------------------------------------------
    data = out / "data"
    sim_cfg = {"preset": preset, "seed": seed, "n_train": 0, "n_val": 0, "n_test": n_test}
    t0 = time.perf_counter()
    prev = stamps.get("simulate", {})
    fp = None
    if (data / MANIFEST_NAME).is_file() and prev.get("config") == stable_hash(sim_cfg):
        fp = dataset_fingerprint(data)
    if fp is not None and fp == prev.get("fingerprint"):
        summary.stages.append(StageReport("simulate", "skipped", time.perf_counter() - t0,
                                          f"{data} unchanged"))
    else:
        sim = simulate_dataset(data, preset=preset, seed=seed, n_train=0, n_val=0, n_test=n_test,
                               progress=progress, force=True,
                               workers=default_workers())
        fp = dataset_fingerprint(data)
        stamp("simulate", {"config": stable_hash(sim_cfg), "fingerprint": fp})
        summary.stages.append(StageReport("simulate", "ran", time.perf_counter() - t0,
                                          f"{getattr(sim, 'n_clips', '?')} clips"))
    log(f"[1/4] dataset {data} ({summary.stages[-1].status}, fingerprint {fp[:12]})")

    # 2-3. generate and score each system --------------------------------------------------
    cards_by_name = {c["name"]: c for c in cards}
    for name in names:
        pred = out / "predictions" / name
        t0 = time.perf_counter()
        if _stale_predictions(pred, fp, cards_by_name[name]):
            shutil.rmtree(pred)
            log(f"      removed predictions of {name} made for another dataset, revision or "
                "sampling setting")
        gen = generate_predictions(name, data, pred, split="test", progress=progress)
        status = "ran" if gen.get("generated") else "skipped"
        summary.stages.append(StageReport(f"generate {name}", status, time.perf_counter() - t0,
                                          f"{gen.get('generated', 0)} written, "
                                          f"{gen.get('skipped', 0)} already there"))
        log(f"[2/4] predictions {pred} ({summary.stages[-1].seconds:.1f} s)")
        res = out / "results" / name
        t0 = time.perf_counter()
        s = score(ScoreOptions(data=data, pred=pred, out=res, evaluators=evaluators,
                               progress=progress))
        if s.invalid:
            raise TasBenchError(f"{len(s.invalid)} invalid prediction(s) from system {name}; "
                                f"see {res / 'results.json'}")
        status = "ran" if s.cache_misses else "cached"
        summary.stages.append(StageReport(f"score {name}", status, time.perf_counter() - t0,
                                          f"cache hits {s.cache_hits}, misses {s.cache_misses}"))
        log(f"[3/4] results {res} ({summary.stages[-1].seconds:.1f} s, cache hits {s.cache_hits})")

    # 4. leaderboard -------------------------------------------------------------------------
    t0 = time.perf_counter()
    board = build_leaderboard(out / "results", out / "board")
    summary.stages.append(StageReport("leaderboard", "ran", time.perf_counter() - t0))
    summary.board = out / "board" / "index.html"
    log(f"[4/4] leaderboard {summary.board}")
    for problem in getattr(board, "problems", []) or []:
        log(f"  warning: {problem}")
    return summary
