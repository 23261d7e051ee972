"""A small plugin registry: decorator, lazy ``"module:attr"`` entries and entry points.

Evaluators and systems register themselves under a name. Built-in entries are lazy strings so
that listing plugins imports no model code; third-party packages add entries through the
entry-point groups ``tas_bench.evaluators`` and ``tas_bench.systems``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from tas_bench.errors import TasBenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object (class or factory), resolved lazily."""

    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.group = entry_point_group
        self._entries: dict[str, T | str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, obj: T | str | None = None) -> Any:
        """Register ``obj`` (an object or a lazy ``"module:attr"`` string) under ``name``.

        Without ``obj`` returns a decorator. Re-registering a name with a different object is
        an error (silently replacing a plugin would change numbers without anyone noticing).
        """
        if obj is None:
            def deco(o: T) -> T:
                self.register(name, o)
                return o
            return deco
        old = self._entries.get(name)
        if old is not None and old is not obj and not (isinstance(old, str) and self._is_target(old, obj)):
            raise TasBenchError(f"{self.kind} {name!r} is already registered ({old!r})")
        if old is None or isinstance(old, str):
            self._entries[name] = obj
        return obj

    @staticmethod
    def _is_target(ref: str, obj: Any) -> bool:
        mod, _, attr = ref.partition(":")
        return getattr(obj, "__module__", None) == mod and getattr(obj, "__name__", None) == attr

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._entries:
                self._entries[ep.name] = ep.value

    def names(self) -> list[str]:
        """All registered names, sorted (entry points included; nothing is imported)."""
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries

    def get(self, name: str) -> T:
        """Resolve ``name``; an unknown name is an error that lists the known ones."""
        self._load_entry_points()
        if name not in self._entries:
            known = ", ".join(self.names()) or "none"
            raise TasBenchError(f"unknown {self.kind} {name!r}; known: {known}")
        obj = self._entries[name]
        if isinstance(obj, str):
            mod_name, _, attr = obj.partition(":")
            module = importlib.import_module(mod_name)
            resolved: Any = module
            for part in attr.split("."):
                resolved = getattr(resolved, part)
            self._entries[name] = resolved
            obj = resolved
        return obj  # type: ignore[return-value]

    def items(self) -> list[tuple[str, Callable[..., Any] | Any]]:
        """(name, resolved object) pairs; imports every plugin."""
        return [(n, self.get(n)) for n in self.names()]
