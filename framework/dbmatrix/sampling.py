"""The bounded CI profile ``DBMATRIX_CI_SAMPLE=1``: a deterministic sample of the layered pairs over some drivers.

Every DBAPI driver multiplies the matrix by three columns (itself, ``sa-core+`` and ``sa-orm+`` over it). A DBAPI
adapter that declares ``ci_sample_layers`` (the driver rung added after the first six: aiomysql, mysql-connector,
mysql-connector-pure, mariadb-connector) runs every case itself, while a layer over it runs one case in
``SAMPLE_EVERY`` under this profile: the cells whose ``crc32("<case> <driver>")`` is divisible by it, so the same
cells are chosen on every machine and in every run. Sampled-out cells are not generated at all (no ``skipped``
cell pretends to have run); the run record names the profile (``run.profile``). Without the variable, as a user
runs it, every cell runs.

Those drivers also leave ``sql.stream_large_result`` (``STREAM_CASE``) to the full run: at CI's halved row count
(``DBMATRIX_STREAM_ROWS=100000``) a driver's constant read-ahead is a tenth of the full fetch (aiomysql: 3.4 MiB of
30 MiB against the case's 10 % bound), so the cell would flip between runs; at 200,000 rows it is judged clearly.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

CI_SAMPLE_ENV = "DBMATRIX_CI_SAMPLE"
SAMPLE_EVERY = 4
STREAM_CASE = "sql.stream_large_result"


def active() -> bool:
    return os.environ.get(CI_SAMPLE_ENV, "") not in ("", "0")


def keeps(case: str, adapter: Any) -> bool:
    """Whether the cell of ``case`` on ``adapter`` (a driver or layer adapter) is generated under the profile."""
    if adapter.layer == "dbapi":
        return not (case == STREAM_CASE and getattr(adapter, "ci_sample_layers", False))
    if not getattr(adapter.under, "ci_sample_layers", False):
        return True
    return case != STREAM_CASE and zlib.crc32(f"{case} {adapter.id}".encode()) % SAMPLE_EVERY == 0


def profile() -> dict[str, Any] | None:
    """What the run record says of the profile (None: not active)."""
    if not active():
        return None
    return {"ci_sample": {"every": SAMPLE_EVERY, "layers_over": "drivers with ci_sample_layers",
                          "full_run_only": [STREAM_CASE]}}
