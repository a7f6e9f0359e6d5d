"""Atomic writes: readers see the old file or the new one, never half of either."""

from __future__ import annotations

import ctypes
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_syncfs():  # noqa: ANN202 - a ctypes function or None
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # not Linux: no syncfs
        return None


_SYNCFS = _load_syncfs()


def sync_filesystem(folder: Path) -> None:
    """Flush the filesystem holding ``folder`` (Linux syncfs), else every filesystem (sync)."""
    if _SYNCFS is not None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            if _SYNCFS(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def write_many(root: Path, files: Sequence[tuple[str, bytes]]) -> int:
    """Write each changed file under ``root`` atomically, in order; return how many changed.

    Unchanged files keep their mtime, so the server's Last-Modified and readers' caches stay
    valid. The changed ones go to temporary names first, then one ``syncfs`` makes them all
    durable (an fsync per file costs milliseconds each: seconds for a thousand story pages),
    then each is renamed into place, so a reader sees every file whole, old or new.
    """
    pending: list[tuple[str, Path]] = []
    try:
        for name, data in files:
            path = root / name
            if _holds(path, data):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            pending.append((tmp, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o644)
        changed = len(pending)
        if pending:
            sync_filesystem(root)
        while pending:
            tmp, path = pending.pop(0)
            os.replace(tmp, path)
    finally:
        for tmp, _ in pending:
            Path(tmp).unlink(missing_ok=True)
    return changed
