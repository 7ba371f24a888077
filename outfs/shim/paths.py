"""Resolution: an old path under a migrated root → where its entry lives now.

Imported at start-up when a migration is active, so it imports only modules the interpreter
already holds. The alias table itself is loaded on the first path under a root.
"""

import _thread
import os
import time

from outfs.shim import warn

READ, CREATE, MKDIR = "r", "w", "d"  # how a call uses a path: see patches.SPECS
RECHECK_SECONDS = 1.0  # how often a running job looks for a newer table

_normpath = os.path.normpath
_local = _thread._local()
_load_lock = _thread.RLock()


def _fresh_lock_after_fork() -> None:
    # A fork while another thread loads the table would leave the child a lock nobody
    # releases: the child's first old path would hang.
    global _load_lock
    _load_lock = _thread.RLock()


os.register_at_fork(after_in_child=_fresh_lock_after_fork)


class Migration:
    """One active migration: its root (and the spellings of it), its state directory."""

    def __init__(self, root: str, state: str) -> None:
        self.root = _normpath(root)
        real = os.path.realpath(self.root)
        self.spellings = (self.root,) if real == self.root else (self.root, real)
        self.state = state
        self._table = None  # an outfs.shim.table.ResolvingTable once loaded
        self._sig: object = ()  # aliases.json's signature when last read; () = never
        self._checked = -1e9

    def relative(self, path: str) -> str | None:
        """`path` (absolute, normalised) relative to root, or None outside it."""
        for s in self.spellings:
            if path.startswith(s) and (len(path) == len(s) or path[len(s)] == "/"):
                return path[len(s) + 1 :]
        return None

    def table(self):  # type: ignore[no-untyped-def]
        """The alias table, reloaded when it changed (checked at most once a second)."""
        now = time.monotonic()
        if now - self._checked < RECHECK_SECONDS:
            return self._table
        with _load_lock:
            if now - self._checked >= RECHECK_SECONDS:
                self._reload()
                self._checked = time.monotonic()
        return self._table

    def _reload(self) -> None:
        from outfs.shim import table

        sig = table.signature(self.state)
        if sig == self._sig:  # unchanged (a broken table is not read again until it changes)
            if self._table is not None:
                self._table.absorb_added(self.state)  # new files other processes placed
            return
        try:
            self._table = table.load_table(self.state)
        except Exception as exc:  # a torn or missing table: pass every call through
            self._table = None
            warn("table", f"cannot read the alias table ({exc}); old paths are not resolved")
        self._sig = sig

    def resolve(self, rel: str, kind: str) -> str | None:
        """The new absolute path for `rel`, or None to leave the call alone."""
        t = self.table()
        if t is None or not rel:
            return None
        hit = t.find(rel)
        if hit is not None:
            legacy, target, rest = hit
            new = f"{self.root}/{target}{rest}"
            # Not moved yet (migrate in progress) or moved back (rollback): the old path holds.
            if not os.path.lexists(new) and os.path.lexists(f"{self.root}/{rel}"):
                return None
            _usage().hit(self.state, legacy)
            return new
        if kind != READ and t.rule_specs:
            return self._place_new(t, rel, kind)
        return None

    def _place_new(self, t, rel: str, kind: str) -> str | None:  # type: ignore[no-untyped-def]
        """A new entry at an old path that a rule maps goes to the rule's target."""
        if os.path.lexists(f"{self.root}/{rel}") or t.kept(rel):
            return None  # what exists at the old path (kept, unmapped) is written in place
        from pathlib import Path

        from outfs.rules import LookupCache, map_entry

        project = Path(_normpath(os.path.join(self.root, t.project)))
        mapping = map_entry(t.rules(), rel, LookupCache(project))  # lookups resolved now
        if mapping is None or mapping.target is None:
            return None
        new = f"{self.root}/{mapping.target}"
        os.makedirs(os.path.dirname(new), exist_ok=True)
        entry_kind = "dir" if kind == MKDIR else "file"
        t.add(rel, mapping.target, entry_kind)
        from outfs.shim import table

        usage = _usage()
        host, pid = usage.identity()
        item = {"legacy": rel, "target": mapping.target, "kind": entry_kind}
        try:
            table.append_added(self.state, host, pid, item)
        except OSError as exc:  # the file still goes to its place; only later jobs miss it
            warn("added", f"cannot record the alias {rel} -> {mapping.target}: {exc}")
        usage.hit(self.state, rel)
        return new


def _usage():  # type: ignore[no-untyped-def]
    """The usage recorder, imported on the first hit rather than at start-up."""
    from outfs.shim import usage

    return usage


MIGRATIONS: list[Migration] = []
_cwd = ""


def activate(migrations: list[Migration]) -> None:
    """Add migrations to the active ones (a root registered twice counts once)."""
    global _cwd
    known = {m.root for m in MIGRATIONS}
    MIGRATIONS.extend(m for m in migrations if m.root not in known)
    _cwd = os.getcwd()


def set_cwd(cwd: str) -> None:
    """Called after the job changes directory: relative paths are relative to the new one."""
    global _cwd
    _cwd = cwd


def fast_prefixes() -> tuple[tuple[str, ...], bool]:
    """(prefixes, rel_all) for the fast test the wrappers run before anything else.

    A str path that starts with none of `prefixes` and holds no `..` is outside every root.
    `rel_all` is True when the working directory lies inside a root: then every relative
    path is under it.
    """
    prefixes: list[str] = []
    rel_all = False
    cwd = _cwd.rstrip("/")
    for m in MIGRATIONS:
        for s in m.spellings:
            prefixes.append(s)
            if _cwd == s or _cwd.startswith(s + "/"):
                rel_all = True
            elif s.startswith(cwd + "/"):
                rel = s[len(cwd) + 1 :]
                prefixes += [rel, "./" + rel]
    return tuple(prefixes), rel_all


def resolve(path: object, kind: str) -> object | None:
    """The path to use instead of `path` (same type family), or None to leave it alone.

    Accepts str, bytes and os.PathLike; file descriptors and other objects pass through.
    Never raises: an internal failure warns once and leaves the call alone.
    """
    if getattr(_local, "busy", False):
        return None  # the shim's own file access (table, usage) is never redirected
    _local.busy = True
    try:
        return _resolve(path, kind)
    except Exception as exc:
        warn("internal", f"internal error, call left unchanged: {type(exc).__name__}: {exc}")
        return None
    finally:
        _local.busy = False


def _resolve(path: object, kind: str) -> object | None:
    if isinstance(path, (str, bytes)):
        raw = path
    elif hasattr(type(path), "__fspath__"):
        raw = os.fspath(path)  # type: ignore[arg-type]
    else:
        return None
    text = os.fsdecode(raw) if isinstance(raw, bytes) else raw
    new = resolve_str(text, kind)
    if new is None:
        return None
    return os.fsencode(new) if isinstance(raw, bytes) else new


def virtual_dir(path: object) -> tuple[str, dict[str, str]] | None:
    """(root, children) when `path` names a directory under root (root included) that held
    entries which moved: its listings show their old names, and when it is gone because
    all it held moved, stat-ing it shows a directory."""
    if getattr(_local, "busy", False):
        return None
    _local.busy = True
    try:
        raw = os.fspath(path)  # type: ignore[call-overload]
        text = os.fsdecode(raw).rstrip("/") or "/"
        full = _normpath(text if text[0] == "/" else f"{_cwd}/{text}")
        for m in MIGRATIONS:
            rel = m.relative(full)
            t = m.table() if rel is not None else None
            if t is not None:
                kids = t.children(rel)
                return None if kids is None else (m.root, kids)
        return None
    except Exception:
        return None
    finally:
        _local.busy = False


def resolve_str(path: str, kind: str) -> str | None:
    if not path or "\0" in path:
        return None
    full = _normpath(path if path[0] == "/" else f"{_cwd}/{path}")
    for m in MIGRATIONS:
        rel = m.relative(full)
        if rel is not None:
            new = m.resolve(rel, kind)
            if new is not None and path.endswith("/"):
                new += "/"  # keep "a file is not a directory" errors as they were
            return new
    return None
