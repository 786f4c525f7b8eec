"""The words of a results document (schema ``dbmatrix/results/v1``): outcomes, verdicts, and the shapes of the
names that become paths (run ids, shard names, artifacts). ``results`` writes them, ``docschema`` checks them."""

from __future__ import annotations

import re

SCHEMA = "dbmatrix/results/v1"

# The outcome vocabulary of results.json (docs/results-schema.md), ordered from best to worst for `diff`.
SUPPORTED = "supported"
UNSUPPORTED = "unsupported"
DIFFERS = "differs"
ALLOWED = "allowed"
PREVENTED = "prevented"
# a bounded search found no counterexample: evidence about its budget, never a claim that the engine prevents it
NOT_FOUND = "not-found"
PASS = "pass"
FAIL = "fail"
MEASURED = "measured"
ERROR = "error"
SKIPPED = "skipped"
OUTCOMES = (SUPPORTED, UNSUPPORTED, DIFFERS, ALLOWED, PREVENTED, NOT_FOUND, PASS, FAIL, MEASURED, ERROR, SKIPPED)

# Verdicts: how an outcome compares with cases/expectations/<kind>.toml.
AS_EXPECTED = "as-expected"
DEVIATION = "deviation"
VERDICTS = (AS_EXPECTED, DEVIATION)

# Names that become paths or scratch names: a run id is ``<out>/<run-id>/`` and ``dbmatrix_<run-id>``; a shard is
# ``shards/<shard>.json``; an artifact is a link in report.html, relative to the run folder and inside it.
RUN_ID_PATTERN = re.compile(r"^[0-9a-z][0-9a-z_]{0,31}$")
SHARD_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ARTIFACT_PATTERN = re.compile(
    r"^(?![/\\\s])(?!.*\s$)"  # relative; no leading or trailing space (a browser strips it, then reads a scheme)
    r"(?![A-Za-z][A-Za-z0-9+.-]*:)"  # no scheme (javascript:, file:, https:) and no drive letter
    r"(?!.*(?:^|/)\.\.?(?:/|$))"  # no '.' or '..' segment
    r"[^\\\x00-\x1f\x7f?#%]{1,255}$"  # no backslash, control character, query, fragment or escape
)
