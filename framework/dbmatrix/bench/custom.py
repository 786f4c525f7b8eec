"""Own workloads: ``--workload FILE.sql`` (a pgbench-style script, ``script.py``) or ``--workload module:callable``.

Both become cells like the built-in workloads (case ``bench.<name>``, variant ``default``, every selected driver,
the same metrics), run in the target's scratch space next to the benchmark tables (``bench_users``,
``bench_events``).

A script's statements run through the session's hot path (``Session.hot_path`` / ``async_call``: the driver's own
call with nothing of dbmatrix's around it), built once per statement and parameter set before the timed window;
SQLAlchemy layers run ``text()`` statements on their connection or ORM session. A callable is called once per
operation with the dbmatrix ``Session`` (``session.execute(sql, params)`` works for every driver); an
``async def`` callable is awaited on an asyncio session's event loop.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..drivers.base import Session
from ..errors import UsageError
from .ops import Op
from .script import Script, read_script, statement_params

SCRIPT_RING = 512  # parameter sets per connection for a script, cycled (one hot path per statement and set)


@dataclass(frozen=True)
class CustomWorkload:
    name: str
    source: str  # the path or module:callable, as given
    script: Script | None = None  # None: a callable
    needs_async: bool = False  # an ``async def`` callable: asyncio drivers only

    @property
    def case(self) -> str:
        return f"bench.{self.name}"

    def knobs(self) -> dict[str, str]:
        return {"script" if self.script is not None else "callable": self.source}

    def skip_reason(self, adapter: Any) -> str | None:
        """Why this workload does not run on ``adapter`` (a skipped cell), or None."""
        if self.needs_async and not adapter.is_async:
            return f"{self.source} is an async def: it runs on asyncio drivers only"
        return None


def is_custom(spec: str) -> bool:
    """A path to a script or ``module:callable`` (built-in workload names are plain identifiers)."""
    return spec.endswith(".sql") or "/" in spec or ":" in spec


def resolve(spec: str, builtin: set[str]) -> CustomWorkload:
    """Read and check an own workload now, in the parent: bad input is one line and exit 2 before any cell."""
    script, needs_async = None, False
    if ":" in spec and not spec.endswith(".sql"):
        needs_async = inspect.iscoroutinefunction(load_callable(spec))
        name = spec.partition(":")[2].rsplit(".", 1)[-1]
    else:
        path = Path(spec)
        if not path.is_file():
            raise UsageError(f"--workload {spec}: no such file")
        script, name = read_script(path), path.stem  # parsed here: the workers get the parsed script
    if name in builtin:
        raise UsageError(f"--workload {spec}: its name {name!r} is a built-in workload's; rename it")
    return CustomWorkload(name, spec, script, needs_async)


def load_callable(spec: str) -> Callable[[Session], Any]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"--workload {spec!r}: expected module:callable")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as ``python -m`` does: a module next to the user's cwd is found
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure of the user's module is one line
        raise UsageError(f"--workload {spec!r}: cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        obj = getattr(obj, part, None)
    if not callable(obj):
        raise UsageError(f"--workload {spec!r}: {module_name} has no callable {attr!r}")
    return obj  # type: ignore[no-any-return]


def build_custom_op(session: Session, workload: CustomWorkload, seed: int) -> Op:
    if workload.script is None:
        return _callable_op(session, load_callable(workload.source))
    return _script_op(session, workload.script, seed)


def _callable_op(session: Session, fn: Callable[[Session], Any]) -> Op:
    return Op(lambda: fn(session), inspect.iscoroutinefunction(fn))  # plan_target skips async on blocking drivers


def _script_op(session: Session, script: Script, seed: int) -> Op:
    ring = script.parameter_ring(seed, SCRIPT_RING)
    if session.adapter.layer != "dbapi":
        return _sqlalchemy_script_op(session, script, ring)
    rollback_sql = "ROLLBACK"
    if session.adapter.is_async:
        make = session.async_call  # type: ignore[attr-defined]
        calls = _per_set(make, script, ring)
        rollback = make(rollback_sql)
        nxt = _cycle(calls)

        async def acall() -> None:
            for stmt in nxt():
                await stmt()

        async def arecover() -> None:
            try:
                await rollback()
            except Exception:  # noqa: BLE001 - outside a transaction a ROLLBACK may warn or fail; nothing to report
                pass

        return Op(acall, True, recover=arecover)
    calls = _per_set(session.hot_path, script, ring)
    rollback = session.hot_path(rollback_sql)
    nxt = _cycle(calls)

    def call() -> None:
        for stmt in nxt():
            stmt()

    def recover() -> None:
        try:
            rollback()
        except Exception:  # noqa: BLE001 - as above
            pass

    return Op(call, False, recover=recover)


def _per_set(make: Callable[..., Callable[[], Any]], script: Script, ring: list[dict[str, Any]]
             ) -> list[list[Callable[[], Any]]]:
    """One prepared call per statement and parameter set (a statement without variables: one call, shared)."""
    fixed = {i: make(s.sql) for i, s in enumerate(script.statements) if not s.names}
    return [[fixed[i] if i in fixed else make(s.sql, statement_params(s, values))
             for i, s in enumerate(script.statements)] for values in ring]


def _cycle(items: list[Any]) -> Callable[[], Any]:
    import itertools

    return itertools.cycle(items).__next__


def _sqlalchemy_script_op(session: Session, script: Script, ring: list[dict[str, Any]]) -> Op:
    """``text()`` statements, built once, on the layer's connection or ORM session; rows fetched when there are."""
    from sqlalchemy import text

    from ..drivers.sqlalchemy_driver import text_sql

    stmts = [text(text_sql(s.sql)) for s in script.statements]
    rollback = text("ROLLBACK")  # the script's own BEGIN is SQL too: end it the same way
    bound = _cycle([[statement_params(s, values) or {} for s in script.statements] for values in ring])
    pairs = list(zip(stmts, range(len(stmts)), strict=True))
    if session.adapter.is_async:
        executor = session.aorm or session.aconn  # type: ignore[attr-defined]

        async def acall() -> None:
            args = bound()
            for stmt, i in pairs:
                result = await executor.execute(stmt, args[i])
                if result.returns_rows:
                    result.all()

        async def arecover() -> None:
            try:
                await executor.execute(rollback)
            except Exception:  # noqa: BLE001 - as in _script_op
                pass

        return Op(acall, True, recover=arecover)
    executor = session.executor  # type: ignore[attr-defined]

    def call() -> None:
        args = bound()
        for stmt, i in pairs:
            result = executor.execute(stmt, args[i])
            if result.returns_rows:
                result.all()

    def recover() -> None:
        try:
            executor.execute(rollback)
        except Exception:  # noqa: BLE001 - as in _script_op
            pass

    return Op(call, False, recover=recover)
