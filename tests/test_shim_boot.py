"""Loading the shim: the .pth route, the PYTHONPATH route, idempotence, broken state, removal."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from shimenv import (
    PRELUDE,
    REPO,
    Project,
    ShimVenv,
    job_env,
    make_project,
    make_venv,
    migrate,
)

from outfs.shim import install

pytestmark = pytest.mark.slow


@pytest.fixture
def proj(tmp_path: Path, venv: ShimVenv) -> Iterator[Project]:
    project = make_project(tmp_path)
    yield project
    install.remove(venv.path, project.root)


OUTFS_MODULES = "sorted(m for m in sys.modules if m == 'outfs' or m.startswith('outfs.'))"


def test_job_fixed_before_install_picks_the_shim_up(
    tmp_path: Path, venv: ShimVenv, proj: Project
) -> None:
    # The job's command and environment are captured first, as a queue does at enqueue time.
    job = tmp_path / "job.sh"
    job.write_text(
        f"cd {proj.dir}\nexec {venv.python} -c 'import sys; "
        f'sys.stdout.buffer.write(open(sys.argv[1], "rb").read()[:8])\' "$@"\n'
    )
    captured = job_env()
    before = subprocess.run(
        ["sh", str(job), "out/weights.bin"], env=captured, capture_output=True, check=False
    )
    assert before.returncode == 0  # not migrated yet: the old path is real
    install.install(venv.path, proj.root, proj.state)
    migrate(proj)
    after = subprocess.run(
        ["sh", str(job), "out/weights.bin"], env=captured, capture_output=True, check=False
    )
    assert after.returncode == 0, after.stderr
    assert after.stdout == before.stdout == bytes(range(8))
    assert after.stderr == b""


def test_boot_is_idempotent(venv: ShimVenv, proj: Project) -> None:
    pth = install.install(venv.path, proj.root, proj.state)
    migrate(proj)
    code = f"""
import builtins, os, site, sys
import outfs.shim as shim
from outfs.shim import hooks
first = (builtins.open, os.stat, len(sys.meta_path))
exec(open({str(pth)!r}).read())  # the .pth line again, as a venv may run it (bpo-31545)
site.addsitedir({str(venv.site)!r})
shim.boot()
shim.boot({str(venv.site)!r})
report({{
    "same": (builtins.open, os.stat, len(sys.meta_path)) == first,
    "wrapped_once": not getattr(builtins.open.__wrapped__, "__outfs_shim__", False),
    "triggers": sum(f is hooks._trigger for f in sys.meta_path),
    "reads": open("out/weights.bin", "rb").read(4).hex(),
}})
"""
    assert venv.run_json(code, proj.dir) == {
        "same": True,
        "wrapped_once": True,
        "triggers": 1,
        "reads": "00010203",
    }


BROKEN = """
import sys
def read_old():
    return open("out/weights.bin", "rb").read(2).hex()
report({
    "first": read_old,
    "again": read_old,
    "listing": lambda: os.listdir("out/probe_distill"),
    "kept": lambda: open("out/untouched.txt").read(),
    "outside": lambda: open(sys.argv[1] + "/v_hack_a.safetensors").read()[:7],
})
"""


@pytest.mark.parametrize("damage", ["truncated", "missing", "not-json-object"])
def test_broken_table_warns_once_and_lets_calls_through(
    venv: ShimVenv, proj: Project, damage: str
) -> None:
    install.install(venv.path, proj.root, proj.state)
    migrate(proj)
    table = proj.state / "aliases.json"
    if damage == "truncated":
        table.write_text(table.read_text()[:100])
    elif damage == "missing":
        table.unlink()
    else:
        table.write_text("[1, 2]")
    proc = venv.run(PRELUDE + BROKEN, proj.dir, str(proj.outside))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["first"].startswith("error: FileNotFoundError")  # passed through unchanged
    assert got["again"] == got["first"]
    assert got["listing"].startswith("error: FileNotFoundError")
    assert got["kept"] == "an unmapped file stays put\n"
    assert got["outside"] == "outside"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("outfs: ") and "alias table" in lines[0]


def test_broken_registry_warns_once(venv: ShimVenv, proj: Project) -> None:
    install.install(venv.path, proj.root, proj.state)
    (venv.site / "outfs_shim.json").write_text('{"migrations": [{"root": "/x", ')
    proc = venv.run("print(open(__file__).read()[:6])", proj.dir)
    assert proc.returncode == 0
    assert proc.stdout == "print(\n"
    assert proc.stderr.count("outfs: ") == 1 and "outfs_shim.json" in proc.stderr


def test_dormant_and_removed_leave_no_trace(tmp_path: Path, proj: Project) -> None:
    # Its own venv without system site-packages: a shim installed into the system
    # interpreter (by anything else on this machine) must not blur what remove() leaves.
    venv = make_venv(tmp_path / "own", system_site=False, with_outfs=True)
    code = f"import builtins, sys; print(builtins.open is open and {OUTFS_MODULES})"
    install.install(venv.path, proj.root, proj.state)
    migrate(proj)
    assert install.installed(venv.path) == [{"root": str(proj.root), "state": str(proj.state)}]
    active = venv.run(code + "; print(open('out/weights.bin', 'rb').read(1))", proj.dir)
    assert "'outfs.shim'" in active.stdout and "b'\\x00'" in active.stdout
    removed = install.remove(venv.path, proj.root)
    assert sorted(p.name for p in removed) == ["outfs_shim.json", "outfs_shim.pth"]
    assert not list(venv.site.glob("outfs_shim*"))
    assert install.installed(venv.path) == []
    after = venv.run(code, proj.dir)
    assert after.returncode == 0 and after.stdout == "[]\n" and after.stderr == ""


def test_remove_keeps_other_migrations(tmp_path: Path, venv: ShimVenv, proj: Project) -> None:
    other = make_project(tmp_path / "other")
    install.install(venv.path, proj.root, proj.state)
    install.install(venv.path, other.root, other.state)
    install.install(venv.path, other.root, other.state)  # again: registered once
    assert [m["root"] for m in install.installed(venv.path)] == [str(proj.root), str(other.root)]
    assert install.remove(venv.path, other.root) == []
    assert [m["root"] for m in install.installed(venv.path)] == [str(proj.root)]


def test_pythonpath_route_and_chained_sitecustomize(
    tmp_path: Path, venv: ShimVenv, proj: Project
) -> None:
    install.install(venv.path, proj.root, proj.state)
    migrate(proj)
    (venv.site / "outfs_shim.pth").unlink()  # only the registry: no .pth route
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import builtins; builtins.THEIRS = 'ran'\n")
    env = {**job_env(), "PYTHONPATH": f"{REPO}{os.pathsep}{theirs}"}
    code = "import builtins; print(open('out/weights.bin', 'rb').read(2).hex(), builtins.THEIRS)"
    proc = venv.run(code, proj.dir, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "0001 ran\n"


def test_install_refuses_an_env_without_outfs(tmp_path: Path, proj: Project) -> None:
    bare = make_venv(tmp_path / "bare", system_site=False, with_outfs=False)
    with pytest.raises(install.ShimError, match=r"install outfs into .*bare.*/bin/pip install"):
        install.install(bare.path, proj.root, proj.state)
    assert not list(bare.site.glob("outfs_shim*"))


def test_pth_is_silent_once_outfs_is_uninstalled(tmp_path: Path, proj: Project) -> None:
    env = make_venv(tmp_path / "env", system_site=False, with_outfs=True)
    install.install(env.path, proj.root, proj.state)
    (env.site / "_outfs_src.pth").unlink()  # `pip uninstall outfs`
    proc = env.run("print('job ran')", tmp_path)
    assert proc.returncode == 0 and proc.stdout == "job ran\n" and proc.stderr == ""
    assert install.site_packages(env.path) == env.site


def test_startup_imports_only_the_shim(tmp_path: Path, proj: Project) -> None:
    """Budgets (dormant +1 ms, active +5 ms) hold only if start-up imports nothing heavy:
    no json (it pulls in re), no typing, no wrapt. See benchmarks/bench_startup.py."""
    lean = make_venv(tmp_path / "lean", system_site=False, with_outfs=True)
    code = "import sys; print(' '.join(sorted(sys.modules)))"
    baseline = set(lean.run(code, tmp_path).stdout.split())
    install.install(lean.path, proj.root, proj.state)
    (lean.site / "outfs_shim.json").write_text('{"migrations": []}\n')
    dormant = set(lean.run(code, proj.dir).stdout.split())
    assert dormant == baseline
    install.install(lean.path, proj.root, proj.state)
    migrate(proj)
    active = set(lean.run(code, proj.dir).stdout.split())
    shim = {"outfs", "outfs.shim", "outfs.shim.paths", "outfs.shim.patches", "outfs.shim.hooks"}
    assert shim <= active
    extra = sorted(active - baseline - shim - {"_json", "__future__"})
    assert not extra, f"imported at every job start-up (outfs/__init__.py?): {extra}"


def test_registries_of_two_site_dirs_both_count(
    tmp_path: Path, venv: ShimVenv, proj: Project
) -> None:
    """A venv with system site-packages may hold a registry in each site directory."""
    install.install(venv.path, proj.root, proj.state)
    migrate(proj)
    other = make_project(tmp_path / "other")
    migrate(other)
    second = tmp_path / "second-site"
    second.mkdir()
    entry = {"root": str(other.root), "state": str(other.state)}
    (second / "outfs_shim.json").write_text(json.dumps({"migrations": [entry]}))
    code = f"""
import outfs.shim
outfs.shim.boot({str(second)!r})  # what the second directory's .pth does
report({{
    "first": open("out/weights.bin", "rb").read(2).hex(),
    "second": open({str(other.root)!r} + "/weights.bin", "rb").read(2).hex(),
}})
"""
    assert venv.run_json(code, proj.dir) == {"first": "0001", "second": "0001"}
