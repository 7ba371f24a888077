"""Queue adapters, each against the most real queue this machine can have.

- task-spooler: a real private server (`TS_SOCKET` in a temp dir), marked slow.
- Slurm: a real private slurmctld + slurmd (slurm-wlm 22.05, auth/none, own ports and
  config, running as the current user) when their binaries are installed
  (`.ci/install-queues.sh` installs them), marked slow; the parser also runs on squeue
  output captured from it.
- pueue: cannot be installed here, so a fake `pueue` on PATH prints the v3 and v4
  `status --json` fixtures (hand-written from pueue's types, see tests/fixtures/pueue);
  the real subprocess path runs, the daemon does not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from outfs.errors import ConfigError
from outfs.queues import Job, QueueError, detect, job_paths
from outfs.queues.pueue import Pueue
from outfs.queues.slurm import Slurm, parse_squeue
from outfs.queues.tsp import Tsp, parse_info_command, parse_list

FIXTURES = Path(__file__).parent / "fixtures"
GATE = "while [ ! -e gate ]; do sleep 0.1; done"


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def fake_bin(directory: Path, name: str, script: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


# ---------------------------------------------------------------------------------------------
# job_paths


def job(command: str, cwd: str | None = "/proj") -> Job:
    return Job("tsp", "4", "queued", command, cwd)


def test_ref_is_queue_and_id() -> None:
    assert job("true").ref == "tsp:4"


def test_job_paths_flags_values_and_bare_data_files() -> None:
    command = (
        "uv run python train.py --v-hack-path=out/v_hack_a.safetensors "
        "--pool out/probe_distill/teacher_pool model.ckpt=out/m.pt v_hack_b.safetensors "
        "-o=../shared/k.json --lr 3e-4 https://example.com/x/y"
    )
    assert job_paths(job(command)) == [
        "/proj/out/v_hack_a.safetensors",
        "/proj/out/probe_distill/teacher_pool",
        "/proj/out/m.pt",
        "/proj/v_hack_b.safetensors",
        "/shared/k.json",
    ]


def test_job_paths_relative_without_cwd_and_absolute_kept() -> None:
    command = "python t.py out/./a//b.pt /data/out/c.pt"
    assert job_paths(job(command, cwd=None)) == ["out/a/b.pt", "/data/out/c.pt"]
    assert job_paths(job(command, cwd="/p/q")) == ["/p/q/out/a/b.pt", "/data/out/c.pt"]


def test_job_paths_looks_inside_shell_lines_but_keeps_quoted_paths_whole() -> None:
    command = "sh -c 'cd x && python t.py --p=out/a.pt >out/log.txt' 'out/with space/b.pt'"
    assert job_paths(job(command)) == [
        "/proj/out/a.pt",
        "/proj/out/log.txt",
        "/proj/out/with space/b.pt",
    ]
    assert job_paths(job("sbatch --wrap='python t.py out/z.pt'")) == ["/proj/out/z.pt"]


def test_job_paths_survives_unbalanced_quotes_and_dedups() -> None:
    # pueue and `tsp -i` join arguments with plain spaces, so quotes need not balance.
    assert job_paths(job("python t.py it's out/a.pt out/a.pt")) == ["/proj/out/a.pt"]


# ---------------------------------------------------------------------------------------------
# detect


def test_detect_none_and_unknown() -> None:
    assert detect("none") == []
    with pytest.raises(ConfigError, match="unknown queue 'lsf'"):
        detect("lsf")


def test_detect_named_but_missing_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect("auto") == []
    with pytest.raises(QueueError, match="queue = 'pueue'"):
        detect("pueue")


def test_detect_auto_finds_installed_queues(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    fake_bin(tmp_path, "pueue", "exit 0")
    fake_bin(tmp_path, "squeue", "exit 0")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert sorted(q.name for q in detect("auto")) == ["pueue", "slurm"]
    assert [q.name for q in detect("slurm")] == ["slurm"]


def test_moreutils_ts_is_not_task_spooler(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # moreutils' `ts` reads stdin forever; it must be told apart, not run as a queue.
    fake_bin(tmp_path, "ts", "/bin/cat")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not Tsp().available()


# ---------------------------------------------------------------------------------------------
# pueue (fake binary printing fixtures: pueue cannot be installed here)


@pytest.mark.parametrize("version", ["v3", "v4"])
def test_pueue_pending_jobs(monkeypatch: pytest.MonkeyPatch, tmp_path, version: str) -> None:
    fixture = FIXTURES / "pueue" / f"status-{version}.json"
    fake_bin(
        tmp_path / "bin",
        "pueue",
        f'[ "$*" = "status --json" ] || {{ echo "bad args: $*" >&2; exit 2; }}\ncat \'{fixture}\'',
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    jobs = Pueue().pending_jobs()
    # 0, 1 and 7 are Done (Success, Failed, Killed); the rest may still run.
    assert [(j.ref, j.state) for j in jobs] == [
        ("pueue:2", "running"),
        ("pueue:3", "running"),  # Paused: a live process
        ("pueue:4", "queued"),
        ("pueue:5", "queued"),  # Stashed
        ("pueue:6", "queued"),  # Locked
    ]
    assert {j.cwd for j in jobs} == {"/home/u/proj"}
    assert jobs[0].command == "just fast --v-hack-path=out/v_hack_qwen_s2.safetensors"
    assert job_paths(jobs[2]) == [
        "/home/u/proj/out/v_hack_qwen_s3.safetensors",
        "/home/u/proj/out/probe_distill/mixed_a",
    ]


def test_pueue_keeps_typed_and_expanded_command(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    task = (
        '{"id": 9, "original_command": "train out/a.pt", "command": "uv run train.py out/a.pt", '
        '"path": "/p", "status": {"Queued": {"enqueued_at": "2026-05-30T10:00:00Z"}}}'
    )
    fake_bin(tmp_path, "pueue", f'echo \'{{"tasks": {{"9": {task}}}, "groups": {{}}}}\'')
    monkeypatch.setenv("PATH", str(tmp_path))
    [only] = Pueue().pending_jobs()
    assert only.command == "uv run train.py out/a.pt\ntrain out/a.pt"
    assert job_paths(only) == ["/p/out/a.pt"]


def test_pueue_daemon_down_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # pueue keeps its queue across daemon restarts: "no answer" must not read as "no jobs".
    fake_bin(tmp_path, "pueue", "echo 'Error: Failed to connect to the daemon.' >&2; exit 1")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(QueueError, match="Failed to connect to the daemon"):
        Pueue().pending_jobs()


# ---------------------------------------------------------------------------------------------
# task-spooler

# Captured from task-spooler 1.0.1 (Debian bookworm).
TSP_LIST = """\
ID   State      Output               E-Level  Times(r/u/s)   Command [run=1/1]
0    running    /tmp/ts-out.4aHqPV                           sh -c while [ ! -e gate ]; do sleep 0.1; done
1    queued     (file)                                       [0]&& [lab]echo out/a.pt
4    finished   /tmp/ts-out.8D26yN   1        0.00/0.00/0.00 false
5    skipped    (no output)                                  [4]&& echo skipme
"""  # noqa: E501
TSP_INFO = """\
Command: [0]&& echo out/a.pt
Slots required: 1
Enqueue time: Fri Dec  4 15:27:10 2026
"""


def test_tsp_parsers_on_captured_output() -> None:
    assert parse_list(TSP_LIST) == [
        ("0", "running"),
        ("1", "queued"),
        ("4", "finished"),
        ("5", "skipped"),
    ]
    assert parse_info_command(TSP_INFO) == "echo out/a.pt"
    assert parse_info_command("Command: a\nb\nSlots required: 1\n") == "a\nb"


needs_tsp = pytest.mark.skipif(not Tsp().available(), reason="task-spooler is not installed")


@pytest.fixture
def tsp_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private task-spooler server with one slot; yields its directory."""
    monkeypatch.setenv("TS_SOCKET", str(tmp_path / "ts.sock"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # job output files stay in the temp dir
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    # Open the gate first: `tsp -K` ends the server and the queued clients, not a running job.
    (tmp_path / "gate").touch()
    if (tmp_path / "ts.sock").exists():
        env = {**os.environ, "TS_SOCKET": str(tmp_path / "ts.sock")}  # a test may unset it
        subprocess.run(["tsp", "-K"], env=env, check=False, capture_output=True, timeout=10)


def tsp(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["tsp", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=10
    ).stdout.strip()


@needs_tsp
@pytest.mark.slow
def test_tsp_without_server_has_no_jobs_and_starts_none(tsp_queue: Path) -> None:
    assert Tsp().pending_jobs() == []
    assert not (tsp_queue / "ts.sock").exists()


@needs_tsp
@pytest.mark.slow
def test_tsp_real_queue(tsp_queue: Path) -> None:
    proj = tsp_queue / "proj"
    (proj / "out").mkdir(parents=True)
    tsp("-S", "1", cwd=tsp_queue)
    gate_id = tsp("sh", "-c", GATE, cwd=tsp_queue)
    a = tsp("python3", "-c", "pass", "--v-hack-path=out/v_hack_a.safetensors", cwd=proj)
    b = tsp("-L", "lab", "-d", "echo", "out/with space/b.pt", cwd=proj)
    c = tsp("echo", "v_hack_c.safetensors", cwd=proj / "out")  # (`tsp -n` prints no id)
    wait_for(lambda: "running" in tsp("-s", gate_id, cwd=tsp_queue), what="the gate job")

    jobs = Tsp().pending_jobs()
    assert [(j.ref, j.state, j.cwd) for j in jobs] == [
        (f"tsp:{gate_id}", "running", str(tsp_queue)),
        (f"tsp:{a}", "queued", str(proj)),
        (f"tsp:{b}", "queued", str(proj)),
        (f"tsp:{c}", "queued", str(proj / "out")),
    ]
    # The exact argv (read from the waiting tsp client), not `tsp -i`'s space-joined text.
    assert jobs[0].command == f"sh -c '{GATE}'"
    assert jobs[1].command == "python3 -c pass --v-hack-path=out/v_hack_a.safetensors"
    assert jobs[2].command == "echo 'out/with space/b.pt'"
    assert [job_paths(j) for j in jobs[1:]] == [
        [str(proj / "out/v_hack_a.safetensors")],
        [str(proj / "out/with space/b.pt")],
        [str(proj / "out/v_hack_c.safetensors")],
    ]

    (tsp_queue / "gate").touch()
    tsp("-w", c, cwd=tsp_queue)
    assert Tsp().pending_jobs() == []


@needs_tsp
@pytest.mark.slow
def test_tsp_explicit_socket_and_duplicate_commands(
    tsp_queue: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Identical commands from two directories: each job keeps the cwd it was queued from.
    (tsp_queue / "a").mkdir()
    (tsp_queue / "b").mkdir()
    tsp("-S", "1", cwd=tsp_queue)
    tsp("sh", "-c", GATE, cwd=tsp_queue)
    first = tsp("echo", "out/x.pt", cwd=tsp_queue / "a")
    second = tsp("echo", "out/x.pt", cwd=tsp_queue / "b")
    monkeypatch.delenv("TS_SOCKET")
    assert Tsp().pending_jobs() == []  # the default socket: no server there
    jobs = Tsp(socket=str(tsp_queue / "ts.sock")).pending_jobs()
    assert [(j.id, j.cwd) for j in jobs[1:]] == [
        (first, str(tsp_queue / "a")),
        (second, str(tsp_queue / "b")),
    ]


# ---------------------------------------------------------------------------------------------
# Slurm

# Captured from slurm-wlm 22.05.8 with the fixture below (fields joined by \x1f).
SQUEUE = (
    "2\x1f2\x1fPENDING\x1f/tmp/sl/proj\x1f/tmp/sl/proj/run.sh out/arg.pt\n"
    "5_[1-3]\x1f5\x1fPENDING\x1f/tmp/sl/proj\x1f(null)\n"
    "3\x1f3\x1fRUNNING\x1f/tmp/sl/proj\x1f(null)\n"
    "4\x1f4\x1fCOMPLETED\x1f/tmp\x1frun.sh\n"
)


def test_squeue_parser_on_captured_output() -> None:
    assert parse_squeue(SQUEUE) == [
        ("2", "2", "queued", "/tmp/sl/proj", "/tmp/sl/proj/run.sh out/arg.pt"),
        ("5_[1-3]", "5", "queued", "/tmp/sl/proj", ""),
        ("3", "3", "running", "/tmp/sl/proj", ""),
    ]


@pytest.mark.slow
def test_slurm_real_cluster(
    slurm_cluster: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_CONF", slurm_cluster["SLURM_CONF"])
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    script = proj / "run.sh"
    script.write_text('#!/bin/sh\n#SBATCH -o /dev/null\npython3 train.py --v=out/a.pt "$@"\n')

    def sbatch(*args: str) -> str:
        out = subprocess.run(
            ["sbatch", "--parsable", "-o", "/dev/null", *args],
            cwd=proj,
            env=slurm_cluster,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.strip().split(";")[0]

    gate = sbatch(f"--wrap={GATE}")
    held = sbatch("--hold", "--wrap=python3 x.py --p=out/w.pt 'out/sp ace/q.pt'")
    later = sbatch("--begin=now+1hour", "--chdir=sub", str(script), "out/arg.pt")

    slurm = Slurm()
    assert slurm.available()
    wait_for(
        lambda: any(j.id == gate and j.state == "running" for j in slurm.pending_jobs()),
        what="the gate job to run",
    )
    jobs = {j.id: j for j in slurm.pending_jobs()}
    assert sorted(jobs) == sorted([gate, held, later])
    assert jobs[held].state == jobs[later].state == "queued"
    assert jobs[held].cwd == str(proj)
    assert jobs[later].cwd == str(proj / "sub")
    assert "# This script was created by sbatch --wrap." in jobs[held].command
    assert job_paths(jobs[held]) == [str(proj / "out/w.pt"), str(proj / "out/sp ace/q.pt")]
    # The script's path and arguments (%o), then the script body (scontrol write batch_script).
    assert job_paths(jobs[later]) == [
        str(script),
        str(proj / "sub/out/arg.pt"),
        str(proj / "sub/out/a.pt"),
    ]

    (proj / "gate").touch()
    subprocess.run(["scancel", held, later], env=slurm_cluster, check=True)
    wait_for(lambda: slurm.pending_jobs() == [], what="the queue to drain")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
