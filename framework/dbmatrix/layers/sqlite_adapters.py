"""sqlite3 adapters that a layer's library registers for the whole process, held to that layer's own sessions.

``sqlite3.register_adapter`` is process-wide: Peewee registers str adapters for Decimal, date and time when it is
imported (Django's sqlite3 backend does the same for Decimal, date and datetime, and registers converters for
bool, date, time, datetime and timestamp columns, which replace sqlite3's own for every connection opened with
``detect_types``). Left in place, every later plain ``sqlite3``/``aiosqlite`` cell of the same run would bind those
types as text, and the matrix would report the layer's behaviour under the plain driver's name. The registries are
read from ``_sqlite3`` itself: yoyo rebinds ``sqlite3.adapters`` to a copy when its SQLite backend exits, after which
that name no longer is the table the driver binds with. So a layer imports its library through ``import_keeping_apart``
(what the import added to the registry is taken off and kept), and its SQLite sessions put the kept
adapters back while they are open (``hold`` / ``release``), as a user of that library has them. Each library keeps
its own (``kept_for``: Peewee's is ``SQLITE_ADAPTERS``), since several register adapters for the same types.
"""

from __future__ import annotations

import _sqlite3
import importlib
import threading
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

_MISSING = object()
# the tables sqlite3 binds parameters with and converts declared column types with (``detect_types``)
_REGISTRIES: tuple[dict[Any, Any], ...] = (_sqlite3.adapters, _sqlite3.converters)


class KeptAdapters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[Any, Any] = {}  # (registry number, key) -> the library's adapter or converter
        self._displaced: dict[Any, Any] = {}  # the same key -> what was there before (or _MISSING)
        self._holders = 0

    def import_keeping_apart(self, name: str) -> ModuleType:
        """Import ``name``; if this first import registered sqlite3 adapters or converters, take them off and keep
        them."""
        with self._lock:
            before = [dict(registry) for registry in _REGISTRIES]
            module = importlib.import_module(name)
            for number, registry in enumerate(_REGISTRIES):
                for key, adapter in list(registry.items()):
                    was = before[number].get(key, _MISSING)
                    if was is not adapter and self._holders == 0:
                        self._kept[number, key] = adapter
                        self._displaced[number, key] = was
                        _put((number, key), was)
            return module

    def hold(self) -> None:
        """A session of the layer opened: the library's adapters are in effect until the last one is released."""
        with self._lock:
            self._holders += 1
            if self._holders == 1:
                for (number, key), adapter in self._kept.items():
                    _REGISTRIES[number][key] = adapter

    def held_async(self, fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        """``fn`` (one call of an asyncio layer's bench operation) with the library's adapters in effect while it
        runs, as a user of that library has them."""

        async def held() -> Any:
            self.hold()
            try:
                return await fn()
            finally:
                self.release()

        return held

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                for (number, key), adapter in self._kept.items():
                    if _REGISTRIES[number].get(key) is adapter:
                        _put((number, key), self._displaced[number, key])


def _put(where: tuple[int, Any], adapter: Any) -> None:
    number, key = where
    if adapter is _MISSING:
        _REGISTRIES[number].pop(key, None)
    else:
        _REGISTRIES[number][key] = adapter


SQLITE_ADAPTERS = KeptAdapters()  # Peewee's
_BY_LIBRARY: dict[str, KeptAdapters] = {"peewee": SQLITE_ADAPTERS}
_LOCK = threading.Lock()


def kept_for(library: str) -> KeptAdapters:
    """The kept adapters of one library. Libraries register adapters for the same types (Decimal: Peewee as str,
    Piccolo as float), so each keeps its own: a shared table would hold the last imported library's adapter for
    every layer's sessions."""
    with _LOCK:
        return _BY_LIBRARY.setdefault(library, KeptAdapters())
