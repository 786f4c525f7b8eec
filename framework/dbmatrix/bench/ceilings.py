"""Ceilings: what a C client gets from the same server with the same statements and concurrency, in the same run.

PostgreSQL: ``pgbench -M prepared`` with a custom script of the workload's statements, latencies from its
per-transaction log (``-l``) folded into an HdrHistogram. MariaDB/MySQL: ``mysqlslap`` running a file of the same
statements with literal values (text protocol, as PyMySQL sends them); it reports only the run time, so no
percentiles. Each repeat is one tool run; the tools are found on PATH or in ``/usr/lib/postgresql/*/bin``.

``insert_batch`` is one transaction with a single INSERT of 1,000 literal rows (multi-VALUES) for both tools, and
pgbench sends it with ``-M simple``: a prepared statement without parameters would send the rows once and then only
re-execute them, which no client writing new rows can do.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..redaction import register_secret, scrub
from ..targets.model import Target
from ..timing import histogram_of
from .schema import EVENTS, USERS
from .workloads import RING, call_params, insert_batches, json_sql, lock_select_sql, pgbench_script, values_insert_sql

TOOL_TIMEOUT_S = 120
_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)
_SLAP_AVG = re.compile(r"Average number of seconds to run all queries: ([0-9.]+) seconds")


class CeilingError(Exception):
    """The ceiling tool could not run or failed (one line)."""


@dataclass
class CeilingRun:
    tool: str
    qps: list[float] = field(default_factory=list)  # one per repeat
    hist: Any = None  # HdrHistogram of latencies (ns) over all repeats, or None
    knobs: dict[str, str] = field(default_factory=dict)


def find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def tool_for(target: Target) -> str | None:
    return {"postgresql": "pgbench", "mysql": "mysqlslap"}.get(target.kind)


def _search_path(target: Target) -> str | None:
    for stmt in target.init_sql:  # a scratch *schema* (no CREATE DATABASE right) is selected by search_path
        m = re.match(r"SET search_path TO (.+)$", stmt)
        if m:
            return m.group(1)
    return None


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    try:
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CeilingError(f"{Path(cmd[0]).name} exceeded {TOOL_TIMEOUT_S}s") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise CeilingError(scrub(f"{Path(cmd[0]).name} failed: {lines[-1] if lines else proc.returncode}"))
    return proc.stdout


def _tool_and_url(name: str, package: str, target: Target) -> tuple[str, Any]:
    exe = find_tool(name)
    if exe is None:
        raise CeilingError(f"{name} not found (install the {package} client package)")
    url = target.scratch_url
    if url is None:
        raise CeilingError(f"target {target.name} has no scratch space")
    register_secret(url.password)
    return exe, url


def pgbench(target: Target, workload: str, rows: int, concurrency: int, seconds: float, repeats: int) -> CeilingRun:
    exe, url = _tool_and_url("pgbench", "PostgreSQL", target)
    # Behind a transaction pooler named prepared statements may not survive (PgBouncer < 1.21): extended protocol.
    mode = "extended" if target.pooler == "transaction" else "prepared"
    script = "the workload's statements"
    if workload == "insert_batch":
        mode, script = "simple", "BEGIN; INSERT of 1,000 literal rows (multi-VALUES); END"
    run = CeilingRun("pgbench", knobs={"mode": f"-M {mode}", "script": script,
                                       "clients": f"-c {concurrency} -j {concurrency}"})
    env = dict(os.environ, PGCONNECT_TIMEOUT="10", PGAPPNAME="dbmatrix-bench")
    if url.password:
        env["PGPASSWORD"] = url.password
    if _search_path(target):
        env["PGOPTIONS"] = f"-c search_path={_search_path(target)}"
    host = url.query.get("host", url.host) if url.query else url.host
    latencies: list[int] = []
    with tempfile.TemporaryDirectory(prefix="dbmatrix_pgbench_") as tmp:
        work = Path(tmp)
        (work / "script.sql").write_text(pgbench_script(workload, rows))
        for r in range(repeats):
            prefix = f"log{r}"
            cmd = [exe, "-n", "-M", mode, "-f", "script.sql", "-c", str(concurrency), "-j", str(concurrency),
                   "-T", str(max(1, round(seconds))), "-l", f"--log-prefix={prefix}"]
            cmd += [f"--host={host}"] if host else []
            cmd += [f"--port={url.port}"] if url.port else []
            cmd += [f"--username={url.username}"] if url.username else []
            out = _run([*cmd, str(url.database)], env, work)
            m = _TPS.search(out)
            if not m:
                raise CeilingError("pgbench printed no tps line")
            run.qps.append(float(m.group(1)))
            for log in work.glob(f"{prefix}.*"):
                for line in log.read_text().splitlines():
                    parts = line.split()
                    if len(parts) >= 3 and parts[2].isdigit():
                        latencies.append(int(parts[2]) * 1000)  # per-transaction latency in us -> ns
                log.unlink()
    run.hist = histogram_of(latencies) if latencies else None
    return run


def slap_statements(workload: str, rows: int, seed: int) -> tuple[list[str], int]:
    """The workload as literal SQL statements for mysqlslap, and how many statements make one operation."""
    if workload == "insert_batch":
        stmts = []
        for batch in insert_batches(rows, seed):
            stmts += ["START TRANSACTION", values_insert_sql(batch), "COMMIT"]
        return stmts, 3
    params = call_params(workload, rows, seed)[: RING // 4]
    if workload == "pk_select":
        return [f"SELECT id, name, email FROM {USERS} WHERE id = {p['id']}" for p in params], 1
    if workload == "range_select":
        return [f"SELECT id, name, email, score FROM {USERS} WHERE id BETWEEN {p['lo']} AND {p['hi']}"
                for p in params], 1
    if workload == "json_select":
        sql = json_sql("mysql")
        return [sql.replace(":lo", str(p["lo"])).replace(":hi", str(p["hi"])).replace(":tag", f"'{p['tag']}'")
                for p in params], 1
    if workload == "update_txn":
        stmts = []
        for p in params:
            stmts += ["START TRANSACTION", lock_select_sql("mysql").replace(":id", str(p["id"])),
                      f"UPDATE {USERS} SET score = score + 1 WHERE id = {p['id']}",
                      f"INSERT INTO {EVENTS} (user_id, payload) VALUES ({p['id']}, 'touched')", "COMMIT"]
        return stmts, 5
    raise KeyError(workload)


def mysqlslap(target: Target, workload: str, rows: int, concurrency: int, seconds: float, repeats: int) -> CeilingRun:
    exe, url = _tool_and_url("mysqlslap", "MariaDB/MySQL", target)
    stmts, per_op = slap_statements(workload, rows, seed=7)
    knobs = {"protocol": "text, literal values", "clients": f"--concurrency={concurrency}"}
    if workload == "insert_batch":
        knobs["statements"] = "START TRANSACTION; INSERT of 1,000 literal rows (multi-VALUES); COMMIT"
    run = CeilingRun("mysqlslap", knobs=knobs)
    env = dict(os.environ)
    if url.password:
        env["MYSQL_PWD"] = url.password
    base = [exe, f"--host={url.host or '127.0.0.1'}", f"--port={url.port or 3306}", f"--user={url.username or 'root'}",
            f"--create-schema={url.database}", "--no-drop", f"--concurrency={concurrency}", "--iterations=1",
            "--delimiter=;", "--query=queries.sql"]
    with tempfile.TemporaryDirectory(prefix="dbmatrix_slap_") as tmp:
        work = Path(tmp)
        (work / "queries.sql").write_text(";\n".join(stmts) + ";\n")
        # calibrate: how many statements fill ``seconds`` (mysqlslap counts statements over all clients)
        n = len(stmts) * concurrency
        t0 = time.perf_counter()
        _slap_seconds(_run([*base, f"--number-of-queries={n}"], env, work))
        per_stmt = max(time.perf_counter() - t0, 1e-3) / n
        n = max(len(stmts), int(seconds / per_stmt) // per_op * per_op)
        for _ in range(repeats):
            took = _slap_seconds(_run([*base, f"--number-of-queries={n}"], env, work))
            run.qps.append(n / per_op / took)
    return run


def _slap_seconds(out: str) -> float:
    m = _SLAP_AVG.search(out)
    if not m:
        raise CeilingError("mysqlslap printed no timing line")
    return max(float(m.group(1)), 1e-3)


def measure(target: Target, workload: str, rows: int, concurrency: int, seconds: float, repeats: int) -> CeilingRun:
    if target.kind == "postgresql":
        return pgbench(target, workload, rows, concurrency, seconds, repeats)
    if target.kind == "mysql":
        return mysqlslap(target, workload, rows, concurrency, seconds, repeats)
    raise CeilingError(f"no ceiling tool for {target.kind}")


