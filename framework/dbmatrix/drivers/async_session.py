"""The session base of asyncio drivers: every operation is a task on the session's event loop."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any

from .protocol import Result
from .runners import LoopOwner, LoopThread, session_numbers
from .session import Session


class AsyncSession(Session):
    """Base for asyncio drivers: subclasses implement ``_aexecute``, ``_aclose`` and ``_ahot_path`` as coroutines
    (functions); every operation is a task on the session's loop."""

    def _make_owner(self) -> LoopOwner:
        shared = self.info.loop
        loop_thread = shared or LoopThread(f"dbm-loop-{self.adapter.id}-{next(session_numbers)}")
        self.loop_thread = loop_thread
        return LoopOwner(loop_thread, owns_loop=shared is None)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on this session's loop as one operation and wait for it (harness deadline)."""
        return self._do(lambda: coro)

    def _open_with_settings(self, conn: Any, apply: Callable[[], Any], restore: Callable[[], Any], api: str) -> str:
        """``Session._open_with_settings`` with ``apply``, ``restore`` and the driver's commit/rollback awaited."""
        async def begin() -> str:
            try:
                await apply()
            except BaseException:
                await restore()
                raise
            return api

        async def end(commit: bool) -> None:
            await aend_then_restore(conn.commit if commit else conn.rollback, restore, conn.rollback)

        return self._open_native(begin, end)

    def _statement(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Any:
        return lambda: self._aexecute(sql, params, types)

    def _close_op(self) -> Any:
        return self._aclose

    def _next_batch(self, batches: Iterator[Sequence[tuple[Any, ...]]], done: object) -> Any:
        # the iterator itself runs each step on the loop (``_drive``); advancing it here keeps the loop free
        return self._call(lambda: next(batches, done))

    def _close_batches(self, batches: Iterator[Sequence[tuple[Any, ...]]]) -> None:
        self._call(batches.close)  # type: ignore[attr-defined]

    def hot_path(self, sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Any]:
        """The driver call, one hop to the session's loop per call (``timed_loop`` avoids the hop)."""
        acall, loop = self._ahot_path(sql, params), self.loop_thread
        return lambda: loop.run(acall())

    def async_call(self, sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Awaitable[Any]]:
        """The hot-path call as a coroutine function, to await on this session's loop (e.g. several sessions
        gathered on one shared loop)."""
        return self._ahot_path(sql, params)

    def timed_loop(self, sql: str, params: Mapping[str, Any] | None = None, n: int = 1000) -> list[int]:
        acall = self._ahot_path(sql, params)

        async def loop() -> list[int]:
            clock, out = time.perf_counter_ns, [0] * n
            for i in range(n):
                start = clock()
                await acall()
                out[i] = clock() - start
            return out

        return self._do(loop)

    def _ahot_path(self, sql: str, params: Mapping[str, Any] | None) -> Callable[[], Awaitable[Any]]:
        raise NotImplementedError

    async def _aexecute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None
                        ) -> Result:
        raise NotImplementedError

    async def _aclose(self) -> None:
        raise NotImplementedError

    def _drive(self, batches: AsyncIterator[Sequence[tuple[Any, ...]]]) -> Iterator[Sequence[tuple[Any, ...]]]:
        """An async generator of batches, driven one ``__anext__`` at a time on this session's loop.

        The async generator keeps its ``async with`` blocks (transaction, cursor) open across the steps, and
        closing this iterator closes it on the loop, so its cleanup runs where its connection lives.
        """
        done = object()
        try:
            while (rows := self._do(lambda: anext(batches, done))) is not done:
                yield rows
        finally:
            self._do(batches.aclose)


async def aend_then_restore(finish: Callable[[], Awaitable[Any]], restore: Callable[[], Awaitable[Any]],
                            undo: Callable[[], Awaitable[Any]]) -> None:
    """``session.end_then_restore`` for coroutine functions."""
    try:
        await finish()
    except BaseException:
        for step in (undo, restore):
            with contextlib.suppress(Exception):
                await step()
        raise
    await restore()
