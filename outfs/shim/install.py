"""Putting the shim into a job environment and taking it out (used by the CLI, not by jobs).

An environment with the shim holds two files in its site-packages (design.md):
`outfs_shim.json`, the registry of active migrations, and `outfs_shim.pth`, one line that
boots the shim at every start-up. `.pth` files run even where a distribution's own
`sitecustomize` shadows ours (Debian, Homebrew): that is why coverage and uv use them too.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from outfs.errors import OutfsError
from outfs.shim import REGISTRY

PTH = "outfs_shim.pth"
# A .pth line runs only if it starts with "import". Its code imports outfs only when the
# registry names a root (dormant costs one small read). When outfs lives in a site directory
# processed after this one (a venv's system site-packages: the venv's .pth files run first),
# the import fails at this point of start-up, so the package is loaded from where `install`
# found it, with the PathFinder the interpreter already holds (importlib.util costs ~5 ms).
# A failure says so once on stderr: silence would break jobs on old paths.
PTH_LINE = "import sys; exec({check!r})\n"
# Dormant start-ups compile only this check (compiling the loader below costs ~0.2 ms).
PTH_CHECK = (
    "try:\n"
    " with open({registry!r}, 'rb') as _outfs_f:\n"
    "  _outfs_on = b'\"root\"' in _outfs_f.read()\n"
    "except OSError:\n"
    " _outfs_on = False\n"
    "if _outfs_on:\n"
    " exec({loader!r})\n"
)
PTH_LOADER = (
    "try:\n"
    " try:\n"
    "  from outfs.shim import boot\n"
    " except ImportError:\n"
    "  _outfs_pf = [f for f in sys.meta_path if getattr(f, '__name__', '') == 'PathFinder'][0]\n"
    "  _outfs_s = _outfs_pf.find_spec('outfs', [{parent!r}])\n"
    "  _outfs_m = type(sys)('outfs')\n"
    "  _outfs_m.__spec__, _outfs_m.__loader__ = _outfs_s, _outfs_s.loader\n"
    "  _outfs_m.__file__, _outfs_m.__package__ = _outfs_s.origin, 'outfs'\n"
    "  _outfs_m.__path__ = _outfs_s.submodule_search_locations\n"
    "  sys.modules['outfs'] = _outfs_m\n"
    "  _outfs_s.loader.exec_module(_outfs_m)\n"
    "  from outfs.shim import boot\n"
    " boot({sitedir!r})\n"
    "except Exception as _outfs_e:\n"
    " sys.stderr.write(f'outfs: shim not loaded ({{_outfs_e}}); old paths are not resolved\\n')\n"
)


class ShimError(OutfsError):
    """The shim cannot go into (or come out of) an environment; the message says why."""


def python_of(env: Path) -> Path:
    for name in ("python", "python3"):
        candidate = Path(env) / "bin" / name
        if candidate.exists():
            return candidate
    raise ShimError(f"{env}: no bin/python in it; is it a Python environment (a venv)?")


def site_packages(env: Path) -> Path:
    """The directory where ENV's python processes `.pth` files at start-up."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(_run(env, code).strip())


def install(env: Path, root: Path, state: Path) -> Path:
    """Register the migration of `root` (state in `state`) in ENV; returns the `.pth` path.

    Refuses when ENV's python cannot import outfs: its jobs could not load the shim.
    Safe to run again: a root is registered once.
    """
    package = check(env)
    sp = site_packages(env)
    entries = _read(sp)
    # The root as the user spells it, not resolved: when out/ is a symlink to a big disk, jobs
    # say "out/..." from the project, and the shim derives that prefix from this spelling
    # (it adds the resolved one itself).
    entry = {"root": os.path.abspath(root), "state": os.path.abspath(state)}
    entries = [e for e in entries if not _same_root(e, entry["root"])] + [entry]
    # The registry first: a process starting between the two writes finds a .pth-less
    # registry (nothing runs) rather than a registry-less .pth (a warning).
    _write(sp / REGISTRY, json.dumps({"migrations": entries}, indent=1) + "\n")
    pth = sp / PTH
    loader = PTH_LOADER.format(sitedir=str(sp), parent=os.path.dirname(package))
    line = PTH_CHECK.format(registry=str(sp / REGISTRY), loader=loader)
    _write(pth, PTH_LINE.format(check=line))
    return pth


def remove(env: Path, root: Path | None = None) -> list[Path]:
    """Unregister `root` (None: every root) from ENV; returns the files deleted.

    When no migration remains, both files go: a new process imports nothing of outfs.
    """
    sp = site_packages(env)
    try:
        entries = _read(sp)
    except ShimError:
        entries = []  # an unreadable registry serves nobody: both files go
    if root is not None:
        entries = [e for e in entries if not _same_root(e, os.path.abspath(root))]
    else:
        entries = []
    if entries:
        _write(sp / REGISTRY, json.dumps({"migrations": entries}, indent=1) + "\n")
        return []
    removed = []
    for path in (sp / PTH, sp / REGISTRY):  # the .pth first, for the same reason as above
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def installed(env: Path) -> list[dict[str, str]]:
    """The migrations ENV's shim serves ([] when the shim is not installed there)."""
    sp = site_packages(env)
    if not (sp / PTH).exists():
        return []
    return _read(sp)


def _same_root(entry: dict[str, str], root: str) -> bool:
    theirs = str(entry.get("root"))
    return theirs == root or os.path.realpath(theirs) == os.path.realpath(root)


def _read(sp: Path) -> list[dict[str, str]]:
    try:
        data: Any = json.loads((sp / REGISTRY).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ShimError(
            f"{sp / REGISTRY}: unreadable ({exc}); delete it and install again"
        ) from None
    migrations = data.get("migrations") if isinstance(data, dict) else None
    return [m for m in migrations or [] if isinstance(m, dict) and "root" in m]


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check(env: Path) -> str:
    """The `outfs` package directory ENV's python imports; ShimError when there is none, so
    `migrate --now` can refuse before it writes or moves anything."""
    try:
        return _run(env, "import outfs.shim; print(outfs.__path__[0])").strip()
    except ShimError as exc:
        raise ShimError(
            f"outfs is not importable from {python_of(env)}, so its jobs cannot load the "
            f"shim ({str(exc).strip().splitlines()[-1]}); install outfs into {env} with "
            f"{env}/bin/pip install {_source()}"
        ) from None


def _source() -> str:
    """What to pip install: this checkout when outfs runs from one, else the package."""
    project = Path(__file__).resolve().parents[2]
    return str(project) if (project / "pyproject.toml").exists() else "outfs"


def _run(env: Path, code: str) -> str:
    # cwd=/ keeps a checkout in the cwd out, and PYTHONPATH belongs to the caller, not to
    # the environment: the question is what ENV's jobs see.
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    py = python_of(env)
    proc = subprocess.run(
        [str(py), "-c", code], capture_output=True, text=True, cwd="/", env=clean, check=False
    )
    if proc.returncode != 0:
        raise ShimError(f"{py} -c {code!r} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout
