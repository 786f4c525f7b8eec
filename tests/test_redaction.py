"""Redaction: registered secrets and any URL / libpq-DSN password are scrubbed from text.

The registry is process-wide, so every test uses a password no other test uses (``secret()``).
"""

from __future__ import annotations

import uuid
from urllib.parse import quote, quote_plus

import pytest

from dbmatrix.redaction import MASK, register_secret, scrub


def secret(extra: str = "") -> str:
    return f"Rd{uuid.uuid4().hex[:10]}{extra}X"


def test_mask_is_three_stars() -> None:
    assert MASK == "***"


def test_registered_secret_is_scrubbed_anywhere_in_text() -> None:
    pw = secret()
    register_secret(pw)
    out = scrub(f"FATAL: password authentication failed; tried {pw!r} twice: {pw}{pw}")
    assert pw not in out
    assert out == f"FATAL: password authentication failed; tried '{MASK}' twice: {MASK}{MASK}"


@pytest.mark.parametrize("special", ["p@ss/w:rd", "a b+c", "50%&=?#", "ünïcødé"])
def test_registered_secret_is_scrubbed_in_plain_and_url_quoted_forms(special: str) -> None:
    pw = secret(special)
    register_secret(pw)
    for form in {pw, quote(pw, safe=""), quote_plus(pw)}:
        out = scrub(f"dsn=... {form} ...")
        assert form not in out, form
        assert MASK in out
    assert pw not in scrub(f"postgresql://u:{quote(pw, safe='')}@h/db")
    assert quote_plus(pw) not in scrub(f"connect failed for u:{quote_plus(pw)}@h")


def test_unregistered_secret_in_plain_text_is_left_alone() -> None:
    """Only registered secrets are removed from free text (else every word could be a password)."""
    pw = secret()
    assert scrub(f"value {pw}") == f"value {pw}"


def test_register_secret_ignores_empty_values() -> None:
    register_secret(None)
    register_secret("")
    assert scrub("nothing to hide here") == "nothing to hide here"


def test_scrub_accepts_any_object() -> None:
    pw = secret()
    register_secret(pw)
    assert scrub(ValueError(f"bad {pw}")) == f"bad {MASK}"
    assert scrub(42) == "42"


@pytest.mark.parametrize(
    "template",
    [
        "postgresql://bob:{pw}@db.example:5432/app",
        "postgresql+asyncpg://bob:{pw}@db.example/app",
        "mysql://root:{pw}@127.0.0.1:3306/test",
        "could not connect to postgres://bob:{pw}@db/x: timeout",
        "cockroachdb://:{pw}@h:26257/defaultdb",  # no user name
        "two urls: postgresql://a:{pw}@h1/x and mysql://b:{pw}@h2/y",
    ],
)
def test_unregistered_url_password_is_masked(template: str) -> None:
    pw = secret()
    out = scrub(template.format(pw=pw))
    assert pw not in out
    assert f":{MASK}@" in out


def test_url_mask_keeps_user_host_and_database() -> None:
    pw = secret()
    assert scrub(f"postgresql://bob:{pw}@db.example:5432/app") == "postgresql://bob:***@db.example:5432/app"


def test_url_without_password_is_unchanged() -> None:
    text = "postgresql://postgres@127.0.0.1:5432/postgres and http://example.com:8080/a/b"
    assert scrub(text) == text


def test_unregistered_url_password_with_a_slash_is_masked() -> None:
    """A password with an unquoted '/' (a common mistake) must not survive in a URL echoed back to the user."""
    pw = secret("/") + "tail"
    out = scrub(f"malformed URL: postgresql://bob:{pw}@db:notaport/app")
    assert pw not in out
    assert "tail" not in out


@pytest.mark.parametrize(
    "template",
    [
        "host=db port=5432 password={pw} user=bob",
        "host=db password='{pw}' dbname=app",
        "host=db password = {pw}",
        "PASSWORD={pw}",
        "password={pw}",
    ],
)
def test_libpq_keyword_password_is_masked(template: str) -> None:
    pw = secret()
    out = scrub(template.format(pw=pw))
    assert pw not in out
    assert MASK in out


def test_libpq_quoted_password_with_spaces_and_escaped_quote_is_masked() -> None:
    tail = secret()
    out = scrub(f"host=db password='it\\'s a {tail}' user=bob")
    assert tail not in out
    assert out == "host=db password=*** user=bob"


def test_libpq_keyword_mask_keeps_other_keywords() -> None:
    pw = secret()
    assert scrub(f"host=db port=5432 password={pw} user=bob") == "host=db port=5432 password=*** user=bob"


def test_a_cell_detail_is_redacted_when_recorded_and_documents_are_written_verbatim(tmp_path, monkeypatch) -> None:
    """Bare passwords go where the free text enters (a cell's detail); the written JSON is not rewritten, so a
    password such as ``1`` cannot turn ``results/v1`` into ``results/v***``."""
    import json

    from dbmatrix import redaction
    from dbmatrix.results import CellResult, write_json_atomic

    monkeypatch.setattr(redaction, "_secrets", set())  # the registry is process-wide: keep '1' to this test
    pw = secret()
    register_secret(pw)
    register_secret("1")
    c = CellResult(case="sql.x", target="postgres", driver="psycopg", outcome="error", detail=f"rejected for {pw}")
    assert c.detail == f"rejected for {MASK}"
    path = tmp_path / "r.json"
    write_json_atomic(path, {"schema": "dbmatrix/results/v1", "n": 1, "cell": c.to_dict()})
    assert json.loads(path.read_text())["schema"] == "dbmatrix/results/v1"


# --- linear time, and only where a password can sit ---------------------------------------------------------------

def seconds_to_scrub(text: str) -> float:
    import time

    start = time.perf_counter()
    scrub(text)
    return time.perf_counter() - start


def test_a_20_mb_detail_is_scrubbed_in_well_under_a_second_per_mb(monkeypatch) -> None:
    """A driver's message echoing a huge value, with a URL and a DSN in it (the old URL pattern backtracked over
    every run of letters: a 100,000-character detail took minutes in ``dbmatrix report``)."""
    from dbmatrix import redaction

    monkeypatch.setattr(redaction, "_secrets", set())  # a run's registry: a few passwords, not every test's
    pw = secret("%!")
    register_secret(pw)
    head = f"could not insert: postgresql://bob:{pw}@db/app host=db password={pw} value '"
    text = head + "row data " * (20_000_000 // 9) + "'"
    assert seconds_to_scrub(text) < 10.0  # 20 MB: < 0.5 s per MB on a busy 2-core machine
    assert pw not in scrub(text)


@pytest.mark.parametrize("unit", ["a", "x://", "x://u:", "x://u:p@", "password='", "password=", "'", "pwd:'", "Rd"])
def test_scrub_is_linear_even_on_pathological_text(unit: str, monkeypatch) -> None:
    from dbmatrix import redaction

    monkeypatch.setattr(redaction, "_secrets", set())
    register_secret(secret("%!"))
    register_secret("rows")
    text = unit * (2_000_000 // len(unit))
    assert seconds_to_scrub(text) < 2.0, unit  # 2 MB: < 1 s per MB (the old patterns: hours)


@pytest.mark.parametrize("word", ["rows", "postgres", "1234", "select"])
def test_a_password_that_is_an_ordinary_word_is_masked_only_where_a_password_sits(word: str, monkeypatch) -> None:
    from dbmatrix import redaction

    monkeypatch.setattr(redaction, "_secrets", set())  # keep the ordinary word to this test
    register_secret(word)
    text = f"moved 3 {word} in one statement; {word}: done"
    assert scrub(text) == text  # a finding is never rewritten (nor the password revealed by where *** lands)
    assert scrub(f"connect(host='h', password='{word}')") == "connect(host='h', password=***)"
    assert scrub(f"args = ('h', 3306, 'root', '{word}')") == f"args = ('h', 3306, 'root', '{MASK}')"
    assert scrub(f"PGPASSWORD={word} MYSQL_PWD={word}") == f"PGPASSWORD={MASK} MYSQL_PWD={MASK}"
    assert scrub(f"{{'db_password': b'{word}'}}") == f"{{'db_password': {MASK}}}"
    assert scrub(f"mysql://root:{word}@h/db") == f"mysql://root:{MASK}@h/db"


def test_a_password_that_cannot_be_a_word_is_masked_anywhere() -> None:
    pw = secret("%!")
    register_secret(pw)
    assert scrub(f"failed after {pw} was sent") == f"failed after {MASK} was sent"
