"""tas-bench: benchmark suite for text-guided audio spatialization.

Importing this package is cheap: no torch models, no network, no file downloads.
"""

__version__ = "0.1.0"

from tas_bench.errors import TasBenchError  # noqa: E402

__all__ = ["TasBenchError", "__version__"]
