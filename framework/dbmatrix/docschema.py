"""The JSON Schema of a results document (``dbmatrix/results/v1``), checked with ``jsonschema``.

It pins what ``report``, ``diff`` and ``merge`` rely on (types of the identity fields, the outcome vocabulary) and
leaves room for what later versions add: unknown keys are allowed everywhere, metrics may hold numbers, lists
or small dicts, and ``findings``/``artifacts``/shard fields are optional. Every field that becomes a path or a link
is pinned to its shape (``vocabulary``): a run id or shard name cannot climb out of ``--out``, and an artifact is a
relative path inside the run folder (no ``..``, no scheme such as ``javascript:``), whoever wrote the document.
"""

from __future__ import annotations

from typing import Any

from .vocabulary import ARTIFACT_PATTERN, OUTCOMES, RUN_ID_PATTERN, SCHEMA, SHARD_NAME_PATTERN, VERDICTS

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
                "id": {"type": "string", "pattern": RUN_ID_PATTERN.pattern},
                # a shard's name becomes shards/<name>.json; other shapes are left to later versions
                "shard": {"if": {"type": "string"}, "then": {"pattern": SHARD_NAME_PATTERN.pattern}},
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
                    "artifacts": {"type": "array", "items": {"type": "string", "pattern": ARTIFACT_PATTERN.pattern}},
                },
            },
        },
    },
}


def document_problem(doc: object) -> str | None:
    """None if ``doc`` is a valid results document, else one line naming the first problem and where it is."""
    import jsonschema  # here, not at import: only commands that read a document pay for it
    from jsonschema.exceptions import best_match

    validator = jsonschema.Draft202012Validator(RESULTS_V1)
    error = best_match(validator.iter_errors(doc))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    return f"{where or 'document'}: {message}"
