"""postgres-embedded is started by dbmatrix and always stopped and deleted: at exit, on Ctrl-C, on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DBMATRIX = str(Path(sys.executable).with_name("dbmatrix"))


PG_DRIVERS = [f"{layer}{d}" for layer in ("", "sa-core+", "sa-orm+") for d in ("asyncpg", "psycopg", "psycopg2")]


def _embedded_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("dbmatrix_pg_*"))


def _postgres_processes(directory: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(directory) in line and "postgres" in line]


def _start_run(out: Path, drivers: str = "psycopg,asyncpg") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [DBMATRIX, "run", "--target", "postgres-embedded", "--driver", drivers,
         "--case", "types.*", "--out", str(out), "--cases", str(REPO / "cases")],
        cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_new_server(before: set[Path], proc: subprocess.Popen[str], timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = _embedded_dirs() - before
        for d in new:
            if (d / "data" / "postmaster.pid").exists():
                return d
        if proc.poll() is not None:
            pytest.fail(f"dbmatrix exited before the embedded server started: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("embedded PostgreSQL did not start within 60 s")


def test_embedded_server_is_removed_after_a_normal_run(tmp_path: Path) -> None:
    before = _embedded_dirs()
    proc = _start_run(tmp_path / "out")
    server_dir = _wait_for_new_server(before, proc)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode in (0, 1), stderr
    doc = json.loads((tmp_path / "out" / "latest" / "results.json").read_text())
    assert doc["targets"][0]["server_version"].startswith("18")
    assert not server_dir.exists()
    assert _postgres_processes(server_dir) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_embedded_server_is_removed_when_interrupted(tmp_path: Path, sig: signal.Signals) -> None:
    before = _embedded_dirs()
    # every PostgreSQL driver: long enough (seconds) that the signal lands while cases run
    proc = _start_run(tmp_path / "out", drivers=",".join(PG_DRIVERS))
    server_dir = _wait_for_new_server(before, proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, (proc.returncode, stdout[-500:], stderr[-500:])
    assert "Traceback" not in stderr
    assert not server_dir.exists(), "the embedded server's directory was left behind"
    assert _postgres_processes(server_dir) == []
    results = tmp_path / "out" / "latest" / "results.json"
    if results.exists():  # an interrupted run must not look complete
        assert json.loads(results.read_text())["run"]["complete"] is False
