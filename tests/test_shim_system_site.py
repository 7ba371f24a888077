"""A job venv that sees outfs only through the system site-packages still gets the shim.

A venv's own `.pth` files run before the system site-packages join `sys.path`, so at that
moment `import outfs` fails; the `.pth` loads outfs from where `install` found it instead.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_outfs

from outfs.example import build_example

pytestmark = pytest.mark.slow


def test_outfs_from_system_site_packages_only(tmp_path: Path) -> None:
    project = build_example(tmp_path / "repo")
    venv = project / ".venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import outfs, sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    ).stdout
    assert where.strip() == str(venv)  # the venv, whose own site-packages hold no outfs
    old = project / "out" / "v_hack_l18.safetensors"
    expected = hashlib.sha256(old.read_bytes()).hexdigest()

    run_outfs("migrate", "--now", cwd=project, check=True)
    job = (
        "import hashlib; print(hashlib.sha256("
        "open('out/v_hack_l18.safetensors', 'rb').read()).hexdigest())"
    )
    proc = subprocess.run(
        [str(python), "-c", job], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected
    assert "outfs:" not in proc.stderr
