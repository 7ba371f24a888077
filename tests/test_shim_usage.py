"""Usage records (`<state>/usage/`) and the merged alias table (`aliases.json` + `added/`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from shimenv import Project, ShimVenv, job_env, make_project, migrate

from outfs.shim import install
from outfs.shim.table import read_table
from outfs.shim.usage import read_usage

pytestmark = pytest.mark.slow


HITS = """
for _ in range(3):
    open("out/v_hack_a.safetensors", "rb").read()
    os.listdir("out/probe_distill/poolA")
    open("out/probe_distill/poolA/s1.jsonl").read()
open("out/untouched.txt").read()  # not an alias: no hit
report({"pid": os.getpid()})
"""


def test_first_hit_per_alias_and_exit_are_recorded(venv: ShimVenv, proj: Project) -> None:
    got = venv.run_json(HITS, proj.dir, "--flag")
    [proc] = read_usage(proj.state)
    assert proc.pid == got["pid"]
    assert proc.argv[1:] == ["--flag"]
    assert set(proc.hits) == {"v_hack_a.safetensors", "probe_distill/poolA"}
    assert proc.alive is False and proc.exited
    lines = [json.loads(x) for x in Path(proc.path).read_text().splitlines()]
    assert lines[0]["pid"] == got["pid"] and lines[0]["start_ticks"] > 0
    assert [sorted(x) for x in lines[1:]] == [["legacy", "t"], ["legacy", "t"], ["exit"]]


GATED = """
import sys, time
open("out/weights.bin", "rb").read()
open(sys.argv[1], "w").close()  # tell the test the hit is recorded
while True:
    time.sleep(0.05)
"""


def test_live_then_killed_process(tmp_path: Path, venv: ShimVenv, proj: Project) -> None:
    ready = tmp_path / "ready"
    script = tmp_path / "gated.py"
    script.write_text(GATED)
    job = subprocess.Popen([str(venv.python), str(script), str(ready)], cwd=proj.dir, env=job_env())
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        [live] = read_usage(proj.state)
        assert live.pid == job.pid and live.alive is True
        assert list(live.hits) == ["weights.bin"]
    finally:
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
    [dead] = read_usage(proj.state)
    assert dead.alive is False and dead.exited is None  # killed: no exit line, pid gone


def test_no_alias_used_no_usage_file(venv: ShimVenv, proj: Project) -> None:
    venv.run_json('report({"x": open("out/untouched.txt").read()})', proj.dir)
    assert read_usage(proj.state) == []


FORK = """
open("out/v_hack_a.safetensors", "rb").read()
pid = os.fork()
if pid == 0:
    open("out/v_hack_a.safetensors", "rb").read()
    os._exit(0)
os.waitpid(pid, 0)
report({"child": pid})
"""


def test_forked_child_records_its_own_usage(venv: ShimVenv, proj: Project) -> None:
    got = venv.run_json(FORK, proj.dir)
    procs = {p.pid: p for p in read_usage(proj.state)}
    assert got["child"] in procs and len(procs) == 2
    assert set(procs[got["child"]].hits) == {"v_hack_a.safetensors"}


WRITE_NEW = """
open("out/v_hack_c.safetensors", "wb").write(b"c")
open("out/train_run7.safetensors", "wb").write(b"t")
report({"pid": os.getpid()})
"""


def test_read_table_merges_added_aliases(venv: ShimVenv, proj: Project) -> None:
    venv.run_json(WRITE_NEW, proj.dir)
    [added] = list((proj.state / "added").glob("*.jsonl"))
    with added.open("a") as fh:  # a killed writer's torn line, and a duplicate
        fh.write('{"legacy": "v_hack_c.safetensors", "target": "elsewhere", "kind": "file"}\n')
        fh.write('{"legacy": "torn')
    header, aliases = read_table(proj.state)
    assert header["project"] == ".." and len(header["rules"]) == 6 and "aliases" not in header
    by_legacy = {a["legacy"]: a["target"] for a in aliases}
    assert len(by_legacy) == len(aliases) == 7
    assert by_legacy["v_hack_c.safetensors"] == "vhack/v_hack_c.safetensors"
    assert by_legacy["train_run7.safetensors"] == "runs/20240101_120000_run7/train.safetensors"


RUNNING = """
import json, os, sys, time
ready, gate = sys.argv[1], sys.argv[2]
first = open("out/weights.bin", "rb").read(2).hex()  # before the migration: the real file
open(ready, "w").close()
while not os.path.exists(gate):
    time.sleep(0.05)
print(json.dumps({
    "first": first,
    "moved": open("out/weights.bin", "rb").read(2).hex(),
    "pool": sorted(os.listdir("out/probe_distill/poolA")),
    "placed_by_other": open("out/v_hack_c.safetensors", "rb").read().decode(),
}))
"""


def test_running_job_follows_a_migration_and_other_jobs(tmp_path: Path, venv: ShimVenv) -> None:
    """Installed, then migrated while a job runs; another job places a new file meanwhile."""
    project = make_project(tmp_path)
    install.install(venv.path, project.root, project.state)
    ready, gate = tmp_path / "ready", tmp_path / "gate"
    script = tmp_path / "running.py"
    script.write_text(RUNNING)
    job = subprocess.Popen(
        [str(venv.python), str(script), str(ready), str(gate)],
        cwd=project.dir, env=job_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        migrate(project)
        venv.run_json('open("out/v_hack_c.safetensors", "w").write("c"); report({})', project.dir)
        time.sleep(1.2)  # a running job looks for a newer table at most once a second
        gate.touch()
        out, err = job.communicate(timeout=60)
    finally:
        install.remove(venv.path, project.root)
    assert job.returncode == 0, err
    assert json.loads(out) == {
        "first": "0001",
        "moved": "0001",
        "pool": ["s0.jsonl", "s1.jsonl", "sub"],
        "placed_by_other": "c",
    }
    assert err.count("outfs: ") == 1  # the table did not exist yet at its first old path
