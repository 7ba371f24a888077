"""`outfs demo`: the whole story on the built-in example, in a throwaway directory.

plan → an old job "queued" with old paths → migrate --now (the shim goes into the demo's
own job venv) → the old job runs and reads its bytes through the old paths → verify → the
tree → a second migrate that has nothing to do. Nothing outside the directory is touched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import venv
from pathlib import Path

from rich.console import Console
from rich.tree import Tree

from .config import Config, load_config
from .console import esc, migrate_with_progress, report_migration, show_plan
from .example import build_example
from .migrate import current_plan, verify

OLD_JOB = """\
import hashlib, os, sys
from pathlib import Path
vhack = Path("out/v_hack_l18.safetensors").read_bytes()
pool = sorted(os.listdir("out/probe_distill/teacher_pool"))
print(hashlib.sha256(vhack).hexdigest(), len(pool))
Path("out/v_hack_demo-new.safetensors").write_bytes(vhack)  # a new file at an old path
"""


def run_demo(console: Console, directory: Path) -> bool:
    """Build the example in `directory` and walk through a migration; True when verified."""
    project = build_example(directory)
    job_env = _job_env(project / ".venv")
    config = dataclasses.replace(load_config(project), envs=(job_env,))
    console.rule(f"[bold]outfs plan[/]  (example repo in {project})")
    show_plan(current_plan(config), as_json=False)

    expected = hashlib.sha256((config.root / "v_hack_l18.safetensors").read_bytes()).hexdigest()
    console.rule("[bold]outfs migrate --now[/]  (an old job waits with old paths)")
    report_migration(config, migrate_with_progress(config, quiet=False))

    console.rule("[bold]the old job runs[/]  (it only knows the old paths)")
    ok = _run_old_job(console, config, job_env, expected)

    console.rule("[bold]outfs verify")
    report = verify(config)
    for problem in report.problems:
        console.print(f"[red]✗[/] {esc(problem)}")
    if report.ok:
        console.print(
            f"[green]✓[/] {report.aliases} aliases, every target present, only "
            f"{report.unmapped} unmapped entries left at the top of out/"
        )
    console.print(_tree(config))
    console.rule("[bold]outfs migrate --now[/]  (again: idempotent)")
    report_migration(config, migrate_with_progress(config, quiet=True))
    return ok and report.ok


def _job_env(path: Path) -> Path:
    """A venv for the demo's job that imports this very outfs (no download, no pip)."""
    venv.EnvBuilder(with_pip=False).create(path)
    purelib = subprocess.run(
        [
            str(path / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    here = Path(__file__).resolve().parent.parent
    Path(purelib, "_outfs_demo.pth").write_text(f"{here}\n")
    return path


def _run_old_job(console: Console, config: Config, job_env: Path, expected: str) -> bool:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(job_env / "bin" / "python"), "-c", OLD_JOB],
        cwd=config.project,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        console.print(f"[red]✗ the old job failed:[/]\n{esc(proc.stderr)}")
        return False
    digest, pool_files = proc.stdout.split()
    same = digest == expected
    mark = "[green]✓[/]" if same else "[red]✗[/]"
    console.print(
        f"{mark} read out/v_hack_l18.safetensors (now out/vhack/): sha256 "
        f"{digest[:16]}… {'unchanged' if same else 'DIFFERENT'}"
    )
    console.print(
        f"[green]✓[/] listed out/probe_distill/teacher_pool (now out/pools/): {pool_files} files"
    )
    landed = config.root / "vhack" / "v_hack_demo-new.safetensors"
    console.print(
        f"{'[green]✓[/]' if landed.exists() else '[red]✗[/]'} wrote "
        "out/v_hack_demo-new.safetensors: it landed in out/vhack/ by the rule"
    )
    return same and landed.exists()


def _tree(config: Config) -> Tree:
    tree = Tree(f"[bold]{config.root_shown}/")
    for entry in sorted(config.root.iterdir()):
        if entry.name == ".outfs":
            continue
        if entry.is_dir():
            children = sorted(entry.iterdir())
            branch = tree.add(f"[blue]{entry.name}/[/] ({len(children)})")
            for child in children[:3]:
                branch.add(child.name + ("/" if child.is_dir() else ""))
            if len(children) > 3:
                branch.add(f"[dim]… {len(children) - 3} more[/]")
        else:
            tree.add(f"[yellow]{entry.name}[/] (unmapped)")
    return tree
