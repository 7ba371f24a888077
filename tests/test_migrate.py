"""The data side end to end on the seed-shaped example: plan, migrate --now, verify, rollback."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import no_envs, run_outfs, tree_digest

from outfs.example import UNMAPPED_EXPECTED, build_example


def plan_json(project: Path) -> dict:
    return json.loads(run_outfs("plan", "--json", cwd=project, check=True).stdout)


def assert_moved_intact(moves: list[dict], before: dict[str, str], after: dict[str, str]) -> None:
    """Every planned entry left its old path; it and all below it hold the same bytes at the
    new one."""
    where = {m["from"].removeprefix("out/"): m["to"].removeprefix("out/") for m in moves}
    for path, digest in before.items():
        parts = path.split("/")
        for i in range(len(parts), 0, -1):  # the entry itself, or the moved dir it lies in
            old = "/".join(parts[:i])
            if old in where:
                assert path not in after
                assert after[where[old] + path[len(old) :]] == digest
                break


def test_plan_lists_every_move_and_every_unmapped_reason(example: Path) -> None:
    before = tree_digest(example / "out")
    plan = plan_json(example)
    unmapped = {u["path"]: u["reason"] for u in plan["unmapped"]}
    assert set(unmapped) == set(UNMAPPED_EXPECTED)
    for path, reason in UNMAPPED_EXPECTED.items():
        assert reason in unmapped[path]
    moves = {m["from"]: m["to"] for m in plan["moves"]}
    loose = [p for p in os.listdir(example / "out") if (example / "out" / p).is_file()]
    assert {f"out/{p}" for p in loose} == set(moves) - {
        m for m in moves if m.startswith("out/probe_distill/")
    } | set(unmapped)
    assert moves["out/probe_distill/teacher_pool"] == "out/pools/teacher_pool"
    runs = [t for t in moves.values() if t.startswith("out/runs/")]
    assert runs and all(t.endswith(("/train.safetensors", "/first_hack.safetensors")) for t in runs)
    assert plan["conflicts"] == []
    assert tree_digest(example / "out") == before  # a plan changes nothing
    assert not (example / "out" / ".outfs").exists()


def test_migrate_keeps_every_byte_verifies_and_rolls_back_exactly(example: Path) -> None:
    out = example / "out"
    before = tree_digest(out)
    moves = plan_json(example)["moves"]

    proc = run_outfs("migrate", "--now", cwd=example, check=True)
    assert "moved" in proc.stdout
    after = tree_digest(out)
    assert_moved_intact(moves, before, after)
    top = {p.name for p in out.iterdir() if p.is_file()}
    assert {f"out/{p}" for p in top} == set(UNMAPPED_EXPECTED)
    assert not (out / "probe_distill").exists()  # the nesting is dropped
    assert run_outfs("verify", cwd=example).returncode == 0

    again = run_outfs("migrate", "--now", cwd=example, check=True)
    assert "nothing to move" in again.stdout
    assert tree_digest(out) == after

    run_outfs("rollback", cwd=example, check=True)
    assert tree_digest(out) == before
    assert not (out / ".outfs").exists()


def test_verify_fails_when_a_target_is_lost(example: Path) -> None:
    run_outfs("migrate", "--now", cwd=example, check=True)
    victim = next((example / "out" / "vhack").iterdir())
    victim.unlink()
    proc = run_outfs("verify", cwd=example)
    assert proc.returncode == 1
    assert victim.name in proc.stdout and "lost" in proc.stdout


def test_conflicts_stay_put(example: Path) -> None:
    out = example / "out"
    (out / "vhack").mkdir()
    (out / "vhack" / "v_hack_l18.safetensors").write_bytes(b"something else")
    plan = plan_json(example)
    conflict = {c["from"]: c["reason"] for c in plan["conflicts"]}
    assert "different content" in conflict["out/v_hack_l18.safetensors"]
    run_outfs("migrate", "--now", cwd=example, check=True)
    assert (out / "v_hack_l18.safetensors").exists()
    assert (out / "vhack" / "v_hack_l18.safetensors").read_bytes() == b"something else"


def test_two_sources_for_one_target_is_a_conflict(tmp_path: Path) -> None:
    (tmp_path / "out" / "a").mkdir(parents=True)
    (tmp_path / "out" / "b").mkdir()
    (tmp_path / "out" / "a" / "x.pt").write_text("1")
    (tmp_path / "out" / "b" / "x.pt").write_text("2")
    (tmp_path / "outfs.toml").write_text(
        'envs = []\n[[rules]]\nmatch = "{d}/{f}.pt"\nto = "pt/{f}.pt"\n'
    )
    plan = plan_json(tmp_path)
    assert plan["moves"] == []
    assert {c["from"] for c in plan["conflicts"]} == {"out/a/x.pt", "out/b/x.pt"}
    assert all("2 entries map to this target" in c["reason"] for c in plan["conflicts"])


def test_second_migrate_is_refused_while_the_lock_is_held(example: Path) -> None:
    state = example / "out" / ".outfs"
    state.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
            'fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b\'{"pid": 4242, "action": "x"}\');'
            "print('held', flush=True); time.sleep(60)",
            str(state / "lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout and holder.stdout.readline().strip() == "held"
        proc = run_outfs("migrate", "--now", cwd=example)
        assert proc.returncode == 1
        assert "4242" in proc.stderr and "holds the lock" in proc.stderr
        assert (example / "out" / "v_hack_l18.safetensors").exists()  # nothing moved
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_kill_9_mid_migration_then_rerun_completes(tmp_path: Path) -> None:
    project = no_envs(build_example(tmp_path / "big", scale=300))
    out = project / "out"
    before = tree_digest(out)
    moves = plan_json(project)["moves"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "outfs", "migrate", "--now", "--json"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill as soon as some, but not all, entries have moved.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "vhack").is_dir() and any(True for _ in os.scandir(out / "vhack")):
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partway = tree_digest(out)
    moved_already = sum(m["to"].removeprefix("out/") in partway for m in moves)
    assert 0 < moved_already < len(moves), "the kill did not land mid-migration"
    for move in moves:  # every entry is at exactly one of its paths at every instant
        old, new = move["from"].removeprefix("out/"), move["to"].removeprefix("out/")
        assert (old in partway) != (new in partway)

    run_outfs("migrate", "--now", cwd=project, check=True)
    after = tree_digest(out)
    assert_moved_intact(moves, before, after)
    file_hashes = sorted(v for v in before.values() if v != "dir")
    assert file_hashes == sorted(v for v in after.values() if v != "dir")  # nothing lost or doubled
    assert run_outfs("verify", cwd=project).returncode == 0


def test_rollback_also_returns_files_the_shim_placed_by_rule(example: Path) -> None:
    """A new checkpoint the shim placed under runs/ goes back to its old path, and the run
    directory made for it goes too."""
    from outfs.shim.table import append_added

    out = example / "out"
    before = tree_digest(out)
    run_outfs("migrate", "--now", cwd=example, check=True)
    placed = out / "runs" / "20261204_150000_newrun" / "train.safetensors"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"new checkpoint")
    item = {
        "legacy": "train_newrun.safetensors",
        "target": placed.relative_to(out).as_posix(),
        "kind": "file",
    }
    append_added(str(out / ".outfs"), "host", 1234, item)

    run_outfs("rollback", cwd=example, check=True)
    after = tree_digest(out)
    assert after.pop("train_newrun.safetensors") == hashlib.sha256(b"new checkpoint").hexdigest()
    assert after == before


def test_a_job_env_without_outfs_is_refused_before_anything_changes(example: Path) -> None:
    bare = example / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    pyproject = example / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("envs = []", 'envs = ["bare-venv"]'))
    before = tree_digest(example / "out")
    proc = run_outfs("migrate", "--now", cwd=example)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "bare-venv" in proc.stderr and "pip install" in proc.stderr
    assert tree_digest(example / "out") == before
    assert not (example / "out" / ".outfs" / "aliases.json").exists()


def test_nested_targets_are_conflicts_and_identity_rules_are_in_place(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "probe_distill" / "a").mkdir(parents=True)
    (out / "probe_distill" / "a" / "s.jsonl").write_text("1")
    (out / "pool_a.json").write_text("{}")
    (out / "notes.md").write_text("mine")
    (tmp_path / "outfs.toml").write_text(
        "envs = []\n"
        '[[rules]]\nmatch = "probe_distill/{pool}"\nto = "pools/{pool}"\n'
        '[[rules]]\nmatch = "pool_{pool}.json"\nto = "pools/{pool}/meta.json"\n'
        '[[rules]]\nmatch = "notes.md"\nto = "notes.md"\n'
    )
    plan = plan_json(tmp_path)
    assert plan["moves"] == []
    assert {c["from"] for c in plan["conflicts"]} == {"out/probe_distill/a", "out/pool_a.json"}
    assert plan["unmapped"] == []  # notes.md is where its rule puts it
    before = tree_digest(out)
    run_outfs("migrate", "--now", cwd=tmp_path, check=True)
    assert tree_digest(out) == before  # nothing half-moved
    proc = run_outfs("verify", cwd=tmp_path)
    assert proc.returncode == 1 and "pools/a, which another entry moves" in proc.stdout


def test_root_may_be_a_symlink_to_a_scratch_disk(tmp_path: Path) -> None:
    project = no_envs(build_example(tmp_path / "repo"))
    scratch = tmp_path / "scratch" / "out"
    scratch.parent.mkdir()
    (project / "out").rename(scratch)
    (project / "out").symlink_to(scratch)
    before = tree_digest(scratch)
    plan = plan_json(project)
    assert plan["moves"] and all(m["from"].startswith("out/") for m in plan["moves"])
    run_outfs("migrate", "--now", cwd=project, check=True)
    assert (scratch / "vhack" / "v_hack_l18.safetensors").is_file()
    assert run_outfs("verify", cwd=project).returncode == 0
    run_outfs("rollback", cwd=project, check=True)
    assert tree_digest(scratch) == before
