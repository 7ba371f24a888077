"""The one table of path-taking callables, and the standard-library patching it drives.

Each entry names a callable and which of its arguments are paths, and how each is used:
read, create (a new file may land at a rule's target), mkdir, or decided by the `open` mode
or the `os.open` flags. Standard-library entries are patched at start-up with plain closures;
third-party entries (THIRD_PARTY) are patched by `hooks` when the job imports the library.
Most of `os.path`, `pathlib`, `glob` and `shutil` reach the file system through `os` and
`io.open` in 3.11, so patching those covers them.
"""

import builtins
import os
import sys

from outfs.shim import paths
from outfs.shim.paths import CREATE, MKDIR, READ

MODE, FLAGS = "mode", "flags"  # kinds decided by the call: open()'s mode, os.open()'s flags

Arg = tuple[int, str, str]  # (position, keyword, kind)
Spec = tuple[str, str, tuple[Arg, ...]]  # (module, attribute, path arguments)


def _one(kind: str, keyword: str = "path") -> tuple[Arg, ...]:
    return ((0, keyword, kind),)


_TWO = ((0, "src", READ), (1, "dst", CREATE))

STDLIB: tuple[Spec, ...] = (
    ("builtins", "open", _one(MODE, "file")),
    ("io", "open", _one(MODE, "file")),
    ("os", "open", _one(FLAGS)),
    *(
        ("os", name, _one(READ))
        for name in (
            "stat", "lstat", "access", "listdir", "scandir", "remove", "unlink", "rmdir",
            "utime", "chmod", "chown", "lchown", "truncate", "readlink", "statvfs",
            "pathconf", "listxattr", "getxattr", "setxattr", "removexattr", "chdir",
        )
    ),
    ("os", "mkdir", _one(MKDIR)),
    ("os", "mkfifo", _one(CREATE)),
    ("os", "mknod", _one(CREATE)),
    ("os", "rename", _TWO),
    ("os", "replace", _TWO),
    ("os", "link", _TWO),
    ("os", "symlink", ((1, "dst", CREATE),)),  # the first argument is the link's text
    ("os", "fchdir", ()),  # no path, but the working directory changes
)  # fmt: skip

THIRD_PARTY: tuple[Spec, ...] = (
    # Rust: reads and writes the file itself, never through Python's open().
    ("safetensors", "safe_open", _one(READ, "filename")),
    ("safetensors", "serialize_file", ((1, "filename", CREATE),)),
    # load_file/save_file call the names their module imported from safetensors.
    ("safetensors.numpy", "safe_open", _one(READ, "filename")),
    ("safetensors.numpy", "serialize_file", ((1, "filename", CREATE),)),
    ("safetensors.torch", "safe_open", _one(READ, "filename")),
    ("safetensors.torch", "serialize_file", ((1, "filename", CREATE),)),
    # torch.save writes through C++ PyTorchFileWriter; torch.load(mmap=True) maps in C++.
    ("torch.serialization", "load", _one(READ, "f")),
    ("torch.serialization", "save", ((1, "f", CREATE),)),
    ("torch", "load", _one(READ, "f")),
    ("torch", "save", ((1, "f", CREATE),)),
    ("torch", "from_file", _one(READ, "filename")),
    # C: SQLite opens (and creates) the database file itself.
    ("sqlite3", "connect", _one(CREATE, "database")),
    ("sqlite3.dbapi2", "connect", _one(CREATE, "database")),
)

# Calls that answer for an old directory that is gone because all it held moved (virtual.py).
VIRTUAL_DIRS = frozenset({"stat", "lstat", "listdir", "scandir"})
_DIR_FDS = ("dir_fd", "src_dir_fd", "dst_dir_fd")
_LISTINGS = frozenset({"listdir", "scandir"})
_NOARG = object()

# The fast test, rebuilt when the working directory changes (see paths.fast_prefixes).
PREFIXES: tuple[str, ...] = ()
REL_ALL = False

_originals: list[tuple[object, str, object]] = []


def outside(value: object) -> bool:
    """True when `value` is surely no path under a root: the call needs no resolution."""
    if type(value) is not str:
        if value is None or isinstance(value, int):
            return True
        try:
            value = os.fsdecode(os.fspath(value))  # type: ignore[arg-type]
        except TypeError:
            return True  # a file object, not a path
    p: str = value  # type: ignore[assignment]
    return not p.startswith(PREFIXES) and ".." not in p and (not REL_ALL or p[:1] == "/")


def rewrite(args_spec: tuple[Arg, ...], args: tuple, kwargs: dict) -> tuple[tuple, dict]:  # type: ignore[type-arg]
    """`args`, `kwargs` with each path argument replaced by its resolution."""
    try:
        if kwargs and any(kwargs.get(k) is not None for k in _DIR_FDS):
            return args, kwargs  # relative to a directory descriptor, not to the cwd
        for pos, keyword, kind in args_spec:
            if pos < len(args):
                value = args[pos]
            elif keyword in kwargs:
                value = kwargs[keyword]
            else:
                continue
            if outside(value):
                continue
            new = paths.resolve(value, _kind(kind, args, kwargs))
            if new is None:
                continue
            if pos < len(args):
                args = (*args[:pos], new, *args[pos + 1 :])
            else:
                kwargs = {**kwargs, keyword: new}
        return args, kwargs
    except Exception:
        return args, kwargs


def _kind(kind: str, args: tuple, kwargs: dict) -> str:  # type: ignore[type-arg]
    if kind == MODE:
        mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
        creates = isinstance(mode, str) and ("w" in mode or "a" in mode or "x" in mode)
        return CREATE if creates else READ
    if kind == FLAGS:
        flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
        return CREATE if isinstance(flags, int) and flags & os.O_CREAT else READ
    return kind


def _call(orig, name: str | None, args: tuple, kwargs: dict):  # type: ignore[no-untyped-def,type-arg]
    try:
        return orig(*args, **kwargs)
    except FileNotFoundError as exc:
        if name is None:
            raise
        from outfs.shim import virtual

        return virtual.fallback(name, orig, args, kwargs, exc)


def _fast_wrapper(orig, args_spec: tuple[Arg, ...], virtual: str | None):  # type: ignore[no-untyped-def]
    """For the common shape (one path, first argument): a str outside every root costs
    one type check, one startswith and one substring test before the real call. (A path
    that reaches a root only through `//` or `/./` before the root's end is not resolved.)"""

    def wrapper(p=_NOARG, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        if (
            type(p) is str
            and not p.startswith(PREFIXES)
            and ".." not in p
            and (not REL_ALL or p[:1] == "/")
        ):
            if args or kwargs:
                return orig(p, *args, **kwargs)
            return orig(p)  # no argument tuple to build: the common os.stat(path)
        if p is not _NOARG:
            args = (p, *args)
        asked = args[0] if args else None
        args, kwargs = rewrite(args_spec, args, kwargs)
        result = _call(orig, virtual, args, kwargs)
        if virtual in _LISTINGS and args and args[0] is asked:
            # A directory under root that still exists (root itself, a part-emptied one):
            # the entries that moved out of it are listed too, under their old names.
            from outfs.shim import virtual as virtual_dirs

            return virtual_dirs.merge(virtual, asked, result)
        return result

    return wrapper


def _generic_wrapper(orig, args_spec: tuple[Arg, ...], after):  # type: ignore[no-untyped-def]
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        args, kwargs = rewrite(args_spec, args, kwargs)
        result = orig(*args, **kwargs)
        if after is not None:
            after()
        return result

    return wrapper


def _cwd_changed() -> None:
    """After chdir/fchdir: relative paths now start from somewhere else."""
    global PREFIXES, REL_ALL
    try:
        paths.set_cwd(os.getcwd())
        PREFIXES, REL_ALL = paths.fast_prefixes()
    except Exception:
        pass


def make_wrapper(orig, spec: Spec):  # type: ignore[no-untyped-def]
    _, name, args_spec = spec
    after = _cwd_changed if name in ("chdir", "fchdir") else None
    if after is None and len(args_spec) == 1 and args_spec[0][0] == 0:
        wrapper = _fast_wrapper(orig, args_spec, name if name in VIRTUAL_DIRS else None)
    else:
        wrapper = _generic_wrapper(orig, args_spec, after)
    wrapper.__name__ = getattr(orig, "__name__", name)
    wrapper.__qualname__ = getattr(orig, "__qualname__", name)
    wrapper.__doc__ = getattr(orig, "__doc__", None)
    wrapper.__wrapped__ = orig  # type: ignore[attr-defined]
    wrapper.__outfs_shim__ = True  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Patch every STDLIB entry (once: a second call finds the wrappers in place, and only
    refreshes the fast-path prefixes for migrations added since)."""
    global PREFIXES, REL_ALL
    PREFIXES, REL_ALL = paths.fast_prefixes()
    for spec in STDLIB:
        module = sys.modules.get(spec[0]) or (builtins if spec[0] == "builtins" else None)
        orig = getattr(module, spec[1], None)
        if orig is None or getattr(orig, "__outfs_shim__", False):
            continue  # not on this platform, or patched already
        setattr(module, spec[1], make_wrapper(orig, spec))
        _originals.append((module, spec[1], orig))


def uninstall() -> None:
    """Put the originals back (the CLI does, so that it sees the real layout)."""
    while _originals:
        module, name, orig = _originals.pop()
        setattr(module, name, orig)
