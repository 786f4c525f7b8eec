"""Result records and the run document (schema ``dbmatrix/results/v1``), written atomically.

Outcome names and metric names are defined here once; everything else imports them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .redaction import scrub

SCHEMA = "dbmatrix/results/v1"

# The outcome vocabulary of DESIGN.md, ordered from best to worst for `diff`.
SUPPORTED = "supported"
UNSUPPORTED = "unsupported"
DIFFERS = "differs"
ALLOWED = "allowed"
PREVENTED = "prevented"
PASS = "pass"
FAIL = "fail"
MEASURED = "measured"
ERROR = "error"
SKIPPED = "skipped"
OUTCOMES = (SUPPORTED, UNSUPPORTED, DIFFERS, ALLOWED, PREVENTED, PASS, FAIL, MEASURED, ERROR, SKIPPED)

# Verdicts: how an outcome compares with cases/expectations/<kind>.toml.
AS_EXPECTED = "as-expected"
DEVIATION = "deviation"
VERDICTS = (AS_EXPECTED, DEVIATION)

# Metric names (milliseconds unless the name says otherwise).
WALL_MS = "wall_ms"


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
    verdict: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "server_version": self.server_version,
            "url": scrub(self.url),
            "status": self.status,
            "reason": scrub(self.reason) if self.reason else None,
        }


@dataclass
class RunDocument:
    run_id: str = field(default_factory=new_run_id)
    started: str = field(default_factory=now_iso)
    finished: str | None = None
    complete: bool = False
    targets: list[TargetRecord] = field(default_factory=list)
    results: list[CellResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "run": {
                "id": self.run_id,
                "started": self.started,
                "finished": self.finished,
                "complete": self.complete,
                "dbmatrix": __version__,
                "python": platform.python_version(),
                "host": {"cpus": os.cpu_count()},
            },
            "targets": [t.to_dict() for t in self.targets],
            "results": [r.to_dict() for r in self.results],
        }


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temp file and rename, so a reader never sees half a document."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(scrub(text))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_document(path: Path) -> dict[str, Any]:
    """Read and validate a results document; raises UsageError with one clear line on bad input."""
    from .errors import UsageError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"results file not found: {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read results file {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"{path} is not a dbmatrix results document (schema {SCHEMA})")
    return data


def merge_documents(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge shard documents of one run cell by cell (a later shard wins for the same cell)."""
    if not docs:
        raise ValueError("nothing to merge")
    merged = json.loads(json.dumps(docs[0]))
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
    merged["targets"] = list(targets.values())
    merged["results"] = list(cells.values())
    return merged


def _cell_key(r: dict[str, Any]) -> tuple[str, str, str, str]:
    return (r["case"], r["target"], r["driver"], json.dumps(r.get("params") or {}, sort_keys=True))
