"""Django run standalone against a dbmatrix target: the user's settings module, with DATABASES replaced.

Not part of the migrate package on purpose: anything that runs Django code on a target (the migration checks, the
Django ORM layer ``django+<dbapi>``) needs the same two things, a DATABASES entry for a target's URL and a process
configured with the application's settings (or ``STANDALONE`` ones) but pointed at dbmatrix's database only.

Django can be configured once per process, so the settings are configured once (``configure``) and the database
is swapped per target (``scratch_databases``): ``DATABASES`` becomes ``{"default": <the target>}`` and Django's
connection handler is reset, so no alias of the application's own databases stays reachable.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from .errors import UsageError
from .targets.urls import kind_of

# target kind -> Django's backend (postgresql uses psycopg 3 when installed, mysql uses mysqlclient)
ENGINES = {"postgresql": "django.db.backends.postgresql", "mysql": "django.db.backends.mysql",
           "sqlite": "django.db.backends.sqlite3"}
# Django with no project (the ORM layer): what ``startproject`` writes for time zones and primary keys, no apps and no
# database of its own (each ``django+<dbapi>`` session brings its connection, see layers/django_layer.py)
STANDALONE: dict[str, Any] = {"INSTALLED_APPS": [], "DATABASES": {}, "USE_TZ": True, "TIME_ZONE": "UTC",
                              "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField"}
_setup_lock = threading.Lock()
_standalone = False  # this process configured Django with STANDALONE
_MANAGE_SETTINGS = re.compile(r"""DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([\w.]+)['"]""")


def databases_entry(url: URL) -> dict[str, Any]:
    """A ``DATABASES`` entry reaching ``url`` (a target's scratch database) with Django's backend for its kind."""
    kind = kind_of(url)
    if kind not in ENGINES:
        raise UsageError(f"Django has no backend for {kind} targets")
    entry: dict[str, Any] = {"ENGINE": ENGINES[kind], "NAME": url.database or "", "ATOMIC_REQUESTS": False,
                             "AUTOCOMMIT": True, "CONN_MAX_AGE": 0, "TIME_ZONE": None, "OPTIONS": {}}
    if kind != "sqlite":
        entry.update(USER=url.username or "", PASSWORD=url.password or "", HOST=url.host or "",
                     PORT=str(url.port or ""))
    if kind == "mysql":
        entry["OPTIONS"] = {"charset": "utf8mb4"}
    return entry


def settings_module_of(spec: str) -> str:
    """``--django``: a dotted settings module, or a manage.py whose ``DJANGO_SETTINGS_MODULE`` default names it."""
    if spec.endswith(".py") or os.sep in spec:
        path = Path(spec)
        if not path.is_file():
            raise UsageError(f"--django: file not found: {spec}")
        m = _MANAGE_SETTINGS.search(path.read_text(encoding="utf-8", errors="replace"))
        if not m:
            raise UsageError(f"--django: {spec} does not set DJANGO_SETTINGS_MODULE (expected manage.py)")
        return m.group(1)
    if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*", spec):
        raise UsageError(f"--django {spec!r}: expected a dotted settings module or a path to manage.py")
    return spec


def configure(settings_module: str, pythonpath: list[Path] | None = None) -> None:
    """Configure Django from ``settings_module`` (once per process), with an empty DATABASES until a target is
    chosen. The module is imported with every DBAPI connect refused (migrate.guard.no_connections): a settings
    module that reaches a database on import is stopped before it sends anything."""
    import django
    from django.conf import settings

    for p in reversed(pythonpath or []):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    if settings.configured:
        if _standalone:  # the ORM layer's settings would silently stand in for the application's
            raise UsageError(f"Django is already configured standalone in this process (a django+<dbapi> session), "
                             f"not with {settings_module}: run the migration checks in a process of their own")
        have = getattr(settings, "SETTINGS_MODULE", None) or os.environ.get("DJANGO_SETTINGS_MODULE")
        if have and have != settings_module:
            raise UsageError(f"Django is already configured with {have} in this process, not {settings_module}")
        django.setup()
        return
    from .migrate.guard import ForeignDatabase, no_connections

    try:
        with no_connections(f"the Django settings module {settings_module}"):
            module = importlib.import_module(settings_module)
    except (UsageError, ForeignDatabase):
        raise
    except ImportError as exc:
        raise UsageError(f"--django: cannot import {settings_module}: {exc} (is --pythonpath right?)") from None
    except Exception as exc:  # noqa: BLE001 - the settings module itself fails: one line, not a traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UsageError(f"--django: importing {settings_module} failed: {type(exc).__name__}: {first}") from None
    values = {k: getattr(module, k) for k in dir(module) if k.isupper()}
    values["DATABASES"] = {}
    values["SETTINGS_MODULE"] = settings_module
    settings.configure(**values)
    try:
        django.setup()
    except Exception as exc:  # noqa: BLE001 - the user's INSTALLED_APPS do not load: one line
        raise UsageError(f"--django {settings_module}: Django setup failed: {type(exc).__name__}: {exc}") from None


def configure_standalone() -> None:
    """Configure Django with ``STANDALONE`` unless this process already is (``configure`` with the user's settings,
    whose DATABASES the ORM layer does not use either), then set it up; safe to call from any thread, any number of
    times."""
    import django
    from django.apps import apps
    from django.conf import settings

    global _standalone
    with _setup_lock:
        if not settings.configured:
            settings.configure(**STANDALONE)
            _standalone = True
        if not apps.ready:
            django.setup()


@contextmanager
def scratch_databases(url: URL) -> Iterator[None]:
    """Inside: Django's only database is ``url`` (alias ``default``); the settings' own DATABASES come back after."""
    from django.conf import settings
    from django.db import connections

    saved = settings.DATABASES
    _reset(connections)
    settings.DATABASES = {"default": databases_entry(url)}
    try:
        yield
    finally:
        _reset(connections)
        settings.DATABASES = saved


def _reset(connections: Any) -> None:
    """Close every Django connection and forget the handler's settings, so the next use reads DATABASES anew."""
    from asgiref.local import Local

    connections.close_all()
    connections.__dict__.pop("settings", None)  # a cached_property of the handler, kept in _settings too
    connections._settings = None
    connections._connections = Local(connections.thread_critical)
