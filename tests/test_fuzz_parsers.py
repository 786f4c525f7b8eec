"""Property tests of every parser that takes user input: target URLs, configuration files, results documents,
redaction. Whatever comes in, the answer is a value or one UsageError line — never another exception, never the
password. Bounded (``CI`` settings) so the whole file stays within seconds."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbmatrix import redaction
from dbmatrix.errors import UsageError
from dbmatrix.redaction import MASK, is_ordinary_word, register_secret, scrub
from dbmatrix.targets.config import TargetResolver
from dbmatrix.targets.urls import parse_url, redact

CI = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])

URL_CHARS = st.sampled_from(list("abcXYZ019@:/%?#=&+[]. -_!~*'()\\\"\t\n\u00e9\u2603"))
PASSWORDS = st.text(alphabet=st.sampled_from(list("pqrstuvwQRS789@:/%#?&=+ ")), min_size=8, max_size=16).filter(
    lambda p: p.strip() == p and any(c.isalnum() for c in p))


def assert_one_line(exc: UsageError) -> str:
    text = str(exc)
    assert text and "\n" not in text
    return text


@CI
@given(st.text(alphabet=URL_CHARS, max_size=60))
def test_parse_url_answers_a_url_or_one_line(text: str) -> None:
    try:
        url = parse_url(text, target="fuzz")
    except UsageError as exc:
        assert_one_line(exc)
        return
    assert url.get_backend_name() in {"postgresql", "mysql", "mariadb", "sqlite", "cockroachdb"}
    redact(url)


@CI
@given(password=PASSWORDS, scheme=st.sampled_from(["postgresql", "mysql", "cockroachdb", "postgres"]),
       port=st.one_of(st.none(), st.integers(-5, 70000), st.text(alphabet="0123456789xy", max_size=6)),
       quoted=st.booleans())
def test_a_password_never_appears_in_what_parse_url_says(password: str, scheme: str, port: object,
                                                         quoted: bool) -> None:
    pw = quote(password, safe="") if quoted else password
    port_part = "" if port is None else f":{port}"
    text = f"{scheme}://leaky:{pw}@127.0.0.1{port_part}/db"
    try:
        url = parse_url(text, target="fuzz")
    except UsageError as exc:
        message = assert_one_line(exc)
        assert password not in scrub(message) and pw not in scrub(message)
        return
    shown = redact(url)
    assert password not in shown and pw not in shown, shown
    # a password without a host also never leaks (the classic "leaky:PW/postgres" mistake)
    try:
        parse_url(f"{scheme}://leaky:{pw}/postgres", target="fuzz")
    except UsageError as exc:
        assert password not in str(exc) and pw not in str(exc)


TOML_VALUES = st.recursive(
    st.one_of(st.integers(-10, 70000), st.text(max_size=20), st.booleans(),
              st.sampled_from(["postgresql://u@h/db", "mysql://u@h:3306/x", "sqlite://", "transaction", "session"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(min_size=1, max_size=8), inner,
                                                                          max_size=3)),
    max_leaves=8,
)


def toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_literal(v)}" for k, v in value.items()) + " }"


@CI
@given(st.dictionaries(st.text(min_size=1, max_size=10), TOML_VALUES, max_size=4), st.binary(max_size=8))
def test_config_files_answer_targets_or_one_line(entries: dict[str, object], noise: bytes) -> None:
    body = "[tool.dbmatrix.targets]\n" + "".join(f"{json.dumps(k)} = {toml_literal(v)}\n" for k, v in entries.items())
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "pyproject.toml").write_bytes(body.encode() + noise)
        try:
            resolver = TargetResolver(Path(d), environ={})
            for name in resolver.configured_names():
                resolver.resolve(name)
        except UsageError as exc:
            assert_one_line(exc)


def _json_values() -> st.SearchStrategy[object]:
    return st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
        max_leaves=6,
    )


FIELDS = [["run"], ["run", "id"], ["run", "complete"], ["run", "started"], ["targets"], ["targets", 0],
          ["targets", 0, "name"], ["targets", 0, "status"], ["targets", 0, "server_version"], ["results"],
          ["results", 0], ["results", 0, "case"], ["results", 0, "target"], ["results", 0, "driver"],
          ["results", 0, "outcome"], ["results", 0, "params"], ["results", 0, "metrics"], ["results", 0, "verdict"],
          ["results", 0, "detail"], ["results", 0, "findings"], ["results", 0, "artifacts"]]


def _doc() -> dict:
    return {
        "schema": "dbmatrix/results/v1",
        "run": {"id": "r1", "started": "2026-01-01T00:00:00+00:00", "finished": None, "complete": True},
        "targets": [{"name": "pg", "kind": "postgresql", "status": "ok", "reason": None, "url": "postgresql://h/db",
                     "server_version": "15.1"}],
        "results": [{"case": "sql.x", "target": "pg", "driver": "psycopg", "params": {"n": 1}, "outcome": "supported",
                     "mechanism": None, "detail": "d", "expected": "supported", "verdict": "as-expected",
                     "metrics": {"wall_ms": 1.0}}],
    }


@CI
@given(st.lists(st.tuples(st.sampled_from(FIELDS), _json_values()), max_size=3))
def test_documents_are_rendered_or_refused_in_one_line(edits: list[tuple[list, object]]) -> None:
    from dbmatrix.report import write_reports
    from dbmatrix.report.diff import diff_documents, render_diff
    from dbmatrix.results import load_document

    doc = _doc()
    for path, value in edits:
        node: object = doc
        try:
            for key in path[:-1]:
                node = node[key]  # type: ignore[index]
            node[path[-1]] = value  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            continue
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "results.json"
        p.write_text(json.dumps(doc))
        try:
            loaded = load_document(p)
        except UsageError as exc:
            assert_one_line(exc)
            return
        # what the schema admits, every renderer must handle
        write_reports(loaded, Path(d) / "out")
        render_diff(diff_documents(_doc(), loaded))
        render_diff(diff_documents(loaded, loaded))


@CI
@given(st.text(alphabet="abcdefghXYZ0123456789", min_size=4, max_size=12), st.text(max_size=40))
def test_scrub_masks_a_known_password_standing_as_a_word(password: str, around: str) -> None:
    register_secret(password)
    out = scrub(f"{around} {password} {around} password={password} '{password}'")
    assert f"password={MASK} '{MASK}'" in out
    if is_ordinary_word(password):  # letters or digits only: an ordinary word is never rewritten
        assert f" {password} " in out
    else:
        assert f" {password} " not in out


@pytest.mark.parametrize("password", ["1", "postgres", "x"])
def test_short_or_common_passwords_do_not_corrupt_structured_text(password: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redaction, "_secrets", set())  # the registry is process-wide: keep 'postgres' to this test
    register_secret(password)
    doc = json.dumps({"schema": "dbmatrix/results/v1", "target": "postgres", "kind": "postgresql", "n": 1})
    assert json.loads(scrub(doc, known=False)) == json.loads(doc)
    assert "postgresql" in scrub("kind postgresql, schema dbmatrix/results/v1")
    assert "dbmatrix/results/v1" in scrub("schema dbmatrix/results/v1")
    assert scrub(f"connect(user='u', password='{password}')") == "connect(user='u', password=***)"
    assert scrub(f"{{'user': 'u', 'password': '{password}'}}") == "{'user': 'u', 'password': ***}"
    assert scrub(f"postgresql://u:{password}@h/db") == "postgresql://u:***@h/db"
