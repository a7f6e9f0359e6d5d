"""Atomic writes: readers see the old file or the new one, never half of either."""

from __future__ import annotations

import ctypes
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from aggregator.errors import ConfigError, Unavailable

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".publish.lock"


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


def check_folder(folder: Path) -> None:
    """Make ``folder`` if needed and prove we can write in it, before any work is done: a
    file where the folder should be is ConfigError, a folder we may not write Unavailable."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"output folder {folder}: not a folder (a file is there)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        Path(probe).unlink(missing_ok=True)  # a publish may have taken it for a stray
    except NotADirectoryError:
        raise ConfigError(f"output folder {folder}: a file is in its path") from None
    except OSError as exc:
        raise Unavailable(f"output folder {folder}: cannot write: {exc.strerror or exc}") from None


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


@contextmanager
def publish_lock(folder: Path) -> Iterator[int]:
    """Hold the out folder's publish lock while writing into it (an advisory ``flock`` on
    ``.publish.lock``); yield how many stray temporary files were removed.

    One publisher at a time writes in a folder, so any temporary file found under the lock was
    left by a publisher that died mid-publish (SIGKILL, power cut: its ``finally`` never ran);
    it is removed, so such leftovers never pile up nor get served by a plain web server. The
    kernel lets go of the lock when its holder dies, however it dies.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield remove_strays(folder)
    finally:
        os.close(fd)  # closing lets go of the flock


def remove_strays(folder: Path) -> int:
    """Remove the temporary files (``.NAME.XXXX.tmp``) in ``folder`` and its subfolders that a
    dead writer left; only under :func:`publish_lock`. A live :func:`check_folder` probe taken
    for one does no harm: the probe is written nothing and its removal may find it gone."""
    removed = 0
    for path in folder.rglob(".*.tmp"):
        if not path.is_file():
            continue
        path.unlink(missing_ok=True)
        removed += 1
    return removed
