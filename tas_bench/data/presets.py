"""Dataset presets (split sizes). Kept apart from the simulator so the CLI can list them
without importing the audio stack."""

from __future__ import annotations

PRESETS: dict[str, dict[str, int]] = {
    "demo": {"train": 240, "val": 24, "test": 48},
    "spatialtas": {"train": 376104, "val": 732, "test": 4000},
}
