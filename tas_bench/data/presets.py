"""Dataset presets (split sizes). Kept apart from the simulator so the CLI can list them
without importing the audio stack.

``spatialtas`` is the paper's scale: 380,836 ten-second clips. Measured on one core
(``benchmarks/bench_simulate.py --scale``; README "Full scale") it needs about 244 GB as
PCM_16 WAV or about a third of that as FLAC, and a few core-hours; memory per process is flat
in the number of clips (the manifest is streamed to disk), so it can be made in one process or
in shards on a cluster (``--shard I/N``, ``tas-bench simulate-merge``).
"""

from __future__ import annotations

PRESETS: dict[str, dict[str, int]] = {
    "demo": {"train": 240, "val": 24, "test": 48},
    "spatialtas": {"train": 376104, "val": 732, "test": 4000},
}
