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
