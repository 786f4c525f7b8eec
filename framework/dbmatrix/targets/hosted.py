"""What hosted and distributed PostgreSQL-compatible services need from a target URL: Neon and CockroachDB.

Neon: every endpoint requires TLS, and the server picks the endpoint from the TLS SNI host name (libpq >= 14,
asyncpg and psycopg send it). A host whose first label ends in ``-pooler`` is Neon's pooled endpoint, which is
PgBouncer in transaction pooling mode, so such a target gets ``pooler = "transaction"`` (and the pooled
expectations) without the user saying so.

CockroachDB: speaks the PostgreSQL wire protocol on port 26257; its version string is not PostgreSQL's.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import URL

NEON_DOMAIN = ".neon.tech"
COCKROACH_PORT = 26257
TRANSACTION = "transaction"


def is_neon(url: URL) -> bool:
    return bool(url.host) and url.host.lower().rstrip(".").endswith(NEON_DOMAIN)


def is_neon_pooled(url: URL) -> bool:
    """Neon's pooled endpoint: ``ep-name-123456-pooler.region.aws.neon.tech``."""
    return is_neon(url) and url.host.split(".", 1)[0].lower().endswith("-pooler")


def hosted_defaults(kind: str, url: URL, pooler: str | None) -> tuple[URL, str | None]:
    """``url`` and ``pooler`` completed with what the service requires when the user did not say it.

    Neon: ``sslmode=require`` (Neon refuses plain connections) and the transaction pooler for ``-pooler`` hosts.
    CockroachDB: the default port 26257 when none is given.
    """
    if is_neon(url):
        if "sslmode" not in url.query:
            url = url.update_query_dict({"sslmode": "require"})
        if pooler is None and is_neon_pooled(url):
            pooler = TRANSACTION
    if kind == "cockroachdb" and url.port is None and url.host:
        url = url.set(port=COCKROACH_PORT)
    return url, pooler


_CRDB_VERSION = re.compile(r"CockroachDB\s+\S+\s+v(\d+(?:\.\d+)*)")


def cockroach_version(full: str) -> str | None:
    """The version in CockroachDB's ``version()`` text ('CockroachDB CCL v24.1.0 (x86_64-...)' -> '24.1.0'),
    or None when the text is not CockroachDB's."""
    m = _CRDB_VERSION.search(full or "")
    return m[1] if m else None


# CockroachDB's retryable errors all carry SQLSTATE 40001; the message names the reason
# ("restart transaction: TransactionRetryWithProtoRefreshError: ReadWithinUncertaintyIntervalError ...").
_CRDB_RETRY = re.compile(r"restart transaction|TransactionRetry|RETRY_[A-Z_]+|ReadWithinUncertaintyInterval",
                         re.IGNORECASE)
_CRDB_REASON = re.compile(r"\b(RETRY_[A-Z_]+|ReadWithinUncertaintyIntervalError|WriteTooOldError|"
                          r"TransactionAbortedError\([A-Z_]+\)|TransactionPushError)")


def cockroach_retry_reason(code: str | None, message: str) -> str | None:
    """For a CockroachDB error: the retry reason ('RETRY_SERIALIZABLE', 'ReadWithinUncertaintyIntervalError',
    or 'restart transaction' when it names none) if the client should retry the transaction, else None.

    CockroachDB asks for a client-side retry with SQLSTATE 40001 and a message that starts with
    "restart transaction"; 40001 alone is enough, the message only says why."""
    if code != "40001" and not (code is None and _CRDB_RETRY.search(message or "")):
        return None
    m = _CRDB_REASON.search(message or "")
    return m[1] if m else "restart transaction"
