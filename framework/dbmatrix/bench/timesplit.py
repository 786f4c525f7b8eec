"""Where the time goes: a cProfile of one repeat, its own time (``tottime``) summed per part of the stack.

What belongs to the driver and to the layer is the adapter's to say: its ``profile_modules`` (the DBAPI driver's)
and, for a layer, its ``profile_parts``. Parts: ``driver`` (the driver's Python and C code; for C drivers that block
inside libpq/libmysqlclient calls, psycopg2 and mysqlclient, this includes the server round trip: the profiler cannot
see inside), ``wait`` (socket reads/writes, the event loop's poll and psycopg's wait loop: the server and the network
seen from Python, or the driver's own thread for aiosqlite), the layer's parts (``sqlalchemy-core`` /
``sqlalchemy-orm``, greenlet switches included), ``asyncio`` (the event loop's own bookkeeping), ``harness`` (our
loop), ``other``. Time in code no part claims (the standard library, builtins) is charged to the parts of its
callers (``_charged``), so ``other`` keeps only what nothing above it claims either.
"""

from __future__ import annotations

import importlib
import inspect
import pstats
import re
from typing import Any

from ..drivers import get_adapter

_WAIT = ("of 'select.epoll'", "'select' of 'select.", "_socket.socket", "_io.BufferedReader", "'_ssl.",
         "select.select", "_selector")
_WAIT_FUNCS = ("wait", "wait_c", "wait_select", "wait_epoll", "wait_poll", "wait_async")  # psycopg's waiting loops
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")  # "<function Connection.query at 0x7f...>": keep output stable


def parts(layer_parts: tuple[tuple[str, str], ...] = ()) -> tuple[str, ...]:
    """The parts of a profile: the driver, the wait, the layer's own parts, the loop, the harness, the rest."""
    return ("driver", "wait", *dict.fromkeys(p for _, p in layer_parts), "asyncio", "harness", "other")


def part_of(filename: str, func: str, driver_modules: tuple[str, ...],
            layer_parts: tuple[tuple[str, str], ...] = ()) -> str:
    """The part of the stack a profiled function belongs to. ``layer_parts``: the layer's ``(module path, part)``
    pairs, most specific first ("sqlalchemy/orm" before "sqlalchemy")."""
    path = filename.replace("\\", "/")
    if filename == "~":  # a builtin: the name says whose it is, e.g. "<method 'execute' of 'sqlite3.Cursor' objects>"
        if any(w in func for w in _WAIT):
            return "wait"
        if any(f"'{m}." in func or f" {m}" in func for m in driver_modules):
            return "driver"
        for module, part in layer_parts:  # e.g. "<method 'switch' of 'greenlet.greenlet' objects>"
            if "/" not in module and module in func:
                return part
        if "_asyncio" in func:
            return "asyncio"
        return "other"
    for module, part in layer_parts:
        if f"/{module}/" in path or path.endswith(f"/{module}.py"):  # a package, or a one-file module (peewee.py)
            return part
    if any(f"/{m}/" in path for m in driver_modules):
        return "wait" if func in _WAIT_FUNCS else "driver"
    if path.endswith("/dbmatrix/bench/ops_dbapi.py"):
        # the call sites of the driver's API: their own time is the driver's compiled code (Cython: asyncmy,
        # asyncpg's protocol), which the profiler cannot see and charges to the caller
        return "driver"
    if "/dbmatrix/bench/" in path or path.endswith("/dbmatrix/timing.py"):
        return "harness"
    if "/asyncio/" in path or path.endswith("selectors.py"):
        return "asyncio" if not path.endswith("selectors.py") else "wait"
    return "other"


def _resolve(dotted: str) -> Any:
    """``"peewee.Model.__init__"`` -> the object: the longest importable module prefix, then attributes."""
    names = dotted.split(".")
    for i in range(len(names), 0, -1):
        try:
            obj = importlib.import_module(".".join(names[:i]))
        except ImportError:
            continue
        for attr in names[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def code_parts(objects: tuple[tuple[str, str], ...]) -> dict[tuple[str, int, str], str]:
    """The profile keys ``(filename, first line, name)`` of the functions a layer names as a part of its own
    (``profile_objects``: a function, or a class with its subclasses' methods), e.g. Peewee's row -> model code,
    which lives in the same module as its SQL building. A name that does not resolve here is left out."""
    keys: dict[tuple[str, int, str], str] = {}
    for dotted, part in objects:
        try:
            obj = _resolve(dotted)
        except (ImportError, AttributeError):
            continue
        classes, funcs = ([obj], []) if isinstance(obj, type) else ([], [obj])
        while classes:
            cls = classes.pop()
            classes += cls.__subclasses__()
            funcs += [f for f in vars(cls).values() if inspect.isfunction(f)]
        for f in funcs:
            code = getattr(f, "__code__", None)
            if code is not None:
                keys[(code.co_filename, code.co_firstlineno, code.co_name)] = part
    return keys


def split_profile(stats: pstats.Stats, driver_id: str) -> dict[str, Any]:
    """``{"split_pct": {part: percent}, "top": [[part, function, percent], ...]}`` from ``stats``."""
    adapter = get_adapter(driver_id)
    modules = adapter.profile_modules or adapter.under.modules
    layer_parts: tuple[tuple[str, str], ...] = getattr(adapter, "profile_parts", ())
    by_code = code_parts(getattr(adapter, "profile_objects", ()))
    totals = dict.fromkeys(parts((*layer_parts, *(("", p) for p in by_code.values()))), 0.0)
    funcs: list[tuple[float, str, str]] = []
    entries: dict[Any, tuple[float, dict[Any, Any]]] = stats.stats  # type: ignore[attr-defined]
    own = {key: by_code.get(key) or part_of(key[0], key[2], modules, layer_parts) for key in entries}
    memo: dict[tuple[Any, int], list[tuple[str, float]]] = {}
    for key, (_cc, _nc, tottime, _ct, _callers) in entries.items():
        filename, line, func = key
        for part, share in _charged(key, own, entries, memo):
            totals[part] += tottime * share
        name = _ADDRESS.sub("", func) if filename == "~" else f"{filename.rsplit('/', 1)[-1]}:{line}({func})"
        funcs.append((tottime, own[key], name))
    whole = sum(totals.values()) or 1.0
    split = {p: round(100.0 * t / whole, 1) for p, t in totals.items() if t > 0}
    top = [[part, name, round(100.0 * t / whole, 1)] for t, part, name in sorted(funcs, reverse=True)[:5]]
    return {"split_pct": split, "top": top}


def _charged(key: Any, own: dict[Any, str], entries: dict[Any, Any], memo: dict[tuple[Any, int], Any],
             depth: int = 0) -> list[tuple[str, float]]:
    """Whose time a function's own time is: its own part, unless that is ``other`` (the standard library and
    builtins no part claims: ``copy``, ``re``, ``datetime``, ``len``...), whose time goes to the parts of its
    callers in proportion to the time each call spent there, followed up the call graph a few levels (a layer's
    ``copy.deepcopy`` of a query is the layer's time, not nobody's)."""
    if (key, depth) in memo:
        return memo[key, depth]
    part = own[key]
    callers: dict[Any, Any] = entries[key][4]
    if part != "other" or not callers or depth >= _CALLER_DEPTH:
        return [(part, 1.0)]
    memo[key, depth] = [(part, 1.0)]  # a call cycle back to here counts as unclaimed
    weights = {caller: stat[2] for caller, stat in callers.items() if caller in entries}  # the call's own time
    total = sum(weights.values())
    if total <= 0:
        weights = {caller: 1.0 for caller in weights}
        total = float(len(weights))
    if not weights:
        return [(part, 1.0)]
    out: dict[str, float] = {}
    for caller, weight in weights.items():
        for caller_part, share in _charged(caller, own, entries, memo, depth + 1):
            out[caller_part] = out.get(caller_part, 0.0) + share * weight / total
    memo[key, depth] = list(out.items())
    return memo[key, depth]


_CALLER_DEPTH = 4  # how far up an unclaimed function's time follows its callers before it stays "other"


# the parts every profile has, by ladder stage (a layer's own parts: its ``profile_stages``, else "layer")
_STAGE_OF = {"driver": "driver", "wait": "driver", "asyncio": "driver", "harness": "other", "other": "other"}


def stage_split(split: dict[str, float], driver_id: str) -> dict[str, float]:
    """The ladder's "where the time goes" from a profile split: ``driver`` (the driver, the server's round trip seen
    from Python, the event loop), ``sql`` (SQL building), ``objects`` (row -> object), ``layer`` (a layer part that
    does both, e.g. Peewee's one module), ``other`` (the harness's loop and the unattributed rest)."""
    stages: dict[str, str] = getattr(get_adapter(driver_id), "profile_stages", {})
    out: dict[str, float] = {}
    for part, pct in split.items():
        stage = _STAGE_OF.get(part) or stages.get(part, "layer")
        out[stage] = round(out.get(stage, 0.0) + pct, 1)
    return out


def bottleneck(split: dict[str, float]) -> str:
    """The seed's "main bottleneck" column: the two biggest parts and their shares, e.g.
    ``sqlalchemy-orm 48%, wait 30%`` (``wait``: server, network or the driver's own thread)."""
    ranked = sorted(split.items(), key=lambda kv: -kv[1])[:2]
    return ", ".join(f"{part} {pct:.0f}%" for part, pct in ranked if pct >= 5)
