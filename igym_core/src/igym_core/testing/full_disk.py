"""A real full disk for tests: a small tmpfs that a test fills up and frees again.

Data sinks meet a full disk as ``ENOSPC`` from the operating system, often after part of a write
went through; this gives tests exactly that, with no patching. Mounting needs root (or
``CAP_SYS_ADMIN``); where it is not permitted, :func:`mount_full_disk` skips the test and says why.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["SmallDisk", "mount_full_disk"]

_FILLER = ".igym-test-filler"


class SmallDisk:
    """A tmpfs of ``size_kib`` KiB mounted at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / _FILLER

    def fill(self) -> None:
        """Take every free page. Files already there can still grow to the end of their last
        page (as on a real disk, to the end of their last block): an append of more than what is
        left of that page goes part way, then fails with ``ENOSPC``; a shorter one succeeds."""
        block = b"\0" * 4096
        with self._filler.open("ab", buffering=0) as handle:
            while True:
                try:
                    handle.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    return

    def free(self) -> None:
        """Make room again."""
        self._filler.unlink(missing_ok=True)

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize


@contextmanager
def mount_full_disk(path: Path, *, size_kib: int = 1024) -> Iterator[SmallDisk]:
    """Mount a ``size_kib`` tmpfs at ``path`` (created), yield it, unmount it; skip if not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"a full disk needs a tmpfs mount, which is not permitted here: {result.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
