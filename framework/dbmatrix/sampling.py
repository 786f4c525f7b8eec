"""The bounded CI profile ``DBMATRIX_CI_SAMPLE=1``: a deterministic sample of the layered pairs over some drivers.

Every DBAPI driver multiplies the matrix by three columns (itself, ``sa-core+`` and ``sa-orm+`` over it). A DBAPI
adapter that declares ``ci_sample_layers`` (the driver rung added after the first six: aiomysql, mysql-connector,
mysql-connector-pure, mariadb-connector) runs every case itself, while a layer over it runs one case in
``SAMPLE_EVERY`` under this profile: the cells whose ``crc32("<case> <driver>")`` is divisible by it, so the same
cells are chosen on every machine and in every run. Sampled-out cells are not generated at all (no ``skipped``
cell pretends to have run); the run record names the profile (``run.profile``). Without the variable, as a user
runs it, every cell runs.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

CI_SAMPLE_ENV = "DBMATRIX_CI_SAMPLE"
SAMPLE_EVERY = 4


def active() -> bool:
    return os.environ.get(CI_SAMPLE_ENV, "") not in ("", "0")


def keeps(case: str, adapter: Any) -> bool:
    """Whether the cell of ``case`` on ``adapter`` (a driver or layer adapter) is generated under the profile."""
    if adapter.layer == "dbapi" or not getattr(adapter.under, "ci_sample_layers", False):
        return True
    return zlib.crc32(f"{case} {adapter.id}".encode()) % SAMPLE_EVERY == 0


def profile() -> dict[str, Any] | None:
    """What the run record says of the profile (None: not active)."""
    if not active():
        return None
    return {"ci_sample": {"every": SAMPLE_EVERY, "layers_over": "drivers with ci_sample_layers"}}
