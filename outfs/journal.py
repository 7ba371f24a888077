"""The journal: the moves of each migration, written before the first of them happens.

A killed `migrate --now` leaves its last migration incomplete; the next run finishes it.
Each move is one rename that refuses to replace an existing destination, so at every
instant an entry exists at exactly one of its old and new paths.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import OutfsError
from .plan import Move
from .state import atomic_write_json, now_iso, read_json

JOURNAL_FILE = "journal.json"


@dataclass
class Journal:
    path: Path
    migrations: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, state: Path) -> Journal:
        data = read_json(state / JOURNAL_FILE) or {}
        return cls(state / JOURNAL_FILE, data.get("migrations", []))

    def save(self) -> None:
        atomic_write_json(self.path, {"version": 1, "migrations": self.migrations})

    def pending(self) -> list[Move]:
        """The moves of an interrupted migration, or [] when the last one completed."""
        if not self.migrations or self.migrations[-1]["complete"]:
            return []
        return [Move(**m) for m in self.migrations[-1]["moves"]]

    def begin(self, moves: list[Move], created_dirs: list[str]) -> None:
        self.migrations.append(
            {
                "started": now_iso(),
                "moves": [m.__dict__ for m in moves],
                "created_dirs": created_dirs,
                "complete": False,
            }
        )
        self.save()

    def complete(self) -> None:
        self.migrations[-1]["complete"] = True
        self.migrations[-1]["finished"] = now_iso()
        self.save()

    def moved_sources(self) -> set[str]:
        """Every entry a migration moved (aliases beyond these were added by the shim)."""
        return {m["source"] for migration in self.migrations for m in migration["moves"]}

    def created_dirs(self) -> list[str]:
        """Directories migrations created (rollback removes them again if empty)."""
        return sorted({d for m in self.migrations for d in m["created_dirs"]})


def dirs_to_create(root: Path, moves: Iterable[Move]) -> list[str]:
    """The target parents that do not exist yet, relative to root."""
    missing: set[str] = set()
    present: set[str] = set()
    for move in moves:
        parent = os.path.dirname(move.target)
        while parent and parent not in missing and parent not in present:
            if os.path.isdir(os.path.join(root, parent)):
                present.add(parent)  # and so does everything above it
                break
            missing.add(parent)
            parent = os.path.dirname(parent)
    return sorted(missing)


class Mover:
    """Applies moves under one root: one rename per entry, and each target directory made
    once (at tens of thousands of moves the syscalls around a rename would cost more than
    the renames themselves)."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.made: set[str] = set()

    def move(self, source: str, target: str) -> bool:
        """root/source → root/target; False when that already happened (a resumed run)."""
        src, dst = os.path.join(self.root, source), os.path.join(self.root, target)
        parent = os.path.dirname(dst)
        if parent not in self.made:
            os.makedirs(parent, exist_ok=True)
            self.made.add(parent)
        try:
            rename_noreplace(src, dst)
            return True
        except FileNotFoundError:
            if os.path.lexists(dst):
                return False
            raise OutfsError(
                f"{src} is missing and so is {dst}: something else moved or deleted it; "
                "find it, put it back at either path, and run again"
            ) from None
        except FileExistsError:
            if not os.path.lexists(src):
                return False  # moved by an earlier, interrupted run
            raise OutfsError(
                f"{dst} appeared while migrating; move it aside and run again"
            ) from None


def remove_empty_dirs(root: Path, dirs: Iterable[str]) -> None:
    """Remove these directories (deepest first) where empty; root itself is never removed."""
    for rel in sorted(set(dirs), key=lambda d: d.count("/"), reverse=True):
        if rel in ("", "."):
            continue
        with contextlib.suppress(OSError):  # not empty (or gone): it stays as it is
            os.rmdir(root / rel)


def parents_of(paths: Iterable[str]) -> set[str]:
    """Every ancestor directory of these root-relative paths, root excluded."""
    out: set[str] = set()
    for path in paths:
        out.update(p.as_posix() for p in Path(path).parents if p.as_posix() != ".")
    return out


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


def rename_noreplace(src: str | Path, dst: str | Path) -> None:
    """rename(2) that fails instead of replacing dst (Linux renameat2 RENAME_NOREPLACE):
    FileExistsError then, FileNotFoundError for a missing src, OutfsError otherwise."""
    if _renameat2 is not None:
        rc = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS):  # EINVAL: filesystem lacks the flag
            raise _rename_error(err, src, dst)
    if os.path.lexists(dst):  # best effort where the kernel cannot refuse for us
        raise _rename_error(errno.EEXIST, src, dst)
    os.rename(src, dst)


def _rename_error(err: int, src: str | Path, dst: str | Path) -> OSError:
    if err in (errno.EEXIST, errno.ENOENT):
        return OSError(err, os.strerror(err), str(src), None, str(dst))
    if err == errno.EXDEV:
        return OutfsError(
            f"{src} and {dst} are on different filesystems; outfs moves by "
            "rename only, so mount the target inside the same filesystem"
        )
    return OutfsError(f"cannot move {src} to {dst}: {os.strerror(err)}")
