"""Where a number came from: code version, git commit, package versions."""

from __future__ import annotations

import functools
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from tas_bench import __version__

_PACKAGES = ("numpy", "scipy", "librosa", "soundfile", "torch", "pandas", "safetensors",
             "accelerate", "transformers", "pyroomacoustics", "h5py")


@functools.lru_cache(maxsize=1)
def code_info() -> dict[str, Any]:
    """tas-bench version plus the git commit (and dirty flag) of the checkout it runs from."""
    root = Path(__file__).resolve().parents[2]
    commit = None
    dirty = None
    if (root / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, timeout=10, check=True).stdout.strip() or None
            status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10, check=True).stdout
            dirty = bool(status.strip())
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"tas_bench_version": __version__, "git_commit": commit, "git_dirty": dirty}


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that can change numbers."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
