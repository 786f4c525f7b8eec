"""The owner marker of a scratch space: who made it (run id, process id, host), written when it is made.

``COMMENT ON DATABASE/SCHEMA`` on PostgreSQL and CockroachDB, the database ``COMMENT`` on MariaDB, a
``.dbmatrix-owner`` file in a temp directory. The scratch and embedded-server code stamps it; the leftover sweep
(``leftovers``) reads it to tell a dead run's space from anyone else's.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

MARKER_FILE = ".dbmatrix-owner"
_MARKER = re.compile(r"^dbmatrix scratch run=(?P<run>[A-Za-z0-9_]+) pid=(?P<pid>\d+) host=(?P<host>\S+)$")


@dataclass(frozen=True)
class Owner:
    run: str
    pid: int
    host: str

    def text(self) -> str:
        return f"dbmatrix scratch run={self.run} pid={self.pid} host={self.host}"

    def is_gone(self) -> bool:
        """True only when we can tell for sure: same host and no such process."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # exists, owned by someone else
        return False


def this_process(run_id: str) -> Owner:
    return Owner(run_id, os.getpid(), socket.gethostname())


def parse_marker(text: str | None) -> Owner | None:
    m = _MARKER.match((text or "").strip())
    return Owner(m["run"], int(m["pid"]), m["host"]) if m else None


def write_dir_marker(directory: Path, what: str, run_id: str = "none") -> None:
    owner = this_process(run_id)
    data = {"marker": owner.text(), "what": what}
    (directory / MARKER_FILE).write_text(json.dumps(data) + "\n", encoding="utf-8")


def read_dir_marker(directory: Path) -> tuple[Owner | None, str]:
    try:
        data = json.loads((directory / MARKER_FILE).read_text(encoding="utf-8"))
        return parse_marker(data.get("marker")), str(data.get("what", ""))
    except (OSError, ValueError, AttributeError):
        return None, ""


def marker_sql(kind: str, engine: str, scope: str, quoted: str, owner: Owner) -> str | None:
    """The statement that stamps ``owner`` on a scratch database or schema we just created (None: no way)."""
    text = owner.text()
    if kind in ("postgresql", "cockroachdb"):
        return f"COMMENT ON {scope.upper()} {quoted} IS '{text}'"
    if kind == "mysql" and engine == "mariadb":
        return f"ALTER DATABASE {quoted} COMMENT '{text}'"
    return None  # MySQL keeps no comment on a database
