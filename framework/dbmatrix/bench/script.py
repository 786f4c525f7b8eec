"""pgbench-style SQL scripts (``dbmatrix bench --workload FILE.sql``): statements with ``:name`` variables set by
``\\set``.

Supported, as pgbench reads them: one statement per ``;`` (quotes and ``--`` comments respected, statements may
span lines), ``\\set name expression`` with integer and decimal constants, ``+ - * / %``, parentheses, variables set
earlier and ``random(lo, hi)`` (also spelled ``random_uniform``), ``BEGIN``/``END`` (``END`` is sent as ``COMMIT``,
which every engine knows). Any other meta-command (``\\sleep``, ``\\setshell``, ``\\if``, ``\\gset``, ...) and any
other function is refused up front with one line. As with pgbench's extended and prepared modes, variables are bound
as parameters, not pasted into the SQL text.

Variables are drawn up front for a ring of operations (``parameter_ring``), as the built-in workloads' parameters
are, so the timed loop measures the driver, not the expression evaluator.
"""

from __future__ import annotations

import ast
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..drivers.params import parameter_names
from ..errors import UsageError

_SET = re.compile(r"\\set\s+([A-Za-z_]\w*)\s+(.+)$")
_VAR = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_FUNCS = {"random": 2, "random_uniform": 2, "abs": 1, "least": None, "greatest": None}
_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod)


@dataclass(frozen=True)
class Statement:
    sql: str
    names: tuple[str, ...]  # the script variables it uses, in order of first use


@dataclass(frozen=True)
class Script:
    """A parsed script: ``sets`` run in order before each operation's statements."""

    path: str
    sets: tuple[tuple[str, str], ...]  # (variable, expression in Python syntax, checked by ``_check``)
    statements: tuple[Statement, ...]

    def draw(self, rnd: random.Random) -> dict[str, int | float]:
        """One operation's variables."""
        values: dict[str, int | float] = {}
        for name, expr in self.sets:
            values[name] = _eval(ast.parse(expr, mode="eval").body, values, rnd)
        return values

    def parameter_ring(self, seed: int, n: int) -> list[dict[str, int | float]]:
        rnd = random.Random(seed)
        return [self.draw(rnd) for _ in range(n)]


def _fail(path: str, line_no: int, why: str) -> UsageError:
    return UsageError(f"--workload {path}: line {line_no}: {why}")


def _eval(node: ast.AST, values: dict[str, int | float], rnd: random.Random) -> int | float:
    """pgbench's arithmetic: integer division and modulo truncate toward zero when both sides are integers."""
    if isinstance(node, ast.Constant):
        return node.value  # type: ignore[no-any-return]
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, values, rnd)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, values, rnd), _eval(node.right, values, rnd)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if isinstance(a, int) and isinstance(b, int):
            if b == 0:
                raise ZeroDivisionError("division by zero in a \\set expression")
            q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
            return q if isinstance(node.op, ast.Div) else a - b * q
        return a / b if isinstance(node.op, ast.Div) else a % b
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    args = [_eval(a, values, rnd) for a in node.args]
    name = node.func.id
    if name in ("random", "random_uniform"):
        return rnd.randint(int(args[0]), int(args[1]))
    if name == "abs":
        return abs(args[0])
    return min(args) if name == "least" else max(args)


def _check(node: ast.AST, known: set[str], where: tuple[str, int]) -> None:
    """Only what ``_eval`` knows: constants, known variables, the operators and functions above."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return
    if isinstance(node, ast.Name):
        if node.id not in known:
            raise _fail(*where, f"variable :{node.id} is used before it is \\set")
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _check(node.operand, known, where)
    if isinstance(node, ast.BinOp) and isinstance(node.op, _OPS):
        _check(node.left, known, where)
        return _check(node.right, known, where)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        arity = _FUNCS.get(node.func.id, -1)
        if arity == -1:
            raise _fail(*where, f"unsupported \\set function {node.func.id}(); supported: {', '.join(_FUNCS)}")
        if (arity is not None and len(node.args) != arity) or not node.args:
            raise _fail(*where, f"{node.func.id}() takes {arity or 'at least 1'} arguments")
        for arg in node.args:
            _check(arg, known, where)
        return
    raise _fail(*where, "unsupported \\set expression (constants, variables, + - * / %, parentheses, "
                        f"{', '.join(_FUNCS)})")


def _split_sql(text: str) -> list[tuple[int, str]]:
    """``(first line number, statement)`` for each ``;``-terminated statement (a last one without ``;`` too)."""
    out, buf, start, quote, i = [], [], None, "", 0
    line = 1
    while i < len(text):
        ch = text[i]
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            buf.append(ch)
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif ch == ";":
            if "".join(buf).strip():
                out.append((start or line, "".join(buf).strip()))
            buf, start = [], None
        else:
            if not ch.isspace() and start is None:
                start = line
            buf.append(ch)
        line += ch == "\n"
        i += 1
    if "".join(buf).strip():
        out.append((start or line, "".join(buf).strip()))
    return out


def parse_script(text: str, path: str) -> Script:
    """Parse a pgbench script; ``UsageError`` (one line) for what dbmatrix does not run."""
    sets: list[tuple[str, str]] = []
    sql_lines: list[str] = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line.startswith("\\"):
            sql_lines.append(raw)
            continue
        sql_lines.append("")  # keep line numbers for the SQL that follows
        m = _SET.match(line)
        if not m:
            command = line.split()[0]
            raise _fail(path, no, f"unsupported meta-command {command} (dbmatrix runs \\set only)")
        name, expr = m[1], _VAR.sub(r"\1", m[2].strip())
        try:
            tree = ast.parse(expr, mode="eval").body
        except SyntaxError:
            raise _fail(path, no, f"cannot read the \\set expression {m[2].strip()!r}") from None
        _check(tree, {n for n, _ in sets}, (path, no))
        sets.append((name, expr))
    known = {n for n, _ in sets}
    statements = []
    for no, sql in _split_sql("\n".join(sql_lines)):
        names = parameter_names(sql)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise _fail(path, no, f":{unknown[0]} is never \\set")
        if sql.strip().upper() == "END":
            sql = "COMMIT"
        statements.append(Statement(sql, tuple(dict.fromkeys(names))))
    if not statements:
        raise UsageError(f"--workload {path}: no SQL statement in the script")
    return Script(path, tuple(sets), tuple(statements))


def read_script(path: Path) -> Script:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--workload {path}: cannot read it: {type(exc).__name__}: {exc}") from None
    script = parse_script(text, str(path))
    try:  # a division by zero or the like shows up now, not as an error cell per driver
        script.parameter_ring(0, 3)
    except (ArithmeticError, ValueError) as exc:
        raise UsageError(f"--workload {path}: \\set fails: {exc}") from None
    return script


def statement_params(statement: Statement, values: dict[str, Any]) -> dict[str, Any] | None:
    return {n: values[n] for n in statement.names} if statement.names else None
