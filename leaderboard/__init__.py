"""Leaderboard: tables (Markdown, CSV, LaTeX), published reference rows, figures, static HTML.

Reads results folders written by ``tas-bench score``; never computes metrics itself (the
paired bootstrap only re-samples the per-clip values that the results already hold).
Main entry point: :func:`leaderboard.build.build_leaderboard`; the tables as pandas
DataFrames: :func:`leaderboard.build.table_frames`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leaderboard.build import LeaderboardSummary, build_leaderboard, table_frames

__all__ = ["LeaderboardSummary", "build_leaderboard", "table_frames"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import leaderboard` stays cheap (matplotlib is only loaded to draw figures).
    if name in __all__:
        from leaderboard import build

        return getattr(build, name)
    raise AttributeError(name)
