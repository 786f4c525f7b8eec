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
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        # the text is not echoed: an unparseable URL may hide its password from the scrubber
        raise UsageError(f"malformed URL for target {target!r} ({scrub(exc)})") from None
    register_secret(url.password if isinstance(url.password, str) else None)
    if url.host and "@" in url.host:
        register_secret(text.rpartition("@")[0].partition("://")[2].partition(":")[2])
        raise UsageError(f"malformed URL for target {target!r}: URL-quote '@' in the password as %40")
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
    text = url.render_as_string(hide_password=False)
    if url.password:
        text = url.set(password=MASK).render_as_string(hide_password=False)
    return scrub(text)
