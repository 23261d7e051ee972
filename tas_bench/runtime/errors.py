"""User-facing errors.

A :class:`TasBenchError` is a problem with what the user handed in (a file, a field, an
option). The CLI prints its message on one line and exits with status 2, without a traceback.
Anything else that escapes is a bug in tas-bench and keeps its traceback.
"""

from __future__ import annotations

from os import PathLike


class TasBenchError(Exception):
    """A bad input: the message names the file and/or field and what is wrong with it."""

    def __init__(
        self,
        message: str,
        *,
        path: str | PathLike[str] | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.field = field
        self.reason = message
        self.hint = hint
        parts = []
        if self.path:
            parts.append(self.path)
        if field:
            parts.append(field)
        text = ": ".join(parts + [message])
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class AudioError(TasBenchError):
    """An audio file that cannot be used: unreadable, wrong shape, non-finite samples."""
