"""Expectations: what each engine is known to do, from ``cases/expectations/<kind>.toml``.

Each file holds ``[[expect]]`` entries; the last entry that matches a cell wins::

    [[expect]]
    case = "types.float_specials"   # glob over case ids
    outcome = "unsupported"
    reason = "MariaDB DOUBLE has no NaN or infinity"   # required: a known deviation says why
    engine = "mariadb"              # optional filters: engine, pooler, target (glob), driver (glob or list), params
    driver = ["asyncpg", "sa-*+asyncpg"]
    error = "1064"                  # the engine's code (SQLSTATE, errno, SQLITE_* name) or the driver's
                                    # exception class the cell's mechanism must show; a list allows several

Filters name target *properties* (engine, ``pooler = "transaction"``) so a user's own target with the same
properties gets the same expectations; ``target`` (a name glob) is for a user's own local exceptions only.

Unknown keys, unknown outcomes and missing reasons are refused (UsageError), so a typo cannot silently
turn an expectation off. An ``unsupported`` expectation must name its ``error``: a refusal for another
reason (a syntax error from a typo, a missing table) is then a deviation, never "as expected".
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError
from .results import AS_EXPECTED, DEVIATION, ERROR, OUTCOMES, SKIPPED, UNSUPPORTED

_KEYS = {"case", "outcome", "reason", "engine", "pooler", "target", "driver", "params", "error"}
POOLERS = {"transaction", "session", "none"}
KINDS = {"sqlite", "postgresql", "mysql", "cockroachdb"}
ENGINES = {"sqlite", "postgresql", "mysql", "mariadb", "cockroachdb"}


@dataclass(frozen=True)
class Expectation:
    case: str
    outcome: str
    reason: str
    engine: str | None = None
    target: str | None = None
    drivers: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()  # the error codes or driver exception classes the cell's mechanism may show
    pooler: str | None = None  # "transaction" | "session" | "none" (a target behind no pooler)

    @property
    def mechanism(self) -> str | None:
        """The predicted mechanism, as shown next to the observed one: ``error:55P03`` (``|`` between choices)."""
        return "error:" + "|".join(self.errors) if self.errors else None

    def matches(self, case: str, engine: str, target: str, driver: str, params: dict[str, Any],
                pooler: str | None = None) -> bool:
        if not fnmatch.fnmatchcase(case, self.case):
            return False
        if self.engine and self.engine != engine:
            return False
        if self.pooler and self.pooler != (pooler or "none"):
            return False
        if self.target and not fnmatch.fnmatchcase(target, self.target):
            return False
        if self.drivers and not any(fnmatch.fnmatchcase(driver, d) for d in self.drivers):
            return False
        return all(str(params.get(k)) == str(v) for k, v in self.params.items())


class Expectations:
    """All expectation files of a case directory, by target kind."""

    def __init__(self, by_kind: dict[str, list[Expectation]] | None = None):
        self.by_kind = by_kind or {}

    @classmethod
    def load(cls, directory: Path) -> Expectations:
        by_kind: dict[str, list[Expectation]] = {}
        if directory.is_dir():
            for path in sorted(directory.glob("*.toml")):
                by_kind[path.stem] = _load_file(path)
        return cls(by_kind)

    def lookup(self, kind: str, case: str, engine: str, target: str, driver: str, params: dict[str, Any],
               pooler: str | None = None) -> Expectation | None:
        # the detected product decides where it has a file of its own: a CockroachDB server reached through a
        # postgresql:// URL (kind postgresql) is still CockroachDB, not PostgreSQL
        if engine in KINDS and engine in self.by_kind:
            kind = engine
        found = None
        for exp in self.by_kind.get(kind, []):
            if exp.matches(case, engine, target, driver, params, pooler):
                found = exp
        return found


def mechanism_error(mechanism: str | None) -> str | None:
    """The error a mechanism names: ``error:55P03`` / ``abort:40001`` -> the code (or driver exception class)."""
    kind, _, code = (mechanism or "").partition(":")
    return code if kind in ("error", "abort") and code else None


def verdict(outcome: str, expected: str | None, mechanism: str | None = None, errors: tuple[str, ...] = ()
            ) -> str | None:
    """``as-expected`` or ``deviation``; skipped cells have no verdict, errors always deviate.

    The outcome must be the expected one, and an error the cell met must be a predicted one: with ``errors``
    the mechanism's code must be among them; an ``unsupported`` cell, or any cell whose mechanism names an
    error, deviates when nothing predicted that error.
    """
    if outcome == SKIPPED:
        return None
    if outcome == ERROR or outcome != expected:
        return DEVIATION
    observed = mechanism_error(mechanism)
    if errors:
        return AS_EXPECTED if observed in errors else DEVIATION
    return DEVIATION if observed is not None or outcome == UNSUPPORTED else AS_EXPECTED


def _load_file(path: Path) -> list[Expectation]:
    if path.stem not in KINDS:
        raise UsageError(f"{path}: expectation files are named after a target kind: {', '.join(sorted(KINDS))}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read expectations {path}: {exc}") from None
    extra = set(data) - {"expect"}
    if extra:
        raise UsageError(f"{path}: unknown top-level keys {', '.join(sorted(extra))} (only [[expect]] entries)")
    entries = data.get("expect", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UsageError(f"{path}: 'expect' must be a list of [[expect]] tables")
    out: list[Expectation] = []
    for i, entry in enumerate(entries, start=1):
        where = f"{path}: [[expect]] #{i}"
        unknown = set(entry) - _KEYS
        if unknown:
            raise UsageError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        for key in ("case", "outcome", "reason"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise UsageError(f"{where}: '{key}' is required (a string)")
        for key in ("engine", "target", "pooler"):
            if key in entry and not isinstance(entry[key], str):
                raise UsageError(f"{where}: '{key}' must be a string")
        if "engine" in entry and entry["engine"] not in ENGINES:
            raise UsageError(f"{where}: unknown engine {entry['engine']!r}; one of {', '.join(sorted(ENGINES))}")
        if "pooler" in entry and entry["pooler"] not in POOLERS:
            raise UsageError(f"{where}: unknown pooler {entry['pooler']!r}; one of {', '.join(sorted(POOLERS))}")
        if entry["outcome"] not in OUTCOMES:
            raise UsageError(f"{where}: unknown outcome {entry['outcome']!r}")
        drivers = entry.get("driver", ())
        drivers = [drivers] if isinstance(drivers, str) else drivers
        if not isinstance(drivers, list | tuple) or not all(isinstance(d, str) for d in drivers):
            raise UsageError(f"{where}: 'driver' must be a string or a list of strings")
        params = entry.get("params", {})
        if not isinstance(params, dict):
            raise UsageError(f"{where}: 'params' must be a table")
        errors = entry.get("error", ())
        errors = [errors] if isinstance(errors, str) else errors
        if not isinstance(errors, list | tuple) or not all(isinstance(e, str) and e.strip() for e in errors):
            raise UsageError(f"{where}: 'error' must be an error code or class name, or a list of them")
        if entry["outcome"] == UNSUPPORTED and not errors:
            raise UsageError(f"{where}: an 'unsupported' expectation must name the 'error' it predicts "
                             "(SQLSTATE, errno, SQLITE_* name or the driver's exception class)")
        out.append(Expectation(entry["case"], entry["outcome"], entry["reason"], entry.get("engine"),
                               entry.get("target"), tuple(drivers), dict(params), tuple(errors),
                               entry.get("pooler")))
    return out
