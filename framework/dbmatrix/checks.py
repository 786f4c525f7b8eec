"""Checks made before anything runs, so bad input is one line and exit 2 instead of a failure after the run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UsageError


def check_out_dir(out: Path) -> None:
    """``out`` must be (or be creatable as) a directory we can write to; probed by writing a temp file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    probe_dir = out
    while not probe_dir.exists():
        parent = probe_dir.parent
        if parent == probe_dir:
            break
        probe_dir = parent
    if not probe_dir.is_dir():
        raise UsageError(f"--out {out}: {probe_dir} is not a directory")
    try:
        fd, name = tempfile.mkstemp(prefix=".dbmatrix-probe-", dir=probe_dir)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write in {probe_dir} ({exc.strerror or exc})") from None
