"""Old directories under root, as old code expects to list them.

`migrate` moves `probe_distill/poolA` to `pools/poolA` and drops the emptied `probe_distill/`.
Old code that lists `out/probe_distill` to find its pools then gets FileNotFoundError; the
shim answers from the alias table instead: the listing holds the aliased names, and `stat`
shows a directory. A directory that still exists (`out/` itself, where `v_hack_*` lay) lists
its real entries plus the moved ones under their old names, so `glob("out/v_hack_*")`
still finds them. Entries keep the old path the job asked for, so everything it opens from
them resolves again. (A walk of all of `out/` therefore meets moved entries twice: at their
new place and under their old name.)
"""

import os
import stat as stat_module

from outfs.shim import paths


def fallback(name: str, orig, args: tuple, kwargs: dict, exc: OSError):  # type: ignore[no-untyped-def,type-arg]
    """What `os.<name>(*args)` answers for a gone old directory; re-raises `exc` otherwise."""
    path = args[0] if args else kwargs.get("path", ".")
    found = paths.virtual_dir(path)
    if found is None:
        raise exc
    root, children = found
    if name in ("stat", "lstat"):
        return os.stat(root)  # a directory, like the one that was there
    names = sorted(children)
    if name == "listdir":
        return [os.fsencode(n) for n in names] if isinstance(path, bytes) else names
    return _Listing([_Entry(path, n, children[n]) for n in names])


def merge(name: str, path: object, result):  # type: ignore[no-untyped-def]
    """A successful `listdir`/`scandir` of `path`, with the aliased entries that moved out
    of it added under their old names (a name already listed is not added twice)."""
    found = paths.virtual_dir(path)
    if found is None:
        return result
    children = found[1]
    if name == "listdir":
        present = {os.fsdecode(n) for n in result}
        extra = [n for n in sorted(children) if n not in present]
        if isinstance(path, bytes):
            return result + [os.fsencode(n) for n in extra]
        return result + extra
    with result:
        entries = list(result)
    present = {os.fsdecode(e.name) for e in entries}
    extra = [_Entry(path, n, children[n]) for n in sorted(children) if n not in present]
    return _Listing(entries + extra)


class _Entry:
    """Enough of os.DirEntry for glob, pathlib, os.walk and shutil."""

    def __init__(self, parent: object, name: str, kind: str) -> None:
        parent = os.fspath(parent)  # type: ignore[call-overload]
        self.name = os.fsencode(name) if isinstance(parent, bytes) else name
        self.path = os.path.join(parent, self.name)
        self._kind = kind

    def __fspath__(self):  # type: ignore[no-untyped-def]
        return self.path

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        return os.stat(self.path) if follow_symlinks else os.lstat(self.path)

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._is(stat_module.S_ISDIR, follow_symlinks)

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._is(stat_module.S_ISREG, follow_symlinks)

    def is_symlink(self) -> bool:
        return self._is(stat_module.S_ISLNK, False)

    def inode(self) -> int:
        return self.stat(follow_symlinks=False).st_ino

    def _is(self, test, follow_symlinks: bool) -> bool:  # type: ignore[no-untyped-def]
        try:
            return bool(test(self.stat(follow_symlinks=follow_symlinks).st_mode))
        except OSError:
            return False


class _Listing:
    """What os.scandir returns: an iterator that is also a context manager."""

    def __init__(self, entries: list[_Entry]) -> None:
        self._it = iter(entries)

    def __iter__(self) -> "_Listing":
        return self

    def __next__(self) -> _Entry:
        return next(self._it)

    def __enter__(self) -> "_Listing":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._it = iter(())
