"""`outfs watch`: relocate what processes without the shim write at old paths.

A bash job or a Python env without the shim writes `out/v_hack_new.safetensors` after the
migration. The watcher (watchdog's inotify Observer) notices, waits until the writer is done,
moves the entry where the plan would have put it (`map_entry`, lookups resolved now) and
records the alias in `added/<host>-<pid>.jsonl`, exactly as the shim does for a shimmed
writer, so old paths keep resolving for shimmed readers, `aliases` and `rollback`.

Safety first: a relocation must never break the writer or lose data. An entry moves only
once it was closed (or renamed into place), nothing touched it for `settle` seconds, no
process holds a file in it open (or its cwd inside it), and by `rename_noreplace`, which
never replaces an existing target.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import socket
import stat
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    EventsLostEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
    FileSystemMovedEvent,
)
from watchdog.observers import Observer

from .config import STATE_DIR, Config
from .errors import OutfsError
from .journal import rename_noreplace
from .patterns import ancestors
from .plan import Move, tree_bytes
from .rules import LookupCache, map_entry
from .shim.table import TABLE_FILE, TableError, append_added, read_table, signature
from .state import write_holder

log = logging.getLogger("outfs.watch")

# Far enough ahead that it is a skewed clock (NFS), not a write: trust the events then.
_FUTURE_SKEW = 60.0
_TARGET_EXISTS = "destination exists; left in place, nothing overwritten"


@dataclass(frozen=True)
class Skipped:
    """An entry the watcher leaves where it is, and why (reported once per path and reason)."""

    path: str  # relative to root; "" when the report is about the watcher itself
    reason: str
    target: str | None = None

    def describe(self, config: Config) -> str:
        where = config.shown(self.path) if self.path else config.root_shown
        into = f" -> {config.shown(self.target)}" if self.target else ""
        return f"{where}{into}: {self.reason}"


@dataclass
class _Pending:
    """An entry a rule maps that something wrote in since the migration."""

    rel: str
    last: float  # monotonic time of the latest event in it
    finished: bool = False  # a file: closed after writing, created or renamed into place
    opens: dict[str, int] = field(default_factory=dict)  # path -> opens not yet closed

    def open_now(self) -> bool:
        return any(n > 0 for n in self.opens.values())


class Relocator:
    """Turns filesystem events into relocations; `watch` feeds it from an Observer.

    Not thread-safe: one thread calls `feed` and `step` (the Observer thread only queues).
    """

    def __init__(
        self,
        config: Config,
        *,
        settle: float = 2.0,
        on_move: Callable[[Move], None] | None = None,
        on_skip: Callable[[Skipped], None] | None = None,
    ) -> None:
        self.config = config
        self.settle = settle
        self.on_move = on_move or (lambda m: log.info("moved %s -> %s", m.source, m.target))
        self.on_skip = on_skip or (lambda s: log.warning("%s", s.describe(config)))
        self.pending: dict[str, _Pending] = {}
        self._root = str(config.root)
        self._reported: set[tuple[str, str]] = set()
        self._table_sig: tuple[object, ...] | None = None
        self.legacy: dict[str, str] = {}  # the alias table: legacy -> target
        self.targets: set[str] = set()
        self.reload_table()

    # --- the alias table -------------------------------------------------------------

    def active(self) -> bool:
        """A migration is active here: its alias table exists (rollback removes it)."""
        return (self.config.state / TABLE_FILE).is_file()

    def reload_table(self) -> None:
        """Re-read the table when it changed: targets are never relocated again."""
        sig = signature(str(self.config.state))
        if sig == self._table_sig:
            return
        try:
            _header, items = read_table(self.config.state)
        except TableError as exc:
            if self.active():
                self._report("", f"cannot read the alias table ({exc})")
            return
        self._table_sig = sig
        self.legacy = {i["legacy"]: i["target"] for i in items}
        self.targets = set(self.legacy.values())

    # --- events ----------------------------------------------------------------------

    def feed(self, event: FileSystemEvent, now: float) -> None:
        if isinstance(event, EventsLostEvent):
            self._events_lost()
        elif isinstance(event, FileSystemMovedEvent):
            self._moved(self._rel(event.src_path), self._rel(event.dest_path), now)
        elif isinstance(event, FileDeletedEvent | DirDeletedEvent):
            self._gone(self._rel(event.src_path), now)
        else:
            self._touch(self._rel(event.src_path), now, event)

    def _rel(self, path: bytes | str) -> str | None:
        path = os.fsdecode(path)
        if path.startswith(self._root + "/"):
            return path[len(self._root) + 1 :]
        return None  # root itself, or outside it (a move's far end)

    def _moved(self, src: str | None, dest: str | None, now: float) -> None:
        if src is not None:
            # Moved out of the new scheme (rollback, or a user on purpose): leave it there.
            if self._protected_path(src):
                return
            self._gone(src, now)
        if dest is not None:
            self._touch(dest, now, None)

    def _gone(self, rel: str | None, now: float) -> None:
        if rel is None:
            return
        for entry in list(self.pending):
            if entry == rel or entry.startswith(rel + "/"):
                del self.pending[entry]
            elif rel.startswith(entry + "/"):
                self.pending[entry].last = now  # a file in a pending directory went

    def _touch(self, rel: str | None, now: float, event: FileSystemEvent | None) -> None:
        entry = self.entry_of(rel) if rel else None
        if entry is None or rel is None:
            return
        p = self.pending.setdefault(entry, _Pending(entry, now))
        p.last = now
        if isinstance(event, FileOpenedEvent):
            p.opens[rel] = p.opens.get(rel, 0) + 1
        elif isinstance(event, FileClosedEvent | FileClosedNoWriteEvent):
            p.opens[rel] = max(0, p.opens.get(rel, 0) - 1)
            p.finished = p.finished or isinstance(event, FileClosedEvent)
        elif event is None or isinstance(event, FileCreatedEvent | DirCreatedEvent):
            # Created (opens follow as their own events) or renamed into place: complete.
            p.finished = p.finished or rel == entry

    def _events_lost(self) -> None:
        # The open counts may be wrong now; /proc and the quiet period still guard every move.
        for p in self.pending.values():
            p.opens.clear()
        self._report(
            "",
            "the inotify queue overflowed and events were lost; run `outfs migrate --now` "
            "to move anything the watcher missed (raise fs.inotify.max_queued_events)",
        )

    # --- which entry a path belongs to -----------------------------------------------

    def entry_of(self, rel: str) -> str | None:
        """The entry a rule maps that contains `rel` (plan semantics: the outermost entry a
        rule matches), or None when kept, under an alias target, state, or matched by none."""
        if rel == STATE_DIR or rel.startswith(STATE_DIR + "/"):
            return None
        for prefix in ancestors(rel):
            if self._protected(prefix):
                return None
            if any(rule.match.regex.fullmatch(prefix) for rule in self.config.rules):
                return prefix
        return None

    def _protected(self, prefix: str) -> bool:
        return prefix in self.targets or any(p.regex.fullmatch(prefix) for p in self.config.keep)

    def _protected_path(self, rel: str) -> bool:
        return any(self._protected(prefix) for prefix in ancestors(rel))

    # --- relocating ------------------------------------------------------------------

    def step(self, now: float) -> list[Move]:
        """Relocate every pending entry that is ready; returns what moved."""
        due = [p for p in self.pending.values() if self._due(p, now)]
        if not due:
            return []
        with _batch_lock(self.config.state) as held:
            if held is None or not self.active():
                self.pending.clear()  # no migration (any more): old paths are paths again
                return []
            if not held:
                return []  # a migrate or rollback runs: try again next cycle
            self.reload_table()
            busy = _busy_paths(os.path.realpath(self._root))
            lookups = LookupCache(self.config.project)  # lookups resolved at this moment
            return [m for p in due if (m := self._relocate(p, now, busy, lookups))]

    def _due(self, p: _Pending, now: float) -> bool:
        """Quiet for `settle`, every open we saw closed, and a file closed or renamed into
        place (a file only modified was opened before we watched: wait for its close)."""
        if now - p.last < self.settle or p.open_now():
            return False
        try:
            return p.finished or stat.S_ISDIR(os.lstat(self.config.root / p.rel).st_mode)
        except OSError:
            return True  # gone: _relocate forgets it

    def _relocate(
        self, p: _Pending, now: float, busy: list[str], lookups: LookupCache
    ) -> Move | None:
        src = self.config.root / p.rel
        try:
            st = os.lstat(src)
        except FileNotFoundError:
            del self.pending[p.rel]
            return None
        is_dir = stat.S_ISDIR(st.st_mode)
        # In use (an open file, a cwd inside), or written without events (a new subdir not
        # watched yet): look again after another quiet period, not on every tick.
        if self._in_use(src, is_dir, busy) or self._changed_lately(src, st, is_dir):
            p.last = now
            return None
        del self.pending[p.rel]
        target = self._target(p.rel, lookups)
        if target is None or not self._target_free(p.rel, target):
            return None
        return self._move(p.rel, target, "dir" if is_dir else "file", st.st_size)

    def _in_use(self, src: Path, is_dir: bool, busy: list[str]) -> bool:
        path = os.path.realpath(src)
        if is_dir:
            return any(b == path or b.startswith(path + "/") for b in busy)
        return path in busy

    def _changed_lately(self, src: Path, st: os.stat_result, is_dir: bool) -> bool:
        newest = _newest_mtime(src) if is_dir else st.st_mtime
        age = time.time() - newest
        return -_FUTURE_SKEW < age < self.settle

    def _target(self, rel: str, lookups: LookupCache) -> str | None:
        aliased = self.legacy.get(rel)
        if aliased is not None:
            # Shimmed processes resolve this old path to its alias target, or, while that is
            # missing (a rollback or a migration under way), to the old path itself: never
            # place it elsewhere by rule, never fight a rollback.
            if os.path.lexists(self.config.root / aliased):
                self._report(rel, _TARGET_EXISTS, aliased)
            else:
                self._report(rel, "its alias target is missing (rollback under way?)", aliased)
            return None
        mapping = map_entry(self.config.rules, rel, lookups)
        if mapping is None:
            return None
        if mapping.target is None:
            self._report(rel, mapping.reason or "lookup failed")
        return mapping.target

    def _target_free(self, rel: str, target: str) -> bool:
        if target.startswith(rel + "/"):
            self._report(rel, "the target lies inside the entry itself", target)
            return False
        if os.path.lexists(self.config.root / target):
            self._report(rel, _TARGET_EXISTS, target)
            return False
        return True

    def _move(self, rel: str, target: str, kind: str, size: int) -> Move | None:
        src, dst = self.config.root / rel, self.config.root / target
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            rename_noreplace(src, dst)
        except (OSError, OutfsError) as exc:
            self._report(rel, str(exc), target)
            return None
        if not self._record(rel, target, kind):
            return None
        self.legacy[rel] = target
        self.targets.add(target)
        move = Move(rel, target, kind, tree_bytes(str(dst)) if kind == "dir" else size)
        self.on_move(move)
        return move

    def _record(self, rel: str, target: str, kind: str) -> bool:
        """Append the alias; if that fails, undo the move: an unrecorded move loses the file
        for every shimmed reader."""
        item = {"legacy": rel, "target": target, "kind": kind}
        try:
            append_added(str(self.config.state), socket.gethostname(), os.getpid(), item)
            return True
        except OSError as exc:
            root = self.config.root
            with contextlib.suppress(OSError, OutfsError):
                rename_noreplace(root / target, root / rel)
            self._report(rel, f"cannot record the alias ({exc}); left in place", target)
            return False

    def _report(self, rel: str, reason: str, target: str | None = None) -> None:
        if (rel, reason) not in self._reported:
            self._reported.add((rel, reason))
            self.on_skip(Skipped(rel, reason, target))


def watch(
    config: Config,
    *,
    settle: float = 2.0,
    on_move: Callable[[Move], None] | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
    stop: threading.Event | None = None,
    ready: threading.Event | None = None,
) -> None:
    """Watch `config.root` in the foreground until `stop` is set, relocating new entries at
    old paths. `ready` is set once the watch is in place (writes before it go unseen)."""
    # Re-watching a directory moved back into the tree (rollback) is harmless but makes
    # watchdog warn once per directory (see watchdog PR #1278): not the user's concern.
    warnings.filterwarnings("ignore", r"Callback with id .* already exists", RuntimeWarning)
    relocator = Relocator(config, settle=settle, on_move=on_move, on_skip=on_skip)
    if not relocator.active():
        raise OutfsError(
            f"{config.state / TABLE_FILE} does not exist: nothing has been migrated here; "
            "run `outfs migrate --now` first"
        )
    stop = stop or threading.Event()
    events: queue.SimpleQueue[FileSystemEvent] = queue.SimpleQueue()
    observer = _start_observer(config.root, events)
    try:
        if ready is not None:
            ready.set()
        _loop(relocator, events, stop, tick=max(0.05, min(0.5, settle / 3)))
    finally:
        observer.stop()
        observer.join()


def _loop(
    relocator: Relocator,
    events: queue.SimpleQueue[FileSystemEvent],
    stop: threading.Event,
    tick: float,
) -> None:
    while not stop.is_set():
        deadline = time.monotonic() + tick
        with contextlib.suppress(queue.Empty):
            while (left := deadline - time.monotonic()) > 0:
                relocator.feed(events.get(timeout=left), time.monotonic())
        if not relocator.config.root.is_dir():
            raise OutfsError(f"{relocator.config.root} vanished; stopped watching")
        relocator.step(time.monotonic())


class _Forward(FileSystemEventHandler):
    """Runs on the Observer's thread: only queue, so a slow relocation never drops events."""

    def __init__(self, events: queue.SimpleQueue[FileSystemEvent]) -> None:
        self.events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.events.put(event)


def _start_observer(root: Path, events: queue.SimpleQueue[FileSystemEvent]) -> Any:
    observer = Observer()
    observer.schedule(_Forward(events), str(root), recursive=True)
    try:
        observer.start()
    except OSError as exc:
        raise OutfsError(
            f"cannot watch {root}: {exc}; if the inotify watch limit is reached, raise "
            "fs.inotify.max_user_watches (sysctl)"
        ) from None
    return observer


@contextlib.contextmanager
def _batch_lock(state: Path) -> Iterator[bool | None]:
    """The migration lock for one batch, without waiting: True held, False held by another
    (skip this cycle), None when there is no lock file (no migration; never create one,
    or a rolled-back root would get a `.outfs/` back)."""
    try:
        fd = os.open(state / "lock", os.O_RDWR)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        write_holder(fd, "watch")  # so a refused migrate names the watcher
        yield True
    finally:
        os.close(fd)  # closing releases the flock


def _busy_paths(root: str) -> list[str]:
    """Every path under `root` some process has open or as its cwd (/proc/*/fd, /proc/*/cwd).
    Processes of other users are unreadable without root: the close events cover them."""
    found: list[str] = []
    prefix = root + "/"
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        links = [f"/proc/{pid}/cwd"]
        with contextlib.suppress(OSError):
            links += [f"/proc/{pid}/fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
        for link in links:
            with contextlib.suppress(OSError):  # the process or fd went meanwhile
                path = os.readlink(link)
                if path.startswith(prefix):
                    found.append(path)
    return found


def _newest_mtime(directory: Path) -> float:
    newest = 0.0
    for dirpath, _dirs, files in os.walk(directory):
        for name in (".", *files):
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
    return newest
