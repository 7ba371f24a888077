"""A real venv and a migrated project for the shim's tests.

The venv is made once per test session (`python -m venv --system-site-packages`: quick, and
its jobs see numpy, safetensors, fsspec and torch). outfs becomes importable in it the way an
installed package is: a directory holding only the `outfs` package, named by a `.pth` file,
so the repo's top-level `sitecustomize.py` is not on the job's path. Jobs are real
subprocesses of that venv's python; tests assert what a user sees.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from outfs.shim import install

REPO = Path(__file__).resolve().parent.parent

_VENV: ShimVenv | None = None


@dataclass
class ShimVenv:
    path: Path
    python: Path
    site: Path

    def run(
        self,
        code: str,
        cwd: Path,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run `code` as a script file in this venv, as a queued job would."""
        script = Path(tempfile.mkdtemp(prefix="job-")) / "job.py"
        script.write_text(code)
        return subprocess.run(
            [str(self.python), str(script), *args],
            cwd=cwd,
            env=env if env is not None else job_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run_json(self, code: str, cwd: Path, *args: str, **kw: object) -> dict:  # type: ignore[type-arg]
        """Run PRELUDE + `code`, a job that calls `report` last; fail with its stderr."""
        proc = self.run(PRELUDE + code, cwd, *args, **kw)  # type: ignore[arg-type]
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])


def job_env() -> dict[str, str]:
    """The caller's environment without what pytest or the caller add to Python's path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def shim_venv() -> ShimVenv:
    """The session's venv, made on first use and deleted at exit."""
    global _VENV
    if _VENV is None:
        base = Path(tempfile.mkdtemp(prefix="outfs-shim-venv-"))
        atexit.register(shutil.rmtree, base, True)
        _VENV = make_venv(base / "venv", system_site=True, with_outfs=True)
    return _VENV


def make_venv(path: Path, *, system_site: bool, with_outfs: bool) -> ShimVenv:
    cmd = [sys.executable, "-m", "venv", "--without-pip", str(path)]
    if system_site:
        cmd.insert(4, "--system-site-packages")
    subprocess.run(cmd, check=True)
    python = path / "bin" / "python"
    site = install.site_packages(path)
    if with_outfs:
        src = path / "outfs-src"
        src.mkdir()
        (src / "outfs").symlink_to(REPO / "outfs")
        (site / "_outfs_src.pth").write_text(f"{src}\n")
    return ShimVenv(path, python, site)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


RULES = [
    {"match": "v_hack_{name}.safetensors", "to": "vhack/v_hack_{name}.safetensors", "lookup": None},
    {"match": "probe_distill/{pool}", "to": "pools/{pool}", "lookup": None},
    {
        "match": "train_{run}.safetensors",
        "to": "runs/{ts}_{run}/train.safetensors",
        "lookup": "logs/{ts:[0-9]{8}_[0-9]{6}}_*_{run}.log",
    },
    {"match": "ckpt_{e}.pt", "to": "ckpts/ckpt_{e}.pt", "lookup": None},
    {"match": "{name}.npy", "to": "arrays/{name}.npy", "lookup": None},
    {"match": "{name}.bin", "to": "bins/{name}.bin", "lookup": None},
]

# The old layout: legacy path → content (bytes) for files; "dir" entries are listed below.
OLD_FILES = {
    "v_hack_a.safetensors": b"",  # real safetensors, written by `make_project`
    "v_hack_b.safetensors": b"",
    "probe_distill/poolA/s0.jsonl": b'{"s": 0}\n' * 50,
    "probe_distill/poolA/s1.jsonl": b'{"s": 1}\n' * 70,
    "probe_distill/poolA/sub/deep.txt": b"deep below a moved directory\n",
    "probe_distill/poolB/s0.jsonl": b'{"b": 0}\n',
    "weights.bin": bytes(range(256)) * 40,
    "untouched.txt": b"an unmapped file stays put\n",
}
MOVES = {
    "v_hack_a.safetensors": ("vhack/v_hack_a.safetensors", "file"),
    "v_hack_b.safetensors": ("vhack/v_hack_b.safetensors", "file"),
    "probe_distill/poolA": ("pools/poolA", "dir"),
    "probe_distill/poolB": ("pools/poolB", "dir"),
    "weights.bin": ("bins/weights.bin", "file"),
}


@dataclass
class Project:
    """A project whose `out/` was migrated by hand the way `migrate --now` does it."""

    dir: Path
    root: Path
    state: Path
    outside: Path
    hashes: dict[str, str] = field(default_factory=dict)  # legacy file → sha256 before moving
    extra_moves: dict[str, tuple[str, str]] = field(default_factory=dict)

    def target(self, legacy: str) -> Path:
        for old, (new, _) in {**MOVES, **self.extra_moves}.items():
            if legacy == old or legacy.startswith(old + "/"):
                return self.root / (new + legacy[len(old) :])
        return self.root / legacy


def make_project(base: Path, extra: dict[str, bytes] | None = None) -> Project:
    """The old layout, with real safetensors files; not migrated yet."""
    import numpy as np
    from safetensors.numpy import save_file

    project = base / "proj"
    root = project / "out"
    outside = base / "elsewhere"
    for rel, data in {**OLD_FILES, **(extra or {})}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.startswith("v_hack_"):
            seed = sum(rel.encode())
            save_file({"v": np.arange(seed, seed + 64, dtype=np.float32)}, str(path))
        else:
            path.write_bytes(data)
    (project / "logs").mkdir(parents=True)
    (project / "logs" / "20240101_120000_lr3_run7.log").write_text("a training log\n")
    outside.mkdir()
    (outside / "v_hack_a.safetensors").write_bytes(b"outside the root: never redirected\n")
    hashes = {str(p.relative_to(root)): sha(p) for p in root.rglob("*") if p.is_file()}
    return Project(project, root, root / ".outfs", outside, hashes)


def migrate(project: Project, extra_moves: dict[str, tuple[str, str]] | None = None) -> None:
    """Move the old layout into the new one and write the alias table (design.md format)."""
    moves = {**MOVES, **(extra_moves or {})}
    project.extra_moves = dict(extra_moves or {})
    write_table(project, moves)
    for legacy, (target, _) in moves.items():
        dst = project.root / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(project.root / legacy, dst)
    (project.root / "probe_distill").rmdir()


def write_table(project: Project, moves: dict[str, tuple[str, str]]) -> None:
    project.state.mkdir(parents=True, exist_ok=True)
    table = {
        "version": 1,
        "root": str(project.root),
        "project": "..",
        "rules": RULES,
        "aliases": [
            {"legacy": legacy, "target": target, "kind": kind}
            for legacy, (target, kind) in sorted(moves.items())
        ],
    }
    (project.state / "aliases.json").write_text(json.dumps(table, indent=1))


# A prelude for job scripts: runs `checks` (name → zero-argument callable) and prints one JSON
# object mapping each name to its value, or to "error: <type>: <message>".
PRELUDE = """
import hashlib, json, os, sys

def sha(data):
    return hashlib.sha256(data).hexdigest()

def report(checks):
    out = {}
    for name, check in checks.items():
        try:
            out[name] = check() if callable(check) else check
        except Exception as exc:
            out[name] = f"error: {type(exc).__name__}: {exc}"
    print(json.dumps(out, default=str))
"""


@contextlib.contextmanager
def shimmed_project(
    base: Path,
    venv: ShimVenv,
    extra: dict[str, bytes] | None = None,
    extra_moves: dict[str, tuple[str, str]] | None = None,
) -> Iterator[Project]:
    """A migrated project whose root the shim serves in `venv`, unregistered afterwards."""
    project = make_project(base, extra=extra)
    install.install(venv.path, project.root, project.state)
    migrate(project, extra_moves)
    try:
        yield project
    finally:
        install.remove(venv.path, project.root)
