"""Keep passwords out of everything dbmatrix prints or writes.

Every password dbmatrix learns (from a URL) is registered here; ``scrub`` replaces it, in plain and
URL-quoted form, wherever it appears — driver exception messages often embed the whole DSN.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote, quote_plus

MASK = "***"
_secrets: set[str] = set()
_lock = threading.Lock()
# user:password@ inside any URL-ish text, for passwords we were never told about
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]+)@", re.I)
# libpq keyword DSNs: password=secret or password='se cret'
_KW_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.I)


def register_secret(secret: str | None) -> None:
    """Remember a secret so that ``scrub`` removes it from any later text."""
    if not secret:
        return
    with _lock:
        _secrets.update({secret, quote(secret, safe=""), quote_plus(secret)})


def scrub(text: object) -> str:
    """Return ``text`` as a string with every known secret and any URL/DSN password masked."""
    out = str(text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret:
            out = out.replace(secret, MASK)
    out = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", out)
    return _KW_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}", out)
