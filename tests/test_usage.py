"""Which aliases are in use: named by a queued job's command (or a path below a moved dir)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import run_outfs
from shimenv import ShimVenv, job_env

from outfs.config import load_config
from outfs.errors import OutfsError
from outfs.finish import finish
from outfs.queues import Job
from outfs.shim import install
from outfs.usage import usage_report


def job(command: str, cwd: Path | None) -> Job:
    return Job("tsp", "4", "queued", command, str(cwd) if cwd else None)


def refs(project: Path, *jobs: Job) -> dict[str, list[str]]:
    config = dataclasses.replace(load_config(project), queue="none")
    return {
        config.shown(u.alias.legacy): u.referenced_by
        for u in usage_report(config, jobs=jobs).uses
        if u.in_use
    }


def test_job_arguments_mark_aliases_in_use(example: Path) -> None:
    run_outfs("migrate", "--now", cwd=example, check=True)
    assert refs(example) == {}
    found = refs(
        example,
        job("python train.py --v-hack-path=out/v_hack_l18.safetensors", example),
        Job(
            "tsp",
            "5",
            "running",
            "python d.py --teacher-pool-dir=out/probe_distill/teacher_pool/part.jsonl",
            str(example),
        ),
    )
    assert found == {
        "out/v_hack_l18.safetensors": ["tsp:4"],
        "out/probe_distill/teacher_pool": ["tsp:5"],
    }


def test_globs_absolute_paths_and_other_directories(example: Path) -> None:
    run_outfs("migrate", "--now", cwd=example, check=True)
    by_glob = refs(example, job("python eval.py out/v_hack_*.safetensors", example))
    assert len(by_glob) == 6 and all(r == ["tsp:4"] for r in by_glob.values())
    absolute = refs(example, job(f"cat {example}/out/vhack_grads_l18.safetensors", Path("/")))
    assert list(absolute) == ["out/vhack_grads_l18.safetensors"]
    inline = refs(
        example, job("""python -c "open('out/v_hack_l18.safetensors').read()" """, example)
    )
    assert list(inline) == ["out/v_hack_l18.safetensors"]
    elsewhere = refs(example, job("cat out/v_hack_l18.safetensors", example / "logs"))
    assert elsewhere == {}  # relative to that job's own directory: another out/


def test_unused_json_lists_every_alias_after_the_queue_drains(example: Path) -> None:
    run_outfs("migrate", "--now", cwd=example, check=True)
    proc = run_outfs("aliases", "--unused", "--json", cwd=example, check=True)

    rows = json.loads(proc.stdout)
    assert len(rows) == 31
    row = next(r for r in rows if r["legacy"] == "out/v_hack_l18.safetensors")
    assert row == {
        "legacy": "out/v_hack_l18.safetensors",
        "target": "out/vhack/v_hack_l18.safetensors",
        "kind": "file",
        "hits": 0,
        "last_hit": None,
        "in_use": False,
        "referenced_by": [],
    }
    assert json.loads(run_outfs("aliases", "--used", "--json", cwd=example).stdout) == []


def test_status_follows_the_phases(example: Path) -> None:
    def phase() -> dict:
        return json.loads(run_outfs("status", "--json", cwd=example, check=True).stdout)

    assert phase()["phase"] == "not-migrated"
    run_outfs("migrate", "--now", cwd=example, check=True)
    state = phase()
    assert state["phase"] == "finished"  # envs = []: nothing needed a shim
    assert state["aliases"] == 31 and state["deferred_moves"] == 0


def test_finish_waits_for_a_live_process_that_resolved_an_alias(
    example: Path, venv: ShimVenv
) -> None:
    """A running job that read an old path holds `finish` back; `--wait` outlasts it."""
    pyproject = example / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("envs = []", f'envs = ["{venv.path}"]'))
    config = dataclasses.replace(load_config(example), queue="none")
    run_outfs("migrate", "--now", cwd=example, check=True)
    job = subprocess.Popen(
        [
            str(venv.python),
            "-c",
            "import sys, time; open('out/v_hack_l18.safetensors', 'rb').read();"
            "print('read', flush=True); sys.stdin.readline()",
        ],
        cwd=example,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=job_env(),
    )
    try:
        assert job.stdout is not None and job.stdout.readline().strip() == "read"
        with pytest.raises(OutfsError, match=f"pid:{job.pid}"):
            finish(config)
        waited: list[int] = []

        def on_wait(report: object) -> None:
            waited.append(1)
            if job.poll() is None:
                job.communicate("done\n")  # the job ends while finish waits

        result = finish(config, wait=True, poll=0.05, on_wait=on_wait)
    finally:
        job.kill()
    assert waited and [str(e) for e in result.envs] == [str(venv.path)]
    assert str(example / "out") not in [e["root"] for e in install.installed(venv.path)]


def test_a_shim_installed_by_hand_is_removed_by_finish(example: Path, venv: ShimVenv) -> None:
    run_outfs("migrate", "--now", cwd=example, check=True)
    run_outfs("shim", "install", "--env", str(venv.path), cwd=example, check=True)
    shim = run_outfs("shim", "status", "--env", str(venv.path), "--json", cwd=example)
    served = json.loads(shim.stdout)[0]
    assert served["env"] == str(venv.path)
    assert str(example / "out") in [m["root"] for m in served["migrations"]]
    state = json.loads(run_outfs("status", "--json", cwd=example, check=True).stdout)
    assert state["phase"] == "active" and state["envs"] == [str(venv.path)]
    run_outfs("finish", "--force", cwd=example, check=True)
    assert str(example / "out") not in [e["root"] for e in install.installed(venv.path)]


def test_finish_refuses_when_a_queue_cannot_be_asked(example: Path, tmp_path: Path) -> None:
    """A pueue whose daemon is down may still hold jobs naming old paths."""
    fake = tmp_path / "bin" / "pueue"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Error: Failed to connect to the daemon.' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    run_outfs("migrate", "--now", cwd=example, check=True)
    proc = run_outfs("finish", cwd=example, env=env)
    assert proc.returncode == 1
    assert "pueue could not be asked" in proc.stderr and "--force" in proc.stderr
    assert run_outfs("finish", "--force", cwd=example, env=env).returncode == 0
