"""Helpers shared by the tests: run the CLI as a user does, digest a tree."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def no_envs(project: Path) -> Path:
    """Make the example's config install the shim nowhere (data-side tests)."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('root = "out"', 'root = "out"\nenvs = []', 1))
    return project


def tree_digest(root: Path) -> dict[str, str]:
    """Every file below root (state dir excluded) → sha256; directories → 'dir'."""
    found: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".outfs"]
        for name in dirs:
            found[os.path.relpath(os.path.join(dirpath, name), root)] = "dir"
        for name in files:
            path = os.path.join(dirpath, name)
            found[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return found


def run_outfs(
    *args: str, cwd: Path, check: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: a real subprocess."""
    env = {**(env or os.environ), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "outfs", *args],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"outfs {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def need_tool(binary: str, what: str) -> None:
    """Skip when `binary` is missing on a developer's machine; fail in CI, which installs it."""
    import shutil

    import pytest

    if shutil.which(binary):
        return
    if os.environ.get("OUTFS_REQUIRE_TOOLS"):
        pytest.fail(f"{what} is required here but `{binary}` is not on PATH")
    pytest.skip(f"needs {what}")
