"""Timeouts live on the scratch database (``ALTER DATABASE ... SET``), so they hold on every server connection a
transaction pooler lends, and no session ``SET`` is sent (one that a pooler would lose or leak to other clients)."""

from __future__ import annotations

import uuid

import pytest
from live import PGBOUNCER_URL, POSTGRES_URL, installed_adapter
from sqlalchemy.engine import make_url

from dbmatrix.engines import engine_for
from dbmatrix.engines.base import LOCK_TIMEOUT_S, STATEMENT_TIMEOUT_S
from dbmatrix.targets.admin import detect_server
from dbmatrix.targets.model import Target
from dbmatrix.targets.scratch import create_scratch


@pytest.mark.parametrize(("name", "url", "pooler"), [("postgres", POSTGRES_URL, None),
                                                     ("pgbouncer", PGBOUNCER_URL, "transaction")])
def test_scratch_database_carries_the_timeouts(name: str, url: str, pooler: str | None) -> None:
    engine, version = detect_server("postgresql", make_url(url))
    target = Target(name, "postgresql", make_url(url), pooler=pooler, engine=engine, server_version=version)
    space = create_scratch(target, f"t{uuid.uuid4().hex[:10]}")
    try:
        assert target.database_timeouts
        info = target.connect_info()
        assert engine_for(info.kind, info.engine).session_setup(info) == []  # nothing per session
        with installed_adapter("psycopg2").connect(info) as s, installed_adapter("psycopg2").connect(info) as t:
            # autocommit statements from two clients: behind the pooler they land on whichever server connection
            for session in (s, t, s, t):
                assert session.execute("SHOW lock_timeout").scalar() == f"{LOCK_TIMEOUT_S}s"
                assert session.execute("SHOW statement_timeout").scalar() == f"{STATEMENT_TIMEOUT_S // 60}min"
    finally:
        space.drop()
