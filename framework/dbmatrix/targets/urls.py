"""Target URLs: parse SQLAlchemy-style URLs, infer the target kind, and redact passwords."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..errors import UsageError
from ..redaction import MASK, register_secret, scrub

# URL scheme (before any +driver) -> target kind
SCHEME_KINDS = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "cockroachdb": "cockroachdb",
}


def parse_url(text: str, *, target: str) -> URL:
    """Parse a target URL; the driver part (``+psycopg``) is dropped: drivers are chosen by ``--driver``.

    Raises UsageError with one line (password masked) when the URL is malformed or of an unknown kind.
    """
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"target {target!r} needs a URL string, e.g. postgresql://user:password@host:5432/db")
    try:
        url = make_url(text.strip())
    except (ArgumentError, ValueError, TypeError):
        # never echo the text or the parser's message: an unparseable URL may carry its password anywhere
        raise UsageError(
            f"malformed URL for target {target!r} (not shown: it may hold a password); expected a URL such as "
            "postgresql://user@host:5432/db, with '@', ':' and '/' in a password URL-quoted as %40, %3A, %2F"
        ) from None
    register_secret(url.password if isinstance(url.password, str) else None)
    for key in ("password", "passwd"):
        value = url.query.get(key)
        for v in (value,) if isinstance(value, str) else (value or ()):
            register_secret(v)
    if (url.host and "@" in url.host) or text.partition("://")[2].partition("?")[0].count("@") > 1:
        # a second '@' (in the host, or where the parser took the first for the end of the password) is part of
        # an unquoted password: refuse before anything shows the URL
        register_secret(text.rpartition("@")[0].partition("://")[2].partition(":")[2])
        raise UsageError(f"malformed URL for target {target!r}: URL-quote '@' in the password as %40")
    if url.port is not None and not 1 <= url.port <= 65535:
        # the number is not echoed: in 'user:12345678/db' (no '@') the "port" is really a password
        raise UsageError(f"malformed URL for target {target!r}: its port is not in 1-65535")
    backend = url.get_backend_name()
    if backend not in SCHEME_KINDS:
        raise UsageError(
            f"URL for target {target!r} has unknown scheme {backend!r}; use one of {', '.join(sorted(SCHEME_KINDS))}"
        )
    kind = SCHEME_KINDS[backend]
    if kind != "sqlite" and not url.host and "host" not in url.query:
        raise UsageError(f"malformed URL for target {target!r}: no host in {redact(url)}")
    if kind == "postgresql" and backend == "postgres":
        url = url.set(drivername="postgresql")
    return url.set(drivername=backend if backend != "postgres" else "postgresql")


def kind_of(url: URL) -> str:
    return SCHEME_KINDS[url.get_backend_name()]


def redact(url: URL | str) -> str:
    """The URL as text with any password replaced by ``***``."""
    if isinstance(url, str):
        return scrub(url)
    if url.password:
        url = url.set(password=MASK)
    return scrub(url.render_as_string(hide_password=False), known=False)
