"""Leaderboard: tables (Markdown, CSV, LaTeX), published reference rows, figures, static HTML.

Reads results folders written by ``tas-bench score``; never computes metrics itself (the
paired bootstrap only re-samples the per-clip values that the results already hold).
Main entry point: :func:`leaderboard.build.build_leaderboard`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leaderboard.build import LeaderboardSummary, build_leaderboard

__all__ = ["LeaderboardSummary", "build_leaderboard"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import leaderboard` stays cheap (matplotlib is only loaded to draw figures).
    if name in __all__:
        from leaderboard import build

        return getattr(build, name)
    raise AttributeError(name)
