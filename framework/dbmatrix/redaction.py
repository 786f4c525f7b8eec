"""Keep passwords out of everything dbmatrix prints or writes — by redacting them where they are.

Structured values never need text replacement: URLs are rendered with ``***`` in place of the password
(``targets.urls.redact``), and names, kinds and JSON keys are written as they are. ``scrub`` is for free text that
came from elsewhere (exception messages, tracebacks, driver errors): it masks a password in the places a password
sits — a URL's ``user:password@``, a DSN's ``password=...``, a ``'password': ...`` entry of a kwargs dict — and
any password dbmatrix was given (``register_secret``) where it stands as a word of its own. A short password
such as ``1`` is masked only in those places, never as a bare word: replacing every ``1`` would corrupt the text
and reveal the password by its absence.
"""

from __future__ import annotations

import re
import threading
from functools import partial
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_BARE_SECRET = 4  # shorter passwords are masked only where a password sits (URL, DSN, kwargs)
_secrets: set[str] = set()
_lock = threading.Lock()
# user:password@ inside any URL-ish text, for passwords we were never told about
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]+)@", re.I)
# libpq keyword DSNs: password=secret or password='se cret'
_KW_PASSWORD = re.compile(r"\b((?:password|passwd|pwd)\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'\",)]+)", re.I)
# a kwargs or JSON mapping: 'password': 'x', "passwd": b"x", password=b'x' (reprs of driver connect calls)
_MAP_PASSWORD = re.compile(
    r"""((?P<q>['"])(?:password|passwd|pwd)(?P=q)\s*:\s*|\b(?:password|passwd|pwd)\s*=\s*)"""
    r"""(b?(?P<v>['"])(?:\\.|(?!(?P=v)).)*(?P=v))""", re.I)


def register_secret(secret: str | None) -> None:
    """Remember a password so that ``scrub`` removes it from later free text (see the module docstring)."""
    if not secret:
        return
    with _lock:
        _secrets.update({secret, quote(secret, safe=""), quote_plus(secret)})


def _bare(secret: str) -> re.Pattern[str]:
    # a word of its own (or repeated): not glued to other letters or digits, so 'postgres' spares 'postgresql'
    return re.compile(rf"(?<![A-Za-z0-9])(?:{re.escape(secret)})+(?![A-Za-z0-9])")


def _masks(secret_len: int, m: re.Match[str]) -> str:
    return MASK * (len(m[0]) // secret_len)


def scrub(text: object, *, known: bool = True) -> str:
    """``text`` as a string with passwords masked where they sit; ``known=False`` skips the registered
    passwords (for text built from values that were redacted when they were recorded)."""
    out = str(text)
    out = _MAP_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}", out)
    out = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", out)
    out = _KW_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}", out)
    if known:
        with _lock:
            secrets = sorted((s for s in _secrets if len(s) >= MIN_BARE_SECRET), key=len, reverse=True)
        for secret in secrets:
            out = _bare(secret).sub(partial(_masks, len(secret)), out)
    return out
