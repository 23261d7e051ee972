"""tas-bench: benchmark suite for text-guided audio spatialization.

Importing this package is cheap: no torch, no pandas, no network, no file downloads. The
Python API (:mod:`tas_bench.pipeline.api`) is loaded on first use of one of its names::

    import tas_bench
    data = tas_bench.simulate("data", n_train=0, n_val=0, n_test=4, duration=1.0)
    preds = tas_bench.generate("mono-mono", data, out="pred")
    res = tas_bench.score(data, preds, evaluators=["signal", "cues"])
    res.metrics          # DataFrame, one row per metric
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from tas_bench.runtime.errors import TasBenchError  # noqa: E402

if TYPE_CHECKING:
    from tas_bench.pipeline.api import (
        Dataset,
        Predictions,
        Results,
        generate,
        leaderboard,
        list_systems,
        load_dataset,
        load_results,
        load_system,
        score,
        simulate,
    )

__all__ = ["Dataset", "Predictions", "Results", "TasBenchError", "__version__", "generate",
           "leaderboard", "list_systems", "load_dataset", "load_results", "load_system", "score",
           "simulate"]
_API = frozenset(__all__) - {"TasBenchError", "__version__"}


def __getattr__(name: str) -> Any:
    # PEP 562: the API module (and what it imports) loads on first use, not at import
    if name in _API:
        from tas_bench.pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'tas_bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
