"""The whole story on a real queue: jobs queued with old paths survive `migrate --now`.

task-spooler from Debian runs a private queue (`TS_SOCKET` in a temp dir, one slot). A
"gate" job holds the slot so every other job stays queued, with its command line and its
environment captured by `tsp` before the migration. Then `outfs migrate --now` moves the
data and installs the shim into the project's `.venv`, the gate opens, and every old-code
job must exit 0, read exactly the bytes it would have read before, and write its new
outputs into the new scheme. Afterwards the aliases are unused and `finish` leaves no trace.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, need_tool, run_outfs

from outfs.example import build_example

pytestmark = pytest.mark.slow

# Old job code: it knows nothing of outfs and names old paths only.
JOBS = {
    "read_vhack.py": """
import hashlib, sys
from safetensors.numpy import load_file
path = sys.argv[1].split("=", 1)[1]
tensors = load_file(path)
with open(path, "rb") as fh:
    print(hashlib.sha256(fh.read()).hexdigest(), sorted(tensors))
""",
    "read_pool.py": """
import hashlib, os, sys
pool = sys.argv[1].split("=", 1)[1]
digest = hashlib.sha256()
for name in sorted(os.listdir(pool)):
    with open(os.path.join(pool, name), "rb") as fh:
        digest.update(name.encode() + fh.read())
print(digest.hexdigest())
""",
    "fsspec_read.py": """
import hashlib, sys
import fsspec
with fsspec.open(sys.argv[1], "rb") as fh:
    print(hashlib.sha256(fh.read()).hexdigest())
""",
    "train.py": """
import sys
import numpy as np
from safetensors.numpy import save_file
run = sys.argv[1]
with open(f"logs/20261204_150000_qwen3-8b_{run}.log", "w") as log:
    log.write("step 1 loss 0.5\\n")
save_file({"w": np.arange(6, dtype=np.float32)}, f"out/train_{run}.safetensors")
print("saved")
""",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pool_digest(pool: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(os.listdir(pool)):
        digest.update(name.encode() + (pool / name).read_bytes())
    return digest.hexdigest()


class TspQueue:
    def __init__(self, socket: Path, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, {**env, "TS_SOCKET": str(socket)}

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            ["tsp", *args],
            cwd=self.cwd,
            env=self.env,
            text=True,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout

    def add(self, command: str) -> str:
        return self("sh", "-c", command).strip()

    def output(self, job: str) -> str:
        return Path(self("-o", job).strip()).read_text()

    def exit_code(self, job: str) -> int | None:
        for line in self("-l").splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == job:
                return int(fields[3]) if fields[1] == "finished" else None
        raise AssertionError(f"job {job} not in the queue")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = build_example(tmp_path / "repo")
    # The queue this test runs; "auto" would also ask any Slurm client installed here.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('queue = "auto"', 'queue = "tsp"'))
    # The job environment: a real venv with outfs installed, that also sees the ML libraries.
    venv = project / ".venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
        check=True,
        timeout=120,
    )
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "-e",
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    jobs = project / "jobs"
    jobs.mkdir()
    for name, code in JOBS.items():
        (jobs / name).write_text(code)
    return project


def test_queued_jobs_keep_working_through_migrate_now(project: Path, tmp_path: Path) -> None:
    need_tool("tsp", "task-spooler (apt-get install task-spooler)")
    out = project / "out"
    expected = {
        "vhack": sha256(out / "v_hack_l18.safetensors"),
        "pool": pool_digest(out / "probe_distill" / "teacher_pool"),
        "grads": sha256(out / "vhack_grads_l18.safetensors"),
    }
    venv_bin = project / ".venv" / "bin"
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    queue = TspQueue(tmp_path / "ts.sock", project, env)
    queue("-S", "1")
    queue.add("while [ ! -e gate ]; do sleep 0.1; done")
    try:
        jobs = {
            "vhack": queue.add(
                "python jobs/read_vhack.py --v-hack-path=out/v_hack_l18.safetensors > results_vhack"
            ),
            "pool": queue.add(
                "python jobs/read_pool.py "
                "--teacher-pool-dir=out/probe_distill/teacher_pool > results_pool"
            ),
            "grads": queue.add(
                "python jobs/fsspec_read.py out/vhack_grads_l18.safetensors > results_grads"
            ),
            "train": queue.add("python jobs/train.py newrun > results_train"),
            "abs": queue.add(
                f"python jobs/read_vhack.py "
                f"--v-hack-path={out}/v_hack_l18.safetensors > results_abs"
            ),
        }
        referenced = json.loads(
            run_outfs("aliases", "--json", cwd=project, env=queue.env).stdout or "[]"
        )
        assert referenced == []  # nothing migrated yet

        proc = run_outfs("migrate", "--now", cwd=project, check=True, env=queue.env)
        assert "shim installed" in proc.stdout
        assert not (out / "v_hack_l18.safetensors").exists()
        # outfs itself, run from the job venv where the shim is now active, sees the real
        # layout (an old path that resolved would look like a stray copy to verify).
        verify = subprocess.run(
            [str(venv_bin / "python"), "-m", "outfs", "verify"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        used = json.loads(
            run_outfs("aliases", "--used", "--json", cwd=project, check=True, env=queue.env).stdout
        )
        refs = {a["legacy"]: a["referenced_by"] for a in used}
        assert f"tsp:{jobs['vhack']}" in refs["out/v_hack_l18.safetensors"]
        assert f"tsp:{jobs['pool']}" in refs["out/probe_distill/teacher_pool"]
        state = json.loads(
            run_outfs("status", "--json", cwd=project, check=True, env=queue.env).stdout
        )
        assert state["phase"] == "active" and f"tsp:{jobs['vhack']}" in state["queue_references"]
        refused = run_outfs("finish", cwd=project, env=queue.env)
        assert refused.returncode == 1 and "in use" in refused.stderr

        (project / "gate").touch()
        deadline = time.monotonic() + 240
        while any(queue.exit_code(j) is None for j in jobs.values()):
            assert time.monotonic() < deadline, queue("-l")
            time.sleep(0.2)
        failed = {name: queue.output(j) for name, j in jobs.items() if queue.exit_code(j) != 0}
        assert failed == {}
    finally:
        (project / "gate").touch()
        subprocess.run(["tsp", "-K"], env=queue.env, capture_output=True, timeout=30)

    assert (project / "results_vhack").read_text().split()[0] == expected["vhack"]
    assert (project / "results_abs").read_text().split()[0] == expected["vhack"]
    assert (project / "results_pool").read_text().strip() == expected["pool"]
    assert (project / "results_grads").read_text().strip() == expected["grads"]
    saved = out / "runs" / "20261204_150000_newrun" / "train.safetensors"
    assert saved.is_file()  # the new checkpoint landed in the new scheme
    assert not (out / "train_newrun.safetensors").exists()

    unused = json.loads(
        run_outfs("aliases", "--unused", "--json", cwd=project, check=True, env=queue.env).stdout
    )
    legacies = {a["legacy"] for a in unused}
    assert {
        "out/v_hack_l18.safetensors",
        "out/probe_distill/teacher_pool",
        "out/train_newrun.safetensors",
    } <= legacies
    hits = {a["legacy"]: a["hits"] for a in unused}
    assert hits["out/v_hack_l18.safetensors"] >= 2

    run_outfs("finish", cwd=project, check=True, env=queue.env)
    site = subprocess.run(
        [
            str(venv_bin / "python"),
            "-c",
            "import sys, sysconfig; print(sysconfig.get_paths()['purelib']);"
            "print(sorted(m for m in sys.modules if m.startswith('outfs')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert site[1] == "[]"
    assert not [p for p in os.listdir(site[0]) if p.startswith("outfs_shim")]


def test_migrate_when_idle_waits_for_the_queue_and_needs_no_shim(
    project: Path, tmp_path: Path
) -> None:
    need_tool("tsp", "task-spooler (apt-get install task-spooler)")
    out = project / "out"
    queue = TspQueue(tmp_path / "ts.sock", project, dict(os.environ))
    queue("-S", "1")
    queue.add("while [ ! -e gate ]; do sleep 0.1; done")
    job = queue.add("cat out/v_hack_l18.safetensors > /dev/null")
    waiter = subprocess.Popen(
        [sys.executable, "-m", "outfs", "migrate", "--when-idle", "--poll", "0.2"],
        cwd=project,
        env=queue.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)
        assert waiter.poll() is None  # still waiting: two jobs are pending
        assert (out / "v_hack_l18.safetensors").exists()
        (project / "gate").touch()
        _stdout, stderr = waiter.communicate(timeout=120)
        # The job read the old path before anything moved.
        assert queue.exit_code(job) == 0
    finally:
        (project / "gate").touch()
        waiter.kill()
        subprocess.run(["tsp", "-K"], env=queue.env, capture_output=True, timeout=30)
    assert waiter.returncode == 0, stderr
    assert "waiting: 2 jobs" in stderr
    assert (out / "vhack" / "v_hack_l18.safetensors").exists()
    assert not (out / "v_hack_l18.safetensors").exists()
    site = project / ".venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert not list(site.glob("site-packages/outfs_shim*"))  # an idle queue needs no shim


def test_slurm_jobs_held_before_the_migration_keep_working(
    project: Path, slurm_cluster: dict[str, str]
) -> None:
    """The same story on a real (private) Slurm cluster: jobs submitted held, with their
    environment exported at submission, run after `migrate --now` and read old paths."""
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('queue = "tsp"', 'queue = "slurm"'))
    out = project / "out"
    expected = sha256(out / "v_hack_l18.safetensors")
    env = {**slurm_cluster, "PATH": f"{project / '.venv' / 'bin'}:{slurm_cluster['PATH']}"}

    def sbatch(name: str, command: str) -> str:
        wrap = f"{command} > results_{name} && touch ok_{name}"
        return subprocess.run(
            [
                "sbatch",
                "--parsable",
                "--hold",
                f"--chdir={project}",
                f"--output={project}/slurm-{name}.out",
                "--wrap",
                wrap,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()

    jobs = {
        "vhack": sbatch(
            "vhack", "python jobs/read_vhack.py --v-hack-path=out/v_hack_l18.safetensors"
        ),
        "train": sbatch("train", "python jobs/train.py slurmrun"),
    }
    run_outfs("migrate", "--now", cwd=project, check=True, env=env)
    used = json.loads(
        run_outfs("aliases", "--used", "--json", cwd=project, check=True, env=env).stdout
    )
    refs = {a["legacy"]: a["referenced_by"] for a in used}
    assert f"slurm:{jobs['vhack']}" in refs["out/v_hack_l18.safetensors"]

    subprocess.run(["scontrol", "release", *jobs.values()], env=env, check=True, timeout=30)
    deadline = time.monotonic() + 240
    while subprocess.run(
        ["squeue", "--me", "-h"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip():
        assert time.monotonic() < deadline, "Slurm jobs did not finish"
        time.sleep(0.5)
    logs = {n: (project / f"slurm-{n}.out").read_text() for n in jobs}
    assert all((project / f"ok_{n}").exists() for n in jobs), logs
    assert (project / "results_vhack").read_text().split()[0] == expected
    assert (out / "runs" / "20261204_150000_slurmrun" / "train.safetensors").is_file()
    run_outfs("finish", cwd=project, check=True, env=env)
