"""Who runs a session's operations: a worker thread for a blocking driver, an event loop for an asyncio one.

``ThreadOwner`` runs one session's operations in order on a daemon thread; ``LoopThread`` is an event loop in a
daemon thread (one per async session, or shared by several); ``LoopOwner`` runs an async session's operations as
tasks on a ``LoopThread``. Each ``submit`` returns a ``concurrent.futures.Future``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ..errors import DriverError
from .protocol import HARNESS_DEADLINE_S

session_numbers = itertools.count(1)  # names threads and loops after the session they serve


class ThreadOwner:
    """A daemon worker thread running one session's operations in order (the owner of a blocking connection)."""

    def __init__(self, name: str):
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._work, name=name, daemon=True)
        self.thread.start()

    def is_current(self) -> bool:
        return threading.current_thread() is self.thread

    def submit(self, op: Callable[[], Any], after: Callable[[], None],
               call: Callable[[Callable[[], Any]], Any] | None = None,
               step_ms: list[float] | None = None) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put((op, after, call or (lambda fn: fn()), step_ms, fut))
        return fut

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            op, after, call, step_ms, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            start = time.perf_counter()
            try:
                fut.set_result(call(op))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting side
                fut.set_exception(exc)
            finally:
                if step_ms is not None:
                    step_ms.append((time.perf_counter() - start) * 1000.0)
                after()

    def stop(self, timeout: float) -> None:
        self._queue.put(None)
        self.thread.join(timeout)


class LoopThread:
    """An event loop running in its own daemon thread. One per async session, or one shared by several sessions
    (pass it to ``DriverAdapter.connect(info, loop=...)``; whoever created it stops it)."""

    def __init__(self, name: str = "dbm-loop"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = HARNESS_DEADLINE_S) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise DriverError(None, "HarnessTimeout", f"step exceeded the harness deadline of {timeout}s") from None

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop.is_closed():
            return

        async def cancel_leftovers() -> None:  # so no task is "destroyed but pending" when the loop closes
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.wait(tasks, timeout=timeout / 2) if tasks else None

        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(cancel_leftovers(), self.loop).result(timeout / 2)
            except Exception:  # noqa: BLE001 - best effort before stopping
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout / 2)
        if not self._thread.is_alive():
            self.loop.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class LoopOwner:
    """The owner of an async session: its operations are coroutines run as tasks on a ``LoopThread``."""

    def __init__(self, loop_thread: LoopThread, owns_loop: bool):
        self.loop_thread = loop_thread
        self.owns_loop = owns_loop

    def is_current(self) -> bool:
        return False  # operations started on the loop itself are awaited there, never handed over

    def submit(self, op: Callable[[], Awaitable[Any]], after: Callable[[], None],
               call: Callable[[Callable[[], Any]], Any] | None = None,
               step_ms: list[float] | None = None) -> concurrent.futures.Future[Any]:
        """Run ``op()`` as a task on the loop. The returned future settles when the task has really ended (a
        cancelled task first runs its driver's cleanup), and a cancelled task gives DriverError "Cancelled"."""
        out: concurrent.futures.Future[Any] = concurrent.futures.Future()

        async def run() -> Any:
            start = time.perf_counter()
            try:
                return await op()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - mapped to DriverError like a blocking driver's
                if call is None:
                    raise
                return call(functools.partial(_reraise, exc))
            finally:
                if step_ms is not None:
                    step_ms.append((time.perf_counter() - start) * 1000.0)
                after()

        def settle(task: asyncio.Task[Any]) -> None:
            if task.cancelled():
                out.set_exception(DriverError(None, "Cancelled", "the step was cancelled"))
            elif (exc := task.exception()) is not None:
                out.set_exception(exc)
            else:
                out.set_result(task.result())

        def start() -> None:
            if out.set_running_or_notify_cancel():
                task = self.loop_thread.loop.create_task(run())
                out.task = task  # type: ignore[attr-defined]  # for cancel_task
                task.add_done_callback(settle)

        self.loop_thread.loop.call_soon_threadsafe(start)
        return out

    def cancel_task(self, fut: concurrent.futures.Future[Any]) -> None:
        """Cancel the task behind ``fut`` (asyncio's own cancellation; the driver reacts to CancelledError)."""
        task = getattr(fut, "task", None)
        if task is not None:
            self.loop_thread.loop.call_soon_threadsafe(task.cancel)

    def stop(self, timeout: float) -> None:
        if self.owns_loop:
            self.loop_thread.stop(timeout)


def _reraise(exc: BaseException) -> Any:
    raise exc
