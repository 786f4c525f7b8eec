"""The isolation cells' SQL transcripts are what they claim: replayed by hand's rules (one plain-driver connection per
session, statements in the order written, a BLOCKS statement left waiting while the next lines run) on a fresh
database, every statement returns what its comment says, blocks where it says BLOCKS (seen waiting by the server),
fails with the code it names, and the final state is the one the cell saw.

The cells run through pytest end to end (PostgreSQL and MariaDB; schedules that block, abort, deadlock and hold a
session back), then each ``transcript.sql`` they wrote is replayed through psycopg / pymysql, not dbmatrix's
sessions: what a reader with two psql / mariadb shells would do.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql
from live import MARIADB_URL
from sqlalchemy.engine import make_url

from dbmatrix.engines import engine_for
from dbmatrix.schedules.transcript import IN_PLACE, RETURNS, row_text

REPO = Path(__file__).resolve().parents[1]
CASES = ("(predicate_many_preceders_write or read_skew_write_2 or read_only_anomaly) "
         "and not uncommitted and not deferred and not immediate")
WAIT_S = 20.0
_NOTE = re.compile(r"^(?P<session>\S+) (?P<step>\S+): (?P<what>.*)$")
_BACK = re.compile(rf"^{RETURNS} (?P<session>\S+) (?P<step>\S+) returns: (?P<what>.*)$")


@dataclass
class Line:
    kind: str  # "setup" | "step" | "returns" | "final" | "teardown"
    sql: list[str]
    session: str = ""
    step: str = ""
    what: str = ""


def parse(text: str) -> list[Line]:
    """The transcript's lines a reader acts on; comments are skipped as a shell skips them."""
    out: list[Line] = []
    for raw in text.splitlines():
        back = _BACK.match(raw)
        if back:
            out.append(Line("returns", [], back["session"], back["step"], back["what"]))
            continue
        if not raw.strip() or raw.startswith("--"):
            continue
        sql, _, note = raw.partition(";  -- ")
        statements = [s.strip() for s in sql.rstrip(";").split(";") if s.strip()]
        if not note:
            out.append(Line("setup", statements))
        elif note == "teardown":
            out.append(Line("teardown", statements))
        elif note.startswith("any session, at the end: "):
            out.append(Line("final", statements, what=note.removeprefix("any session, at the end: ")))
        else:
            m = _NOTE.match(note)
            assert m, f"unreadable comment: {raw}"
            out.append(Line("step", statements, m["session"], m["step"], m["what"]))
    return out


def shown(cursor_rows: list[tuple] | None, sql: str) -> str:
    """A statement's result written as the transcript writes it."""
    if cursor_rows is None or not cursor_rows:
        return "no rows" if sql.lower().startswith(("select", "with")) else "ok"
    if len(cursor_rows) == 1 and len(cursor_rows[0]) == 1:
        return str(cursor_rows[0][0])
    return ", ".join(row_text(r) for r in cursor_rows)


class Shell:
    """One plain-driver connection in autocommit, as a psql / mariadb shell; statements run on its own thread."""

    def __init__(self, connect: Callable[[], Any], code_of: Callable[[Exception], str]):
        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.conn = self.pool.submit(connect).result(WAIT_S)
        self.code_of = code_of
        self.server_id = self.pool.submit(self._run_one, "select pg_backend_pid()" if isinstance(
            self.conn, psycopg.Connection) else "select connection_id()").result(WAIT_S)

    def _run_one(self, sql: str) -> Any:
        cur = self.conn.cursor()
        cur.execute(sql)
        return cur.fetchall()[0][0] if cur.description else None

    def _run(self, statements: list[str]) -> str:
        text = "ok"
        try:
            for sql in statements:
                cur = self.conn.cursor()
                cur.execute(sql)
                text = shown([tuple(r) for r in cur.fetchall()] if cur.description else None, sql)
        except Exception as exc:  # noqa: BLE001 - the engine's refusal is the result being checked
            return f"ERROR {self.code_of(exc)}"
        return text

    def submit(self, statements: list[str]) -> concurrent.futures.Future[str]:
        return self.pool.submit(self._run, statements)


def expected(what: str) -> str:
    """What a comment promises: an error by its code only (the message is the server's, for the reader)."""
    return " ".join(what.split()[:2]) if what.startswith("ERROR ") else what


def replay(text: str, shell: Callable[[], Shell], blocked: Callable[[Shell], bool]) -> list[str]:
    """Run the transcript; returns every mismatch between what a line says and what the replay saw."""
    lines = parse(text)
    sessions = sorted({ln.session for ln in lines if ln.kind == "step"})
    shells = {s: shell() for s in sessions}
    any_shell = shells[sessions[0]]
    waiting: dict[str, tuple[Line, concurrent.futures.Future[str]]] = {}
    problems: list[str] = []
    try:
        for ln in lines:
            if ln.kind in ("setup", "teardown"):
                got = any_shell.submit(ln.sql).result(WAIT_S)
                if got.startswith("ERROR"):
                    problems.append(f"{ln.kind} {ln.sql} failed: {got}")
            elif ln.kind == "final":
                got = any_shell.submit(ln.sql).result(WAIT_S)
                if got != ln.what:
                    problems.append(f"final state {got}, the transcript says {ln.what}")
            elif ln.kind == "returns":
                step_line, future = waiting.pop(ln.session)
                got = future.result(WAIT_S)
                if got != expected(ln.what):
                    problems.append(f"{ln.session} {ln.step} returned {got}, the transcript says {ln.what}")
            else:
                assert ln.session not in waiting, f"{ln.session} {ln.step} issued while its session waits"
                future = shells[ln.session].submit(ln.sql)
                if ln.what == "BLOCKS":
                    deadline = time.monotonic() + WAIT_S
                    while not future.done() and not blocked(shells[ln.session]) and time.monotonic() < deadline:
                        time.sleep(0.01)
                    if future.done():
                        problems.append(f"{ln.session} {ln.step} returned {future.result()} instead of blocking")
                    elif not blocked(shells[ln.session]):
                        problems.append(f"{ln.session} {ln.step} neither returned nor waited on a lock")
                    waiting[ln.session] = (ln, future)
                    continue
                got = future.result(WAIT_S)
                if not ln.what.startswith(IN_PLACE) and got != expected(ln.what):
                    problems.append(f"{ln.session} {ln.step} returned {got}, the transcript says {ln.what}")
        assert not waiting, f"still waiting at the end: {sorted(waiting)}"
    finally:
        for s in shells.values():
            s.pool.shutdown(wait=False, cancel_futures=True)
    return problems


def transcript_path(r: dict[str, Any]) -> str:
    (path,) = [a for a in r["artifacts"] if a.endswith("/transcript.sql")]
    return path


def run_cells(tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBMATRIX_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "cases/test_isolation.py", "-q", "-p", "no:randomly", "--dbm-out", str(out),
         "--target", "postgres", "--target", "mariadb", "--driver", "psycopg,mysqlclient", "-k", CASES],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / "latest" / "results.json").read_text())
    doc["_dir"] = out / doc["run"]["id"]
    return doc


def test_every_transcript_replays_through_plain_drivers_to_the_same_outcome(tmp_path: Path) -> None:
    doc = run_cells(tmp_path)
    cells = [r for r in doc["results"] if r["outcome"] in ("allowed", "prevented")]
    kinds = {(r["target"], r["outcome"], r.get("mechanism")) for r in cells}
    # the schedules chosen here block, abort (40001), deadlock (1213) and let the anomaly happen
    assert {("postgres", "prevented", "abort:40001"), ("mariadb", "prevented", "abort:1213"),
            ("postgres", "allowed", None), ("mariadb", "allowed", None)} <= kinds, kinds
    name = f"dbm_replay_{uuid.uuid4().hex[:8]}"
    admin_pg = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
    admin_my = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    admin_pg.execute(f"create database {name}")
    admin_my.cursor().execute(f"create database {name}")
    shells: list[Shell] = []
    observer = engine_for("mysql", "mariadb").observer(make_url(MARIADB_URL))

    def pg_shell() -> Shell:
        shells.append(Shell(lambda: psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}", autocommit=True),
                            lambda e: str(getattr(e, "sqlstate", None) or type(e).__name__)))
        return shells[-1]

    def my_shell() -> Shell:
        shells.append(Shell(lambda: pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                                                    database=name, autocommit=True),
                            lambda e: str(e.args[0]) if e.args else type(e).__name__))
        return shells[-1]

    def pg_blocked(s: Shell) -> bool:
        row = admin_pg.execute("select wait_event_type from pg_stat_activity where pid = %s", (s.server_id,)).fetchone()
        return row is not None and row[0] == "Lock"

    def my_blocked(s: Shell) -> bool:  # InnoDB's own status (information_schema.innodb_trx is a stale cache)
        return observer.row_lock_wait(int(s.server_id))

    try:
        failures = []
        for r in cells:
            path = transcript_path(r)
            text = (doc["_dir"] / path).read_text()
            outcome = r["outcome"] + (f" ({r['mechanism']})" if r["outcome"] == "prevented" else ":")
            assert f"-- outcome: {outcome}" in text, (path, text[:400])
            pg = r["target"] == "postgres"
            problems = replay(text, pg_shell if pg else my_shell, pg_blocked if pg else my_blocked)
            failures += [f"{r['case']} {r['target']} {r['params']['isolation']}: {p}" for p in problems]
        assert not failures, "\n".join(failures)
        # and the replay does see a transcript that claims another code than the server answers
        aborted = next(r for r in cells if r["target"] == "postgres" and r.get("mechanism") == "abort:40001")
        text = (doc["_dir"] / transcript_path(aborted)).read_text().replace("ERROR 40001", "ERROR 40P01")
        assert any("40P01" in p for p in replay(text, pg_shell, pg_blocked))
        assert len(cells) == 18, len(cells)  # 3 cases x 3 levels x 2 targets
    finally:
        for s in shells:  # a failed replay may leave a statement waiting: end its server session first
            try:
                if isinstance(s.conn, psycopg.Connection):
                    admin_pg.execute("select pg_terminate_backend(%s)", (s.server_id,))
                else:
                    admin_my.cursor().execute(f"kill {int(s.server_id)}")
                s.conn.close()
            except Exception:  # noqa: BLE001 - closing what a replay left behind, already ended by the server
                pass
        admin_pg.execute(f"drop database if exists {name} with (force)")
        admin_my.cursor().execute(f"drop database if exists {name}")
        admin_pg.close()
        admin_my.close()
        observer.close()
