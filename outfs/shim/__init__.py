"""The shim: runs at the start of every Python process of a job environment.

`outfs_shim.pth` (written by `install`) calls `boot(sitedir)`; the repo's top-level
`sitecustomize.py` calls `boot()` for PYTHONPATH users. Start-up reads only the small
registry `outfs_shim.json`; dormant (no registry, no migration) it patches nothing. Active, it
patches the standard library with plain closures and defers the rest: the alias table loads
on the first path under a root, wrapt and third-party patches on the library's import.
Only modules the interpreter already holds are imported here (json would pull in re).
"""

import os
import sys

REGISTRY = "outfs_shim.json"

_booted: set[str] = set()  # site directories whose registry is read
_suspended = False
_warned: set[str] = set()


def warn(key: str, message: str) -> None:
    """One line on stderr, once per process and key: the shim never raises into a job."""
    if key in _warned:
        return
    _warned.add(key)
    try:  # noqa: SIM105 - no contextlib import at start-up
        sys.stderr.write(f"outfs: {message}\n")
    except Exception:
        pass


def boot(sitedir: str | None = None) -> None:
    """Activate the shim for the migrations registered in `sitedir` (default: every
    site-packages directory of this interpreter). Idempotent; never raises.

    A venv with system site-packages may hold a registry in both directories, each with its
    own `.pth`: every directory is read once, and its migrations join the active ones.
    """
    try:
        dirs = [sitedir] if sitedir is not None else _site_dirs()
        fresh = [d for d in dirs if d not in _booted]
        if _suspended or not fresh:
            return  # .pth lines run twice in a venv (CPython issue 75723); sitecustomize too
        _booted.update(fresh)
        migrations = registered(fresh)
        if migrations:
            _activate(migrations)
    except Exception as exc:
        warn("boot", f"shim not loaded ({type(exc).__name__}: {exc}); old paths are not resolved")


def _site_dirs() -> list[str]:
    import site

    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return dirs


def registered(dirs: list[str]) -> list[tuple[str, str]]:
    """(root, state) of every migration registered in these directories' registries."""
    found: dict[str, str] = {}
    for directory in dirs:
        for item in _read_registry(os.path.join(directory, REGISTRY)):
            found.setdefault(item[0], item[1])
    return list(found.items())


def _read_registry(path: str) -> list[tuple[str, str]]:
    try:
        with open(path, "rb") as fh:
            data = _parse_json(fh.read().decode())
        return [(str(m["root"]), str(m["state"])) for m in data["migrations"]]
    except FileNotFoundError:
        return []
    except Exception as exc:
        warn("registry", f"{path} is unreadable ({exc}); old paths are not resolved")
        return []


class _JsonContext:
    """What `_json.make_scanner` reads from a JSONDecoder, without importing json (and re)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float

    def __init__(self) -> None:
        self.memo: dict[str, object] = {}


def _parse_json(text: str) -> dict:  # type: ignore[type-arg]
    import _json

    stripped = text.strip()
    value, end = _json.make_scanner(_JsonContext())(stripped, 0)
    if end != len(stripped) or not isinstance(value, dict):
        raise ValueError("not one JSON object")
    return value


def _activate(migrations: list[tuple[str, str]]) -> None:
    from outfs.shim import hooks, patches, paths

    paths.activate([paths.Migration(root, state) for root, state in migrations])
    patches.install()  # patches once; later calls only refresh the fast-path prefixes
    hooks.install()


def active() -> bool:
    """True while this process resolves old paths."""
    paths = sys.modules.get("outfs.shim.paths")
    return bool(paths and paths.MIGRATIONS)  # type: ignore[attr-defined]


def suspend() -> None:
    """Undo the patches in this process: the outfs CLI calls it so that it sees the real
    layout even when it runs in an environment with the shim installed."""
    global _suspended
    _suspended = True  # a later boot() must not patch again
    if "outfs.shim.patches" in sys.modules:
        from outfs.shim import hooks, patches, paths

        patches.uninstall()
        hooks.uninstall()
        paths.MIGRATIONS.clear()
