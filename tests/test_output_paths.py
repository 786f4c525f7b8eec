"""Output paths: dbmatrix writes only regular files. A device, a pipe or a directory at an output path is refused
with one line; a symlink is followed to the file it names and kept (never replaced by a file); a full disk or a
missing permission is one line and exit 2 with nothing half-written (no temp file, the old file untouched).

A full disk is made real with RLIMIT_FSIZE in a child process: the kernel refuses the write (EFBIG) the way a
full file system refuses it (ENOSPC), through the same code path.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from report_samples import sample_document

from dbmatrix.cli import main

CLI = [sys.executable, "-c", "import sys; from dbmatrix.cli import main; sys.exit(main())"]


@pytest.fixture
def docs(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    for path in (old, new):
        path.write_text(json.dumps(sample_document()), encoding="utf-8")
    return old, new


def one_line(code: int, err: str, contains: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dbmatrix: error: "), err
    assert contains in lines[0], lines[0]
    return lines[0]


def special_files(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    device_link = tmp_path / "null-link"
    device_link.symlink_to("/dev/null")
    return {"named pipe": fifo, "character device": Path("/dev/null"), "device via symlink": device_link,
            "directory": tmp_path}


@pytest.mark.parametrize("flag", ["--md", "--html"])
def test_diff_refuses_a_device_pipe_or_directory_and_leaves_it_as_it_was(
        flag: str, docs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: ``diff ... --md <a character device>`` printed "wrote ..." and, as root, replaced the device node
    with a regular file."""
    old, new = docs
    for what, path in special_files(tmp_path).items():
        before = os.lstat(path)
        line = one_line(main(["diff", str(old), str(new), flag, str(path)]), capsys.readouterr().err,
                        "not a regular file")
        assert "wrote" not in line, what
        after = os.lstat(path)
        assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev), what
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_symlink_at_an_output_path_is_followed_and_kept(docs: tuple[Path, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    old, new = docs
    real = tmp_path / "shared" / "diff.md"
    real.parent.mkdir()
    real.write_text("old\n", encoding="utf-8")
    link = tmp_path / "diff.md"
    link.symlink_to(real)
    assert main(["diff", str(old), str(new), "--md", str(link)]) == 0
    capsys.readouterr()
    assert link.is_symlink() and os.readlink(link) == str(real)  # the link itself is never replaced
    assert real.read_text(encoding="utf-8").startswith("#")  # the file it names got the report
    assert not list(real.parent.glob(".*.tmp"))


def limited(max_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


@pytest.mark.parametrize("verb", ["report", "diff"])
def test_a_full_disk_is_one_line_and_nothing_half_written(verb: str, docs: tuple[Path, Path],
                                                           tmp_path: Path) -> None:
    """Before: a full disk on ``--out`` was a 16-72-line traceback in ``run``, ``report``, ``diff``, ``migrate``."""
    old, new = docs
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ("report.md" if verb == "report" else "diff.md")
    stale.write_text("stale\n", encoding="utf-8")
    argv = {"report": ["report", str(new), "--out", str(out)],
            "diff": ["diff", str(old), str(new), "--md", str(stale)]}[verb]
    proc = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=60, preexec_fn=lambda: limited(16))
    line = one_line(proc.returncode, proc.stderr, "cannot write")
    assert "Traceback" not in proc.stdout + proc.stderr and ("too large" in line or "space" in line), line
    assert stale.read_text(encoding="utf-8") == "stale\n"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_run_whose_results_cannot_be_written_says_so_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run([*CLI, "run", "--target", "sqlite", "--driver", "sqlite3", "--case", "types.int*",
                           "--out", str(out)], capture_output=True, text=True, timeout=180,
                          cwd=Path(__file__).resolve().parents[1], preexec_fn=lambda: limited(4096))
    one_line(proc.returncode, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "", "cannot write")
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
