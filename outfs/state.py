"""The `<root>/.outfs/` directory: atomic JSON writes and the exclusive lock.

State lives inside root so that it travels with the data on shared storage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import OutfsError


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def atomic_write_json(path: Path, data: Any) -> None:
    """Write `data` so that readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            # dumps, not dump(indent=...): only the former runs json's C encoder, and a
            # 100k-alias table is written in a fraction of a second instead of seconds.
            fh.write(json.dumps(data))
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def read_json(path: Path) -> Any:
    """The JSON in `path`, or None when it does not exist."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise OutfsError(f"{path}: unreadable ({exc}); restore it from a backup") from None


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk too.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(state: Path, action: str) -> Iterator[None]:
    """Hold `<state>/lock` for `action`; a second holder is refused with who holds it."""
    state.mkdir(parents=True, exist_ok=True)
    lock_path = state / "lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutfsError(_held_message(lock_path)) from None
        write_holder(fd, action)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def write_holder(fd: int, action: str) -> None:
    """Say in the locked file who holds it, so a refused second run can name the holder."""
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "action": action,
        "argv": sys.argv,
        "since": now_iso(),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode() + b"\n", 0)


def _held_message(lock_path: Path) -> str:
    try:
        holder = json.loads(lock_path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    who = (
        f"`outfs {holder.get('action', '?')}` (pid {holder.get('pid', '?')} on "
        f"{holder.get('host', '?')}, since {holder.get('since', '?')})"
    )
    return f"{lock_path}: another {who} holds the lock; wait for it to finish, then run again"
