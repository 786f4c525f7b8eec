"""Run a Schedule step by step, exactly in its permutation's order, one session per schedule session.

A step that waits on a lock is *detected* through the lock observer (the engine's own view of lock waits,
from an admin connection), never guessed from a timer: the executor then goes on with the next step of
another session and records when the waiting one completes (isolationtester's ``<waiting ...>`` /
``<... completed>``). A step of a session that is still waiting is held back until that session is free,
as isolationtester does. Every wait is bounded: the engine's lock and statement timeouts, its deadlock
detector, and ``deadline`` seconds for the whole schedule.

A spec's steps (``model.step``) may carry SQL per engine (looked up by the session's engine), bound parameters,
an expected outcome (checked afterwards by ``Execution.mismatches``) and a question for the observer, asked once
the step is done.

SQLite's observer watches a session's own busy handler; a session it cannot watch (a driver that hides its
``sqlite3`` handle) runs with ``busy_timeout = 0`` instead, so a conflicting step fails at once with
SQLITE_BUSY and never waits unseen.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..drivers.base import Session
from ..engines import Engine, engine_for
from ..errors import DriverError
from .model import OK, SKIPPED, EngineSQL, Execution, Schedule, Step, StepResult, binds, engine_sql

QUICK_S = 0.002  # most steps finish within this; only the others are handed to the observer
DEADLINE_S = 60.0
# BEGIN can wait on a lock too (SQLite's BEGIN IMMEDIATE): it runs here so the observer can watch it.
_BEGINS = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="dbm-schedule-begin")


class LockObserver(Protocol):
    def is_blocked(self, session: Session) -> bool: ...

    def wait_until_blocked(self, session: Session, future: concurrent.futures.Future[Any], timeout: float
                           ) -> bool: ...


class HarnessDeadline(DriverError):
    def __init__(self, what: str):
        super().__init__(None, "HarnessTimeout", what)


def classify(err: DriverError, engine: Engine) -> str:
    """The step status for a refused step: the engine names its deadlock and busy codes."""
    return engine.refusal(None if err.code is None else str(err.code))


class ScheduleExecutor:
    """Runs schedules on a fixed set of sessions (reused across schedules, so a hypothesis run is cheap)."""

    def __init__(self, sessions: Mapping[str, Session], observer: LockObserver, isolation: str | None,
                 table: str, deadline: float = DEADLINE_S, tuned: bool = True):
        """``tuned``: apply the engine's ``schedule_session_setup`` (faster commits, a quicker deadlock detector);
        off for specs that run behind a transaction pooler, where a session setting would outlive the session."""
        self.sessions = dict(sessions)
        self.observer = observer
        self.isolation = isolation
        self.table = table
        self.deadline = deadline
        self.unobserved: set[str] = set()
        self.engines = {name: engine_for(s.info.kind, s.info.engine) for name, s in self.sessions.items()}
        # the names a per-engine step's SQL is looked up by: the engine's own, then its parents' (mariadb, mysql)
        self.engine_names = {name: tuple(c.__dict__["name"] for c in type(e).__mro__ if "name" in c.__dict__)
                             for name, e in self.engines.items()}
        for name, s in self.sessions.items():
            for sql in self.engines[name].schedule_session_setup if tuned else ():
                try:
                    s.execute(sql)
                except DriverError:
                    pass  # not allowed to: the engine's default applies
            try:
                observer.is_blocked(s)
            except DriverError as err:
                if err.cls != "Unobservable":
                    raise
                s.execute("PRAGMA busy_timeout = 0")
                self.unobserved.add(name)

    def waits(self, session: str, future: concurrent.futures.Future[Any]) -> bool:
        """Whether the step behind ``future`` is waiting on a lock (False: it finished)."""
        if session in self.unobserved:  # busy_timeout = 0: the step cannot wait, it ends on its own
            if not concurrent.futures.wait([future], timeout=self.deadline).done:
                raise HarnessDeadline(f"a step did not finish within {self.deadline}s")
            return False
        return self.observer.wait_until_blocked(self.sessions[session], future, self.deadline)

    def run(self, schedule: Schedule, setup: Sequence[str] | None = None) -> Execution:
        """Run ``setup`` (default: the schedule's) in autocommit, then the permutation, then read the final
        state. Every session ends outside a transaction, whatever happened."""
        missing = set(schedule.sessions) - set(self.sessions)
        if missing:
            raise ValueError(f"no session for {', '.join(sorted(missing))}")
        admin = self.sessions[next(iter(schedule.sessions))]
        for sql in schedule.setup if setup is None else setup:
            admin.execute(sql.replace("{t}", self.table))
        for name, statements in schedule.session_setup.items():
            for text in statements:
                self.run_sql(name, text, schedule)
        run = _Run(self, schedule)
        try:
            run.all_steps()
        finally:
            run.end_transactions()
            for name, statements in schedule.session_teardown.items():
                for text in statements:
                    try:
                        self.run_sql(name, text, schedule)
                    except DriverError:
                        pass  # cleanup: what it could not undo, the case's own checks report
        if schedule.final_sql is not None:
            final = admin.execute(schedule.final_sql.replace("{t}", self.table)).rows
            run.execution.final = [tuple(r) for r in final]
        return run.execution

    def sql_for(self, session: str, sql: str | EngineSQL) -> str | None:
        """The text this session's engine runs for ``sql`` (None: nothing on this engine)."""
        return engine_sql(sql, self.engine_names[session])

    def run_sql(self, session: str, sql: str | EngineSQL, schedule: Schedule) -> None:
        text = self.sql_for(session, sql)
        if text is not None:
            self.sessions[session].execute(text.replace("{t}", self.table), binds(text, schedule.params))

    def ask(self, question: str, schedule: Schedule, session: str) -> tuple[Any, ...]:
        """The observer's answer to one of the schedule's questions: the non-null first column of its rows. The
        question's SQL may name ``{t}`` and the schedule's params (DBAPI ``%(name)s``)."""
        sql = self.sql_for(session, schedule.questions[question])
        if sql is None:
            return ()
        query = getattr(self.observer, "query", None)
        if query is None:
            raise ValueError(f"the lock observer of {self.engine_names[session][0]} cannot be asked questions")
        rows = query(sql.replace("{t}", self.table), dict(schedule.params))
        return tuple(r[0] for r in rows if r[0] is not None)


class _Run:
    """The state of one schedule run."""

    def __init__(self, executor: ScheduleExecutor, schedule: Schedule):
        self.x = executor
        self.schedule = schedule
        self.execution = Execution(schedule, executor.isolation)
        self.values: dict[str, Any] = {}
        self.pending: dict[str, tuple[StepResult, concurrent.futures.Future[Any]]] = {}
        self.aborted: dict[str, StepResult] = {}
        self.open: set[str] = set()
        self.issued: dict[str, float] = {}  # step -> when it was issued
        self.started = time.monotonic()

    def left(self) -> float:
        remaining = self.x.deadline - (time.monotonic() - self.started)
        if remaining <= 0:
            raise HarnessDeadline(f"schedule exceeded the harness deadline of {self.x.deadline}s")
        return remaining

    def all_steps(self) -> None:
        todo = list(self.schedule.order)
        while todo or self.pending:
            name = next((n for n in todo if self.schedule.session_of(n) not in self.pending), None)
            if name is None:  # every remaining step belongs to a waiting session: wait for one to finish
                futures = [f for _, f in self.pending.values()]
                done, _ = concurrent.futures.wait(futures, timeout=self.left(),
                                                  return_when=concurrent.futures.FIRST_COMPLETED)
                if not done:
                    raise HarnessDeadline("every session waits on a lock and none was released")
                self.collect(resumed_after=None)
                continue
            todo.remove(name)
            self.issue(self.schedule.steps[name])
            self.collect(resumed_after=name)

    def issue(self, step: Step) -> None:
        s = self.x.sessions[step.session]
        sql = step.sql if step.control else self.x.sql_for(step.session, step.sql)
        result = StepResult(step.name, step.session, sql or "")
        self.issued[step.name] = time.monotonic()
        if step.session in self.aborted:
            result.status = SKIPPED
            result.message = f"transaction aborted at {self.aborted[step.session].step}"
            if step.control in ("commit", "rollback"):
                if s.in_transaction:
                    s.rollback()
                self.open.discard(step.session)
                del self.aborted[step.session]  # the session's next transaction (a spec's) starts afresh
            self.execution.results.append(result)
            return
        control = step.control
        try:
            if control == "begin":
                self.open.add(step.session)
                future = _BEGINS.submit(s.begin, self.x.isolation)
                self.watch(result, future)
                return
            if control == "commit":
                s.commit()
                self.open.discard(step.session)
            elif control == "rollback":
                s.rollback()
                self.open.discard(step.session)
            elif sql is None:  # nothing to run on this engine
                result.status = OK
            else:
                bound = binds(sql, self.schedule.params)
                self.watch(result, s.submit(step.render(self.x.table, self.values, sql), bound))
                return
        except DriverError as err:
            if isinstance(err, HarnessDeadline) or err.cls in ("HarnessTimeout", "SessionBusy"):
                raise
            self.fail(result, err)
            if control in ("commit", "rollback"):
                self.open.discard(step.session)
                if s.in_transaction:
                    s.rollback()
        self.done(result)

    def watch(self, result: StepResult, future: concurrent.futures.Future[Any]) -> None:
        """Wait for a started step to finish, or to be seen waiting on a lock (then it stays pending)."""
        done, _ = concurrent.futures.wait([future], timeout=QUICK_S)
        if not done and self.x.waits(result.session, future):
            result.blocked = True
            self.pending[result.session] = (result, future)
            return
        self.finish(result, future)

    def finish(self, result: StepResult, future: concurrent.futures.Future[Any]) -> None:
        try:
            rows = future.result(self.left())
        except DriverError as err:
            if err.cls in ("HarnessTimeout", "SessionBusy"):
                raise
            self.fail(result, err)
        except concurrent.futures.TimeoutError:
            raise HarnessDeadline(f"step {result.step} did not finish within the harness deadline") from None
        else:
            result.rows = [tuple(r) for r in rows.rows] if rows is not None else []  # BEGIN returns nothing
            self.values[result.step] = result.value
        self.done(result)

    def done(self, result: StepResult) -> None:
        """Record a completed step: its time and, when the step asks one, the observer's answer."""
        result.elapsed_s = time.monotonic() - self.issued[result.step]
        question = self.schedule.steps[result.step].observe
        if question is not None and not result.failed:  # after a refusal there is nothing new to ask
            result.observed = self.x.ask(question, self.schedule, result.session)
        self.execution.results.append(result)

    def fail(self, result: StepResult, err: DriverError) -> None:
        result.status = classify(err, self.x.engines[result.session])
        result.code = err.code
        result.message = err.message
        result.error = err
        self.aborted.setdefault(result.session, result)

    def collect(self, resumed_after: str | None) -> None:
        """Record the waiting steps the last step released (the observer no longer sees them waiting)."""
        for session, (result, future) in list(self.pending.items()):
            s = self.x.sessions[session]
            if not future.done() and session not in self.x.unobserved and self.x.observer.is_blocked(s):
                continue
            if not future.done() and self.x.waits(session, future):
                continue  # released, then waiting on another lock
            del self.pending[session]
            # released by the step issued last; by nothing of ours when that step is the waiting one itself
            result.resumed_after = resumed_after if resumed_after != result.step else None
            self.finish(result, future)

    def end_transactions(self) -> None:
        """Leave no transaction open (after a harness failure too): waiting steps are released by the
        others' rollbacks, bounded by the engine's lock timeout."""
        for session in list(self.open):
            if session in self.pending:
                continue
            s = self.x.sessions[session]
            try:
                if s.in_transaction:
                    s.rollback()
            except DriverError:
                pass
        for session, (_result, future) in list(self.pending.items()):
            try:
                future.result(self.x.deadline)
            except (DriverError, concurrent.futures.TimeoutError):
                pass
            s = self.x.sessions[session]
            try:
                if s.in_transaction:
                    s.rollback()
            except DriverError:
                pass
        self.pending.clear()
