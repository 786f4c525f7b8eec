"""``--compare OLD``: mark the cells whose QPS moved beyond the noise since an earlier run (``OLD`` is found like
``dbmatrix report`` finds it: a results.json, a run folder or ``<out>/latest``).

A change counts when the two 95% confidence intervals of the mean QPS do not overlap (each run's own repeats give
its interval); otherwise the difference is noise at this machine's level of noise. The verdict lands in the new
cell's ``metrics.compare``, so report and diff show it from the document alone.
"""

from __future__ import annotations

import json
from typing import Any

from ..results import MEASURED, RunDocument
from ..timing import intervals_overlap


def _key(case: str, target: str, driver: str, params: dict[str, Any]) -> str:
    return json.dumps([case, target, driver, params], sort_keys=True)


def annotate(doc: RunDocument, old: dict[str, Any]) -> None:
    before = {_key(r["case"], r["target"], r["driver"], r.get("params") or {}): r for r in old.get("results", [])
              if r.get("outcome") == MEASURED and r.get("case", "").startswith("bench.")}
    for cell in doc.results:
        if cell.outcome != MEASURED or not cell.case.startswith("bench."):
            continue
        prev = before.get(_key(cell.case, cell.target, cell.driver, cell.params))
        if prev is None or not (prev.get("metrics") or {}).get("qps"):
            continue
        om = prev["metrics"]
        new = (cell.metrics["qps"], cell.metrics.get("qps_ci95", 0.0))
        old_ci = (om["qps"], om.get("qps_ci95", 0.0))
        change = 100.0 * (new[0] / old_ci[0] - 1.0)
        beyond = not intervals_overlap(new, old_ci)
        cell.metrics["compare"] = {"old_qps": om["qps"], "old_qps_ci95": old_ci[1], "change_pct": round(change, 1),
                                   "beyond_noise": beyond,
                                   "verdict": ("faster" if change > 0 else "slower") if beyond else "within noise"}


def print_changes(doc: RunDocument) -> None:
    compared = [c for c in doc.results if "compare" in c.metrics]
    moved = [c for c in compared if c.metrics["compare"]["beyond_noise"]]
    print(f"compared {len(compared)} cells with the old run: {len(moved)} changed beyond the noise")
    for c in moved:
        cmp = c.metrics["compare"]
        where = f"{c.case} {c.target}/{c.driver} {c.params.get('variant')} c={c.params.get('concurrency')}"
        moved_by = f"{cmp['old_qps']:.0f} -> {c.metrics['qps']:.0f} qps"
        print(f"  {cmp['verdict']:>6} {cmp['change_pct']:+.1f}%  {where}: {moved_by}")
