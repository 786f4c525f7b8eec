"""Faults injected into real connections: a listener that accepts TCP and never answers (a hung server, a
firewall that swallows packets after the handshake) must make every verb give up within seconds with one line.

Each test starts its own mute listener on a free port; nothing here touches the shared servers.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys; from dbmatrix.cli import main; sys.exit(main())"]
GIVE_UP_S = 30  # the handshake bound is 5 s; the rest is start-up on a busy 2-core machine


@pytest.fixture
def mute_port() -> Iterator[int]:
    """A port whose listener accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for conn in held:
            conn.close()


def verb_args(verb: str, url: str, tmp_path: Path) -> list[str]:
    target = ["--target", f"mute={url}"]
    return {
        "targets": ["targets", *target],
        "clean": ["clean", "--dry-run", *target],
        "run": ["run", *target, "--require", "mute", "--case", "types.int*", "--out", str(tmp_path / "out"),
                "--cases", str(REPO / "cases")],
        "migrate": ["migrate", *target, "--require", "mute", "--alembic",
                    str(REPO / "tests" / "migrate_chains" / "app_project" / "alembic.ini"),
                    "--out", str(tmp_path / "out")],
    }[verb]


@pytest.mark.parametrize(("verb", "kind"), [("targets", "mysql"), ("clean", "mysql"), ("run", "mysql"),
                                            ("migrate", "mysql"), ("targets", "postgresql")])
def test_a_server_that_never_answers_makes_every_verb_give_up_with_one_line(
        verb: str, kind: str, mute_port: int, tmp_path: Path) -> None:
    """Before: a MySQL-kind target that accepted TCP and never answered hung ``run`` > 300 s and ``targets``,
    ``clean --dry-run``, ``migrate`` > 60 s (the connect timeout covered the TCP connect, not the greeting)."""
    url = f"{kind}://root@127.0.0.1:{mute_port}/test"
    start = time.monotonic()
    proc = subprocess.run([*CLI, *verb_args(verb, url, tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    took = time.monotonic() - start
    assert took < GIVE_UP_S, (verb, took)
    said = proc.stdout + proc.stderr
    assert "Traceback" not in said, said
    lines = [line for line in said.splitlines() if "does not answer" in line or "not searched" in line]
    assert lines, said
    if verb in ("run", "migrate"):  # --require: a target that must answer and does not is exit 2, one line
        assert proc.returncode == 2, said
        assert len(proc.stderr.strip().splitlines()) <= 2, proc.stderr


# --- a target that stops answering mid-run ------------------------------------------------------------------------

class FreezingProxy:
    """A TCP proxy to the shared PostgreSQL that, once ``flag`` exists, freezes: established connections get no
    more bytes and new ones are accepted and never answered (what a SIGSTOPped server looks like to a client)."""

    def __init__(self, flag: Path, upstream: tuple[str, int] = ("127.0.0.1", 5432)):
        self.flag, self.upstream = flag, upstream
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def frozen(self) -> bool:
        return self.flag.exists()

    def _accept(self) -> None:
        while True:
            try:
                client = self.server.accept()[0]
            except OSError:
                return
            self.socks.append(client)
            if self.frozen:
                continue
            up = socket.create_connection(self.upstream)
            self.socks.append(up)
            for a, b in ((client, up), (up, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self.frozen:
                    return  # swallow: the peer waits for an answer that never comes
                dst.sendall(data)
        except OSError:
            return

    def close(self) -> None:
        self.server.close()
        for s in self.socks:
            s.close()


FREEZING_CASES = '''
import os
import pathlib


def answer(cell):
    s = cell.connect()
    s.execute("SELECT 1")
    cell.supported()


def test_before(cell):
    answer(cell)


def test_freeze(cell):
    pathlib.Path(os.environ["DBM_TEST_FREEZE"]).touch()
    answer(cell)
''' + "".join(f"\n\ndef test_after_{i}(cell):\n    answer(cell)\n" for i in range(6))


def test_a_target_that_stops_answering_is_detected_once_and_its_remaining_cells_skipped(tmp_path: Path) -> None:
    """Before: a frozen PostgreSQL cost ~10 s per remaining cell (~18 min for 109 cells), each an ``error``."""
    import json
    import os

    import psycopg

    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "test_frozen.py").write_text(FREEZING_CASES, encoding="utf-8")
    flag = tmp_path / "freeze"
    proxy = FreezingProxy(flag)
    out = tmp_path / "out"
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [*CLI, "run", "--target", f"mute=postgresql://postgres@127.0.0.1:{proxy.port}/postgres",
             "--driver", "psycopg", "--cases", str(cases), "--out", str(out)],
            cwd=tmp_path, capture_output=True, text=True, timeout=240, env={**os.environ, "DBM_TEST_FREEZE": str(flag)})
    finally:
        proxy.close()
    took = time.monotonic() - start
    doc = json.loads((out / "latest" / "results.json").read_text(encoding="utf-8"))
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        pg.execute(f"DROP DATABASE IF EXISTS dbmatrix_{doc['run']['id']} WITH (FORCE)")  # the frozen run's scratch
    cells = {r["case"].rsplit(".", 1)[-1]: r for r in doc["results"]}
    assert cells["before"]["outcome"] == "supported", cells["before"]
    frozen = cells["freeze"]
    assert (frozen["outcome"], frozen["mechanism"]) == ("skipped", "target-stopped"), frozen
    after = [cells[f"after_{i}"] for i in range(6)]
    assert all(c["outcome"] == "skipped" and "stopped answering at" in c["detail"] for c in after), after
    assert all(c["metrics"].get("wall_ms", 0) < 1000 for c in after), after  # skipped at once, not timed out
    target = next(t for t in doc["targets"] if t["name"] == "mute")
    assert target["status"] == "skipped" and "stopped answering at" in target["reason"], target
    assert "stopped answering" in proc.stdout + proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert took < 90, took  # the freeze costs the connect bound twice, not a bound per remaining cell


def test_sigterm_with_a_frozen_server_says_truly_what_was_left_and_how_to_remove_it(tmp_path: Path) -> None:
    """Before: after SIGTERM with a frozen PostgreSQL, "could not drop scratch ..." then "scratch cleaned up"."""
    import os
    import signal

    import psycopg

    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "test_hang.py").write_text(
        "import os, pathlib, time\n\n\ndef test_hang(cell):\n    cell.connect().execute('SELECT 1')\n"
        "    pathlib.Path(os.environ['DBM_TEST_FREEZE']).touch()\n    time.sleep(120)\n", encoding="utf-8")
    flag = tmp_path / "freeze"
    proxy = FreezingProxy(flag)
    try:
        proc = subprocess.Popen(
            [*CLI, "run", "--target", f"mute=postgresql://postgres@127.0.0.1:{proxy.port}/postgres",
             "--driver", "psycopg", "--cases", str(cases), "--out", str(tmp_path / "out")],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "DBM_TEST_FREEZE": str(flag)})
        deadline = time.monotonic() + 120
        while not flag.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert flag.exists(), proc.communicate()
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        proxy.close()
    said = out + err
    names = [w.strip(",;") for w in said.split() if w.startswith("dbmatrix_")]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        for name in set(names):
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert proc.returncode == 143, said
    assert "could not drop scratch" in said and "scratch cleaned up" not in said, said
    assert "scratch left behind: dbmatrix_" in err and "dbmatrix clean" in err, err
    assert "Traceback" not in said
    assert took < 8, took  # the drop waits out one stopping connect bound (2 s), then the run is gone


@pytest.mark.parametrize(("source", "cause"), [("def test_x(cell:\n    pass\n", "SyntaxError"),
                                               ("import no_such_module_dbm\n", "No module named 'no_such_module_dbm'")])
def test_a_case_module_that_cannot_load_names_its_cause(source: str, cause: str, tmp_path: Path) -> None:
    """Before: "interrupted; nothing was written", exit 130, no cause."""
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "test_broken.py").write_text(source, encoding="utf-8")
    proc = subprocess.run([*CLI, "run", "--target", "sqlite", "--cases", str(cases), "--out", str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("dbmatrix: error: cannot load case module") and "test_broken.py" in last, last
    assert cause in last and "interrupted" not in proc.stderr, proc.stderr


def dirs_of(pid: int, tmp_root: Path) -> list[Path]:
    """The temp dirs whose owner marker names process ``pid`` (other engineers' runs share this machine)."""
    def marker(d: Path) -> str:
        try:
            return (d / ".dbmatrix-owner").read_text(errors="replace")
        except OSError:
            return ""

    return [d for d in tmp_root.glob("dbmatrix_*") if f"pid={pid} " in marker(d)]


def servers_in(dirs: list[Path]) -> list[str]:
    """Processes (an embedded postgres) whose command line names one of ``dirs``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found += [cmd for d in dirs if str(d) in cmd]
    return found


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_migrate_stopped_by_a_signal_stops_its_embedded_server_and_says_so(signum: str, tmp_path: Path) -> None:
    """Before: ``migrate`` had no signal handling: SIGTERM killed it at once and 5 of 5 runs left an embedded
    PostgreSQL server running (plus its temp dir)."""
    import os
    import signal
    import tempfile

    tmp_root = Path(tempfile.gettempdir())
    proc = subprocess.Popen(
        [*CLI, "migrate", "--target", "postgres-embedded", "--alembic",
         str(REPO / "tests" / "migrate_chains" / "app_project" / "alembic.ini"), "--out", str(tmp_path / "out")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # wait until the embedded server is up and the chain is being walked
        lines.append(line)
        if "walking the chain" in line:
            break
    ours = dirs_of(proc.pid, tmp_root)
    assert ours and servers_in(ours), "the embedded server of the run was not found"
    sent = time.monotonic()
    proc.send_signal(getattr(signal, signum))
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    err = "".join(lines) + err
    assert proc.returncode == 128 + getattr(signal, signum), err
    assert took < 15, took
    assert err.strip().splitlines()[-1] == f"dbmatrix: interrupted by {signum}; scratch cleaned up; no results written"
    assert "Traceback" not in out + err, err
    assert not servers_in(ours), "an embedded server outlived the run"
    assert not [d for d in ours if d.exists()], "a temp dir outlived the run"


def test_bench_stopped_by_ctrl_c_keeps_what_it_measured_and_says_what_it_wrote(tmp_path: Path) -> None:
    """Before: ``bench`` on SIGINT wrote results.json but said "nothing written", printed a ~70-line worker
    traceback, and dropped every cell already measured on the target in progress."""
    import json
    import os
    import signal

    out = tmp_path / "out"
    proc = subprocess.Popen([*CLI, "bench", "--target", "sqlite", "--driver", "sqlite3", "--quick", "--out", str(out)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=dict(os.environ))
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "[2/" in line:  # two cells measured on the target in progress
            break
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group, workers included
    rest_out, rest_err = proc.communicate(timeout=60)
    err = "".join(lines) + rest_err
    assert proc.returncode == 130, err
    assert "Traceback" not in err + rest_out, err
    last = err.strip().splitlines()[-1]
    said = "dbmatrix: interrupted by SIGINT; scratch cleaned up; partial results (incomplete) in "
    assert last.startswith(said), last
    written = Path(last.rsplit(" in ", 1)[1])
    doc = json.loads(written.read_text(encoding="utf-8"))
    assert doc["run"]["complete"] is False
    assert len([c for c in doc["results"] if c["outcome"] == "measured"]) >= 2, doc["results"]
