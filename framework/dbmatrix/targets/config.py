"""Which targets a run uses: built-in names, the user's config file, env, and the command line.

Precedence (later wins): built-in defaults < ``[tool.dbmatrix.targets]`` in ./pyproject.toml or
``[targets]`` in ./dbmatrix.toml < ``DBMATRIX_<NAME>_URL`` < ``--target NAME=URL``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from ..errors import UsageError
from .hosted import hosted_defaults
from .model import Target
from .urls import kind_of, parse_url

EMBEDDED = "postgres-embedded"


@dataclass(frozen=True)
class BuiltinTarget:
    kind: str
    default_url: str | None  # None: from config/env only (or managed by dbmatrix)
    managed: str | None = None
    pooler: str | None = None
    replica_of: str | None = None


BUILTIN: dict[str, BuiltinTarget] = {
    "sqlite": BuiltinTarget("sqlite", None, managed="sqlite-file"),
    EMBEDDED: BuiltinTarget("postgresql", None, managed="embedded-postgres"),
    "postgres": BuiltinTarget("postgresql", "postgresql://postgres@127.0.0.1:5432/postgres"),
    "postgres-replica": BuiltinTarget("postgresql", "postgresql://postgres@127.0.0.1:5433/postgres",
                                      replica_of="postgres"),
    "pgbouncer": BuiltinTarget("postgresql", "postgresql://postgres@127.0.0.1:6432/postgres", pooler="transaction"),
    "mariadb": BuiltinTarget("mysql", "mysql://root@127.0.0.1:3306/test"),
    "mysql": BuiltinTarget("mysql", None),
    "cockroach": BuiltinTarget("cockroachdb", None),
    "neon": BuiltinTarget("postgresql", None),
}
DEFAULT_RUN = ("sqlite", EMBEDDED)
SHOWN_UNTIL_CONFIGURED = ("cockroach", "neon")  # no server here by default; each default run says how to add one


def env_var(name: str) -> str:
    return f"DBMATRIX_{name.upper().replace('-', '_')}_URL"


def load_file_config(cwd: Path) -> dict[str, dict[str, str]]:
    """Targets from ./dbmatrix.toml (``[targets]``) or ./pyproject.toml (``[tool.dbmatrix.targets]``).

    Each entry is a URL string or a table ``{url = "...", pooler = "transaction", replica_of = "primary"}``.
    Anything else is refused with one line naming the file and the entry.
    """
    for path, dig in ((cwd / "dbmatrix.toml", ("targets",)), (cwd / "pyproject.toml", ("tool", "dbmatrix", "targets"))):
        if not path.is_file():
            continue
        try:
            data: object = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise UsageError(f"cannot read {path}: not UTF-8 text (byte {exc.start})") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}") from None
        where = ".".join(dig)
        for key in dig[:-1]:
            data = data.get(key, {}) if isinstance(data, dict) else data
        if not isinstance(data, dict):
            raise UsageError(f"{path}: [{'.'.join(dig[:-1])}] must be a table, not {type(data).__name__}")
        _refuse_unknown(path, ".".join(dig[:-1]), data, SECTIONS)
        data = data.get(dig[-1], {})
        if not isinstance(data, dict):
            raise UsageError(f"{path}: [{where}] must be a table of NAME = \"URL\" or NAME = {{ url = \"...\" }}, "
                             f"not {type(data).__name__}")
        if not data:
            continue
        return {name: _config_entry(path, name, entry) for name, entry in data.items()}
    return {}


def _config_entry(path: Path, name: str, entry: object) -> dict[str, str]:
    check_target_name(name, f"{path}: target")
    entry = {"url": entry} if isinstance(entry, str) else entry
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        raise UsageError(f"{path}: target {name!r} needs a url string")
    _refuse_unknown(path, f"target {name!r}", entry, ENTRY_KEYS)
    if "replica_of" in entry:
        check_target_name(entry["replica_of"], f"{path}: target {name!r}: replica_of")
    if "pooler" in entry and entry["pooler"] not in POOLERS:
        raise UsageError(f"{path}: target {name!r}: pooler must be one of {', '.join(POOLERS)}, "
                         f"not {entry['pooler']!r}")
    return entry


SECTIONS = ("targets", "migrate")  # what [tool.dbmatrix] and dbmatrix.toml may hold
ENTRY_KEYS = ("url", "pooler", "replica_of")


def _refuse_unknown(path: Path, where: str, table: dict[str, object], valid: tuple[str, ...]) -> None:
    """One line for the first key that is not ``valid``, with the nearest valid one: a typo such as
    ``[tool.dbmatrix.target]`` never silently turns a setting off."""
    for key in table:
        if key not in valid:
            near = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f"; did you mean {near[0]!r}?" if near else f"; valid: {', '.join(valid)}"
            place = f" in [{where}]" if where else ""
            raise UsageError(f"{path}: unknown key {str(key)!r}{place}{hint}")


POOLERS = ("transaction", "session")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,47}")


def check_target_name(name: object, what: str = "target") -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(f"{what} name {name!r} must be 1-48 letters, digits, '_', '.' or '-', starting with a "
                         "letter or digit")


def parse_target_option(value: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME=URL``."""
    name, sep, url = value.partition("=")
    name = name.strip()
    if not name:
        raise UsageError("--target needs NAME or NAME=URL")
    check_target_name(name, "--target")
    return name, (url.strip() if sep else None)


class TargetResolver:
    """Turns names, config and env into Target objects (no connections are made here)."""

    def __init__(self, cwd: Path | None = None, environ: dict[str, str] | None = None):
        self.environ = dict(os.environ if environ is None else environ)
        self.file_config = load_file_config(cwd or Path.cwd())

    def configured_names(self) -> list[str]:
        """Targets that the user configured explicitly (file or env), in a stable order."""
        names = list(self.file_config)
        for name in BUILTIN:
            if env_var(name) in self.environ and name not in names:
                names.append(name)
        return names

    def known_names(self) -> list[str]:
        return list(dict.fromkeys([*BUILTIN, *self.file_config]))

    def resolve(self, name: str, url_override: str | None = None) -> Target:
        builtin = BUILTIN.get(name)
        entry = self.file_config.get(name, {})
        url_text = url_override or self.environ.get(env_var(name)) or entry.get("url")
        if url_text is None and builtin is None:
            raise UsageError(
                f"unknown target {name!r}; known: {', '.join(self.known_names())} (or pass --target {name}=URL)"
            )
        pooler = entry.get("pooler") or (builtin.pooler if builtin else None)
        replica_of = entry.get("replica_of") or (builtin.replica_of if builtin else None)
        if replica_of is not None and (replica_of == name or replica_of not in self.known_names()):
            raise UsageError(f"target {name!r}: replica_of names no other target ({replica_of!r})")
        if url_text is None:
            assert builtin is not None
            if builtin.managed:
                # managed targets get their URL once dbmatrix has made the server or file
                placeholder = "sqlite://" if builtin.kind == "sqlite" else "postgresql://postgres@127.0.0.1/postgres"
                return Target(name, builtin.kind, parse_url(placeholder, target=name), managed=builtin.managed)
            if builtin.default_url is None:
                raise UsageError(f"target {name!r} has no URL: set {env_var(name)} or pass --target {name}=URL")
            url_text = builtin.default_url
        url = parse_url(url_text, target=name)
        kind = kind_of(url)
        compatible = builtin is None or builtin.kind == kind or (builtin.kind, kind) == ("postgresql", "cockroachdb")
        if not compatible:
            raise UsageError(f"target {name!r} is a {builtin.kind} target but its URL is {kind}")
        url, pooler = hosted_defaults(kind, url, pooler)  # Neon: TLS, and its -pooler endpoint is transaction pooling
        return Target(name, kind, url, pooler=pooler, replica_of=replica_of)

    def unconfigured(self, name: str) -> Target:
        """A built-in target with no URL here, as a ``skipped`` row that says how to give it one."""
        builtin = BUILTIN[name]
        target = Target(name, builtin.kind, make_url(f"{builtin.kind}://unconfigured"), pooler=builtin.pooler,
                        configured=False)
        target.skip(f"no URL configured: set {env_var(name)} or pass --target {name}=URL")
        return target

    def select(self, options: list[str], require: list[str]) -> list[Target]:
        """The targets for a run: ``--target`` options, else the embedded defaults plus configured targets.

        Required targets are added when not named. Duplicates keep the last URL given.
        """
        chosen: dict[str, str | None] = {}
        for opt in options:
            name, url = parse_target_option(opt)
            chosen[name] = url
        if not options:
            for name in (*DEFAULT_RUN, *self.configured_names()):
                chosen.setdefault(name, None)
        for name in require:
            chosen.setdefault(name, None)
        targets = [self.resolve(name, url) for name, url in chosen.items()]
        if not options:  # hosted and distributed targets show in every default run, skipped until given a URL
            targets += [self.unconfigured(n) for n in SHOWN_UNTIL_CONFIGURED if n not in chosen]
        return targets

    def primaries_of(self, targets: list[Target]) -> list[Target]:
        """The primaries of replica targets that are not themselves selected: prepared, but given no cells."""
        have = {t.name for t in targets}
        extra: dict[str, Target] = {}
        for t in targets:
            if t.replica_of and t.replica_of not in have and t.replica_of not in extra:
                extra[t.replica_of] = self.resolve(t.replica_of)
        return list(extra.values())


def parse_require(values: list[str]) -> list[str]:
    names: list[str] = []
    for v in values:
        names += [n.strip() for n in v.split(",") if n.strip()]
    return names
