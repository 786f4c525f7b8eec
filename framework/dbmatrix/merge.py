"""``dbmatrix merge``: fold the shard documents of one sharded run (pytest-xdist workers, CI jobs) into the
run's results.json and reports. The fold itself is ``results.merge_documents``, a pure function of the shards."""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .matrix import write_run
from .results import load_document, merge_documents

DEFAULT_OUT = Path("dbmatrix-out")


def shard_files(inputs: list[Path]) -> list[Path]:
    """The shard files named: files as given, run folders as their ``shards/*.json``."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = sorted((p / "shards").glob("*.json")) or sorted(p.glob("*.json"))
            if not found:
                raise UsageError(f"no shard documents in {p} (expected {p / 'shards'}/*.json)")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise UsageError(f"shard not found: {p}")
    return list(dict.fromkeys(files))


def default_root(files: list[Path]) -> Path:
    """Where ``<run-id>/`` goes when no --out is given: the root the shards already sit in
    (``<root>/<run-id>/shards/x.json``), else ./dbmatrix-out."""
    roots = {f.resolve().parent.parent.parent for f in files if f.resolve().parent.name == "shards"}
    return roots.pop() if len(roots) == 1 and len(files) else DEFAULT_OUT


def merge_shards(inputs: list[Path], out: Path | None = None) -> Path:
    """Merge, write ``<out>/<run-id>/results.json`` + reports, point ``<out>/latest`` at it; returns the path."""
    files = shard_files(inputs)
    docs = [load_document(f) for f in files]
    try:
        merged = merge_documents(docs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return write_run(merged, out or default_root(files))
