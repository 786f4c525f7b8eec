"""The JSON Schema of a results document (``dbmatrix/results/v1``), checked with ``jsonschema``.

It pins what ``report``, ``diff`` and ``merge`` rely on (types of the identity fields, the outcome vocabulary) and
leaves room for what later versions add: unknown keys are allowed everywhere, metrics may hold numbers, lists
or small dicts, and ``findings``/``artifacts``/shard fields are optional.
"""

from __future__ import annotations

from typing import Any

from .results import OUTCOMES, SCHEMA, VERDICTS

_TEXT_OR_NULL = {"type": ["string", "null"]}

RESULTS_V1: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://dbmatrix.invalid/schemas/results-v1.json",
    "title": "dbmatrix results document v1",
    "type": "object",
    "required": ["schema", "run", "results"],
    "properties": {
        "schema": {"const": SCHEMA},
        "run": {
            "type": "object",
            "required": ["id", "complete"],
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "started": _TEXT_OR_NULL,
                "finished": _TEXT_OR_NULL,
                "complete": {"type": "boolean"},
                "dbmatrix": _TEXT_OR_NULL,
                "python": _TEXT_OR_NULL,
                "host": {"type": ["object", "null"]},
            },
        },
        "targets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "kind", "status"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "kind": {"type": "string"},
                    "status": {"type": "string"},
                    "reason": _TEXT_OR_NULL,
                    "url": _TEXT_OR_NULL,
                    "server_version": _TEXT_OR_NULL,
                    "pooler": _TEXT_OR_NULL,
                },
            },
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["case", "target", "driver", "outcome"],
                "properties": {
                    "case": {"type": "string", "minLength": 1},
                    "target": {"type": "string", "minLength": 1},
                    "driver": _TEXT_OR_NULL,  # null for cells without a driver axis
                    "outcome": {"enum": list(OUTCOMES)},
                    "params": {"type": ["object", "null"]},
                    "mechanism": _TEXT_OR_NULL,
                    "detail": _TEXT_OR_NULL,
                    "expected": _TEXT_OR_NULL,
                    "expected_reason": _TEXT_OR_NULL,
                    "verdict": {"enum": [*VERDICTS, None]},
                    "metrics": {"type": ["object", "null"]},
                    "findings": {"type": "array", "items": {"type": "object"}},
                    "artifacts": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def document_problem(doc: object) -> str | None:
    """None if ``doc`` is a valid results document, else one line naming the first problem and where it is."""
    import jsonschema
    from jsonschema.exceptions import best_match

    validator = jsonschema.Draft202012Validator(RESULTS_V1)
    error = best_match(validator.iter_errors(doc))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    return f"{where or 'document'}: {message}"
