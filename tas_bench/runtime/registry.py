"""A small plugin registry: decorator, lazy ``"module:attr"`` entries and entry points.

Evaluators and systems register themselves under a name. Built-in entries are lazy strings so
that listing names imports no model code; third-party packages add entries through the
entry-point groups ``tas_bench.evaluators`` and ``tas_bench.systems``.

A registration that cannot be used is never dropped silently: resolving it raises
:class:`PluginError` (one line: the name, where it was registered, the reference and the
reason), :meth:`Registry.check` / :meth:`Registry.resolve_all` report it without raising, and
an entry point that is ignored because its name is already taken is kept in
:meth:`Registry.ignored` (``tas-bench ls`` shows both).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from tas_bench.runtime.errors import TasBenchError

T = TypeVar("T")


class PluginError(TasBenchError):
    """A registered plugin that cannot be loaded (its module fails to import, its attribute is
    missing, or its entry point is malformed)."""


@dataclass(frozen=True)
class IgnoredEntry:
    """An entry point that was not registered because its name was already taken."""

    name: str
    value: str
    origin: str
    reason: str


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` of ``exc`` on one line, at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    out = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _entry_point_ref(ep: Any) -> str:
    """``module:attr`` of an entry point (extras dropped); its raw value when malformed."""
    try:
        return f"{ep.module}:{ep.attr}" if ep.attr else ep.module
    except Exception:  # noqa: BLE001 - a malformed value is reported when it is resolved
        return str(ep.value)


def _entry_point_origin(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    dist_name = getattr(dist, "name", None) if dist is not None else None
    where = f" of distribution {dist_name}" if dist_name else ""
    return f"entry point {ep.name} = {ep.value} in group {ep.group}{where}"


class Registry(Generic[T]):
    """Name -> object (class or factory), resolved lazily."""

    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.group = entry_point_group
        self._entries: dict[str, T | str] = {}
        self._origins: dict[str, str] = {}
        self._ignored: list[IgnoredEntry] = []
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
            origin = _entry_point_origin(ep)
            if ep.name in self._entries:
                held = self._origins.get(ep.name, "registered in code")
                self._ignored.append(IgnoredEntry(
                    ep.name, str(ep.value), origin,
                    f"the name is already registered ({held}: {self._entries[ep.name]!r})"))
                continue
            self._entries[ep.name] = _entry_point_ref(ep)
            self._origins[ep.name] = origin

    def names(self) -> list[str]:
        """All registered names, sorted (entry points included; nothing is imported)."""
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries

    def origin(self, name: str) -> str:
        """Where ``name`` was registered: ``registered in code`` (built-ins, ``register``) or
        the entry point that added it."""
        self._load_entry_points()
        return self._origins.get(name, "registered in code")

    def ignored(self) -> list[IgnoredEntry]:
        """Entry points that were not registered because their name was already taken."""
        self._load_entry_points()
        return list(self._ignored)

    def get(self, name: str) -> T:
        """Resolve ``name``; an unknown name is an error that lists the known ones, and an
        entry that cannot be loaded is a :class:`PluginError` saying why."""
        self._load_entry_points()
        if name not in self._entries:
            known = ", ".join(self.names()) or "none"
            raise TasBenchError(f"unknown {self.kind} {name!r}; known: {known}")
        obj = self._entries[name]
        if isinstance(obj, str):
            resolved = self._import(name, obj)
            self._entries[name] = resolved
            obj = resolved
        return obj  # type: ignore[return-value]

    def _import(self, name: str, ref: str) -> Any:
        mod_name, _, attr = ref.partition(":")
        try:
            resolved: Any = importlib.import_module(mod_name.strip())
            for part in filter(None, attr.strip().split(".")):
                resolved = getattr(resolved, part)
        except Exception as exc:  # noqa: BLE001 - importing a plugin runs arbitrary code
            raise PluginError(f"{self.kind} {name!r} ({self.origin(name)}) cannot be loaded "
                              f"from {ref!r}: {one_line(exc)}") from exc
        return resolved

    def check(self, name: str) -> str | None:
        """Why ``name`` cannot be loaded (one line), or ``None`` when it loads; imports it."""
        try:
            self.get(name)
        except TasBenchError as exc:
            return str(exc)
        return None

    def resolve_all(self) -> list[tuple[str, Any | None, str | None]]:
        """``(name, object, None)`` for each entry that loads, ``(name, None, reason)`` for each
        that does not; imports every plugin and never raises for a broken one."""
        out: list[tuple[str, Any | None, str | None]] = []
        for n in self.names():
            try:
                out.append((n, self.get(n), None))
            except TasBenchError as exc:
                out.append((n, None, str(exc)))
        return out

    def items(self) -> list[tuple[str, Callable[..., Any] | Any]]:
        """(name, resolved object) pairs; imports every plugin (a broken one raises)."""
        return [(n, self.get(n)) for n in self.names()]
