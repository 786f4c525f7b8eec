"""sqlite3 adapters that a layer's library registers for the whole process, held to that layer's own sessions.

``sqlite3.register_adapter`` is process-wide: Peewee registers str adapters for Decimal, date and time when it is
imported (Django's sqlite3 backend does the same for Decimal, date and datetime). Left in place, every later plain
``sqlite3``/``aiosqlite`` cell of the same run would bind those types as text, and the matrix would report the
layer's behaviour under the plain driver's name. The registry is read from ``_sqlite3`` itself: yoyo rebinds
``sqlite3.adapters`` to a copy when its SQLite backend exits, after which that name no longer is the table the
driver binds with. So a layer imports its library through ``import_keeping_apart``
(what the import added to the registry is taken off and kept), and its SQLite sessions put the kept
adapters back while they are open (``hold`` / ``release``), as a user of that library has them. Each library keeps
its own (``kept_for``: Peewee's is ``SQLITE_ADAPTERS``), since several register adapters for the same types.
"""

from __future__ import annotations

import _sqlite3
import importlib
import threading
from types import ModuleType
from typing import Any

_MISSING = object()
_REGISTRY: dict[Any, Any] = _sqlite3.adapters  # the table sqlite3 binds parameters with


class KeptAdapters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[Any, Any] = {}  # key of _REGISTRY -> the library's adapter
        self._displaced: dict[Any, Any] = {}  # the same key -> what was there before (or _MISSING)
        self._holders = 0

    def import_keeping_apart(self, name: str) -> ModuleType:
        """Import ``name``; if this first import registered sqlite3 adapters, take them off and keep them."""
        with self._lock:
            before = dict(_REGISTRY)
            module = importlib.import_module(name)
            for key, adapter in list(_REGISTRY.items()):
                if before.get(key, _MISSING) is not adapter and self._holders == 0:
                    self._kept[key] = adapter
                    self._displaced[key] = before.get(key, _MISSING)
                    _put(key, self._displaced[key])
            return module

    def hold(self) -> None:
        """A session of the layer opened: the library's adapters are in effect until the last one is released."""
        with self._lock:
            self._holders += 1
            if self._holders == 1:
                _REGISTRY.update(self._kept)

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                for key, adapter in self._kept.items():
                    if _REGISTRY.get(key) is adapter:
                        _put(key, self._displaced[key])


def _put(key: Any, adapter: Any) -> None:
    if adapter is _MISSING:
        _REGISTRY.pop(key, None)
    else:
        _REGISTRY[key] = adapter


SQLITE_ADAPTERS = KeptAdapters()  # Peewee's
_BY_LIBRARY: dict[str, KeptAdapters] = {"peewee": SQLITE_ADAPTERS}
_LOCK = threading.Lock()


def kept_for(library: str) -> KeptAdapters:
    """The kept adapters of one library. Libraries register adapters for the same types (Decimal: Peewee as str,
    Piccolo as float), so each keeps its own: a shared table would hold the last imported library's adapter for
    every layer's sessions."""
    with _LOCK:
        return _BY_LIBRARY.setdefault(library, KeptAdapters())
