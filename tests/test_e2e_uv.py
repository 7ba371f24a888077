"""`uv run` in a uv project keeps the shim: uv re-syncs the venv but leaves our `.pth` be."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, need_tool, run_outfs

from outfs.example import build_example

pytestmark = pytest.mark.slow

UV_SOURCES = f"""
[tool.uv.sources]
outfs = {{ path = "{REPO}", editable = true }}
"""

JOB = """
import hashlib, pathlib, sys
data = pathlib.Path(sys.argv[1]).read_bytes()
print(hashlib.sha256(data).hexdigest())
"""


def test_uv_run_job_reads_old_path_after_migration(tmp_path: Path) -> None:
    need_tool("uv", "uv (pip install uv)")
    project = build_example(tmp_path / "repo")
    # The example's [project] becomes a uv project that depends on outfs.
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace(
        'requires-python = ">=3.11"\n', 'requires-python = ">=3.11"\ndependencies = ["outfs"]\n', 1
    )
    pyproject.write_text(text + UV_SOURCES)
    (project / "job.py").write_text(JOB)
    env = {**os.environ, "UV_PYTHON": sys.executable}
    subprocess.run(["uv", "sync", "-q"], cwd=project, env=env, check=True, timeout=300)
    old = project / "out" / "v_hack_l18.safetensors"
    expected = hashlib.sha256(old.read_bytes()).hexdigest()

    run_outfs("migrate", "--now", cwd=project, check=True)
    assert not old.exists()
    # An exact re-sync removes what the lock file does not list: our .pth is no package.
    subprocess.run(["uv", "sync", "-q"], cwd=project, env=env, check=True, timeout=300)
    proc = subprocess.run(
        ["uv", "run", "python", "job.py", "out/v_hack_l18.safetensors"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected
    site = project / ".venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert list(site.glob("site-packages/outfs_shim.pth"))  # uv's sync left it in place
