"""Keep passwords out of everything dbmatrix prints or writes — by redacting them where they are.

Structured values never need text replacement: URLs are rendered with ``***`` in place of the password
(``targets.urls.redact``), and names, kinds and JSON keys are written as they are. ``scrub`` is for free text that
came from elsewhere (exception messages, tracebacks, driver errors): it masks a password in the places a password
sits — a URL's ``user:password@``, the value after a key that names a password (``password=...``,
``PGPASSWORD=...``, ``'passwd': b'...'``), and a quoted literal equal to a password dbmatrix was given
(``register_secret``: the repr of a positional connect argument).

A registered password is also masked as a bare word of its own — unless it could be an ordinary word: one made of
letters only (``rows``, ``postgres``) or digits only (``1234``), or shorter than ``MIN_BARE_SECRET``, is masked in
the places above and nowhere else, since rewriting "moved 3 rows" would corrupt the finding and reveal the password
by where the mask lands.

Every step is a scan for a literal followed by bounded work per hit, so the cost is linear in the text's size
(a 20 MB driver message costs a fraction of a second per MB).
"""

from __future__ import annotations

import re
import threading
from functools import partial
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_BARE_SECRET = 4  # shorter passwords are masked only where a password sits (URL, key=value, quoted literal)
_LONGEST_VALUE = 4096  # a quoted value longer than this is not taken for a password: bounds the work per key
_secrets: set[str] = set()
_lock = threading.Lock()

# a key that names a password (password, passwd, pwd; PGPASSWORD, MYSQL_PWD, db_password end with one), then a
# quoted key's `': ` or `=`, then a quoted value (b'...' too) or, after `=`, a bare one
_KEY_VALUE = re.compile(
    r"""(?P<key>p(?:assw(?:or)?d|wd)(?:(?P<kq>['"])\s*:|\s*=)\s*)"""
    rf"""(?P<val>b?(?P<v>['"])(?:\\.|(?!(?P=v))[^\\\n]){{0,{_LONGEST_VALUE}}}+(?P=v)|(?(kq)(?!)|[^\s'",)]++))""",
    re.I)
# user:password@ after a URL's scheme: the user part; the password runs to the next '@' (or fails at whitespace)
_URL_USER = re.compile(r"[^:/@\s]*+:")
_URL_STOP = re.compile(r"[@\s]")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def register_secret(secret: str | None) -> None:
    """Remember a password so that ``scrub`` removes it from later free text (see the module docstring)."""
    if not secret:
        return
    with _lock:
        _secrets.update({secret, quote(secret, safe=""), quote_plus(secret)})


def is_ordinary_word(secret: str) -> bool:
    """A password that could be a word of ordinary text (letters only, digits only, or short): never masked bare."""
    return len(secret) < MIN_BARE_SECRET or secret.isalpha() or secret.isdigit()


def _mask_key_values(text: str) -> str:
    lowered = text.lower()
    if "pwd" not in lowered and "passw" not in lowered:
        return text  # the common case: no key at all, one fast scan
    return _KEY_VALUE.sub(rf"\g<key>{MASK}", text)


def _mask_urls(text: str) -> str:
    """The password of each ``scheme://user:password@`` masked; the stop after each head (the next ``@`` or
    whitespace) is searched once and reused by every head before it, which keeps pathological text linear."""
    if "@" not in text or "://" not in text:
        return text
    parts: list[str] = []
    pos = 0
    stop = -1
    i = text.find("://")
    while i != -1:
        user = _URL_USER.match(text, i + 3) if i > 0 and text[i - 1] in _SCHEME_CHARS else None
        if user and user.end() >= pos:
            start = user.end()
            if stop < start:
                s = _URL_STOP.search(text, start)
                stop = s.start() if s else len(text)
            if start < stop < len(text) and text[stop] == "@":
                parts += [text[pos:start], MASK]
                pos = stop
        i = text.find("://", i + 3)
    parts.append(text[pos:])
    return "".join(parts)


_bare_patterns: dict[str, re.Pattern[str]] = {}


def _bare_pattern(secret: str) -> re.Pattern[str]:
    if secret not in _bare_patterns:
        # a word of its own (or a glued run of it): not glued to letters or digits ('postgres' in 'postgresql')
        _bare_patterns[secret] = re.compile(rf"(?<![A-Za-z0-9])(?:{re.escape(secret)})++(?![A-Za-z0-9])")
    return _bare_patterns[secret]


def _masks(secret_len: int, m: re.Match[str]) -> str:
    return MASK * (len(m[0]) // secret_len)  # one mask per password of a glued run, as the text had


def _mask_registered(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # a password holding another is masked whole first
    for secret in secrets:
        if secret not in text:  # a fast scan; the rest runs only for a password that is there
            continue
        for q in "'\"":  # a quoted literal: the repr of an argument (plain replaces run at C speed)
            text = text.replace(f"{q}{secret}{q}", f"{q}{MASK}{q}")
        if not is_ordinary_word(secret):
            text = _bare_pattern(secret).sub(partial(_masks, len(secret)), text)
    return text


def scrub(text: object, *, known: bool = True) -> str:
    """``text`` as a string with passwords masked where they sit; ``known=False`` skips the registered
    passwords (for text built from values that were redacted when they were recorded)."""
    out = _mask_urls(_mask_key_values(str(text)))
    return _mask_registered(out) if known else out
