"""`outfs watch`: real writers without the shim (sh), real inotify, the watcher in a thread."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from helpers import run_outfs, tree_digest

from outfs.config import load_config
from outfs.errors import OutfsError
from outfs.plan import Move
from outfs.watch import Skipped, watch

SETTLE = 0.3
# Long enough that the watcher would have moved an entry it should not have moved.
SEVERAL_SETTLES = 4 * SETTLE


@dataclass
class Watcher:
    moves: list[Move] = field(default_factory=list)
    skips: list[Skipped] = field(default_factory=list)


@contextmanager
def watching(project: Path) -> Iterator[Watcher]:
    """`watch` in a thread, as the CLI runs it, stopped by its event whatever happens."""
    seen = Watcher()
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            watch(
                load_config(project),
                settle=SETTLE,
                on_move=seen.moves.append,
                on_skip=seen.skips.append,
                stop=stop,
                ready=ready,
            )
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "the watcher did not start"
    try:
        yield seen
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the watcher did not stop"
    assert not errors, errors


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def sh(script: str, cwd: Path) -> None:
    """A writer without the shim: a shell, not Python."""
    subprocess.run(["sh", "-c", script], cwd=cwd, check=True, timeout=30)


@pytest.fixture
def migrated(example: Path) -> Path:
    run_outfs("migrate", "--now", cwd=example, check=True)
    return example


def aliases(project: Path) -> dict[str, str]:
    listed = json.loads(run_outfs("aliases", "--json", cwd=project, check=True).stdout)
    return {a["legacy"]: a["target"] for a in listed}


def test_new_file_from_sh_lands_at_its_rule_target_and_is_aliased(migrated: Path) -> None:
    out = migrated / "out"
    with watching(migrated) as seen:
        sh("printf data > out/v_hack_new.safetensors", migrated)
        # Written elsewhere, then renamed into place (as safetensors' save_file does).
        sh(
            "printf tmp > out/v_hack_mv.part && mv out/v_hack_mv.part out/v_hack_mv.safetensors",
            migrated,
        )
        wait_until(lambda: len(seen.moves) == 2, "both files moved")
    assert (out / "vhack/v_hack_new.safetensors").read_bytes() == b"data"
    assert (out / "vhack/v_hack_mv.safetensors").read_bytes() == b"tmp"
    assert not (out / "v_hack_new.safetensors").exists()
    assert not (out / "v_hack_mv.safetensors").exists()
    listed = aliases(migrated)
    assert listed["out/v_hack_new.safetensors"] == "out/vhack/v_hack_new.safetensors"
    assert listed["out/v_hack_mv.safetensors"] == "out/vhack/v_hack_mv.safetensors"
    assert not seen.skips


@pytest.mark.slow
def test_file_held_open_moves_only_after_its_writer_closes_it(migrated: Path) -> None:
    out = migrated / "out"
    script = "exec 3>out/v_hack_slow.safetensors; printf a >&3; sleep 2; printf b >&3"
    with watching(migrated) as seen:
        writer = subprocess.Popen(["sh", "-c", script], cwd=migrated)
        try:
            time.sleep(SEVERAL_SETTLES)
            assert writer.poll() is None, "the writer finished too early to prove anything"
            assert (out / "v_hack_slow.safetensors").exists()
            assert not (out / "vhack/v_hack_slow.safetensors").exists()
        finally:
            assert writer.wait(10) == 0
        wait_until(lambda: len(seen.moves) == 1, "the closed file moved")
    assert (out / "vhack/v_hack_slow.safetensors").read_bytes() == b"ab"
    assert not (out / "v_hack_slow.safetensors").exists()


def test_checkpoint_lands_in_the_run_dir_its_new_log_names(migrated: Path) -> None:
    out = migrated / "out"
    with watching(migrated) as seen:
        sh(
            "printf step > logs/20261204_150000_qwen3-8b_newrun.log && "
            "printf ckpt > out/train_newrun.safetensors",
            migrated,
        )
        wait_until(lambda: len(seen.moves) == 1, "the checkpoint moved")
    assert (out / "runs/20261204_150000_newrun/train.safetensors").read_bytes() == b"ckpt"
    assert not (out / "train_newrun.safetensors").exists()
    assert aliases(migrated)["out/train_newrun.safetensors"] == (
        "out/runs/20261204_150000_newrun/train.safetensors"
    )


@pytest.mark.slow
def test_new_pool_dir_moves_whole_once_nothing_in_it_is_busy(migrated: Path) -> None:
    out = migrated / "out"
    # The writer's cwd is inside the pool while it pauses between files: no move then.
    script = (
        "mkdir -p out/probe_distill/newpool && cd out/probe_distill/newpool && "
        "printf 1 > s1.jsonl && sleep 1.5 && mkdir part && printf 2 > part/s2.jsonl"
    )
    with watching(migrated) as seen:
        writer = subprocess.Popen(["sh", "-c", script], cwd=migrated)
        try:
            time.sleep(SEVERAL_SETTLES)
            assert writer.poll() is None, "the writer finished too early to prove anything"
            assert (out / "probe_distill/newpool/s1.jsonl").exists()
            assert not seen.moves
        finally:
            assert writer.wait(10) == 0
        wait_until(lambda: len(seen.moves) == 1, "the pool moved")
    assert seen.moves[0].kind == "dir"
    assert tree_digest(out / "pools/newpool").keys() == {"s1.jsonl", "part", "part/s2.jsonl"}
    assert (out / "pools/newpool/part/s2.jsonl").read_bytes() == b"2"
    assert not (out / "probe_distill/newpool").exists()
    assert aliases(migrated)["out/probe_distill/newpool"] == "out/pools/newpool"


def test_kept_unmapped_and_existing_targets_stay_put(migrated: Path) -> None:
    out = migrated / "out"
    before = (out / "vhack/v_hack_l18.safetensors").read_bytes()
    with watching(migrated) as seen:
        sh(
            "printf k > out/pairsets/new.json && printf u > out/scratch.txt && "
            "printf clash > out/v_hack_l18.safetensors",
            migrated,
        )
        # Written last: once it moved, the earlier writes had their turn too.
        sh("printf s > out/v_hack_sentinel.safetensors", migrated)
        wait_until(lambda: len(seen.moves) == 1, "the sentinel moved")
        time.sleep(SEVERAL_SETTLES)
    assert [m.source for m in seen.moves] == ["v_hack_sentinel.safetensors"]
    assert (out / "pairsets/new.json").read_bytes() == b"k"
    assert (out / "scratch.txt").read_bytes() == b"u"
    assert (out / "v_hack_l18.safetensors").read_bytes() == b"clash"
    assert (out / "vhack/v_hack_l18.safetensors").read_bytes() == before
    assert [(s.path, s.target) for s in seen.skips] == [
        ("v_hack_l18.safetensors", "vhack/v_hack_l18.safetensors")
    ]
    assert "nothing overwritten" in seen.skips[0].reason


def test_unmappable_checkpoint_is_reported_once_and_stays(migrated: Path) -> None:
    out = migrated / "out"
    with watching(migrated) as seen:
        sh("printf a > out/train_nolog.safetensors", migrated)
        wait_until(lambda: bool(seen.skips), "the entry was reported")
        sh("printf b >> out/train_nolog.safetensors", migrated)
        time.sleep(SEVERAL_SETTLES)
    assert not seen.moves
    assert (out / "train_nolog.safetensors").read_bytes() == b"ab"
    assert len(seen.skips) == 1
    assert "matched nothing" in seen.skips[0].reason


def test_nothing_moves_while_a_migration_holds_the_lock(migrated: Path) -> None:
    out = migrated / "out"
    with watching(migrated) as seen:
        fd = os.open(out / ".outfs/lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            sh("printf d > out/v_hack_locked.safetensors", migrated)
            time.sleep(SEVERAL_SETTLES)
            assert (out / "v_hack_locked.safetensors").exists()
            assert not seen.moves
        finally:
            os.close(fd)
        wait_until(lambda: len(seen.moves) == 1, "the file moved after the lock went")
    assert (out / "vhack/v_hack_locked.safetensors").read_bytes() == b"d"


@pytest.mark.slow
def test_rollback_while_watching_restores_the_tree_and_is_not_undone(example: Path) -> None:
    out = example / "out"
    original = tree_digest(out)
    run_outfs("migrate", "--now", cwd=example, check=True)
    with watching(example) as seen:
        sh("printf new > out/v_hack_new.safetensors", example)
        wait_until(lambda: len(seen.moves) == 1, "the new file moved")
        run_outfs("rollback", cwd=example, check=True)
        time.sleep(SEVERAL_SETTLES)
    assert len(seen.moves) == 1
    restored = tree_digest(out)
    assert restored.pop("v_hack_new.safetensors")
    assert restored == original
    assert not (out / ".outfs").exists()


def test_watch_refuses_a_root_never_migrated(example: Path) -> None:
    with pytest.raises(OutfsError, match="migrate --now"):
        watch(load_config(example), stop=threading.Event())


def read_line(stream: IO[str] | None, timeout: float = 20.0) -> str:
    """The next line of a child's output, failing (not hanging) when none comes."""
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no output within {timeout} s"
    return stream.readline()


def test_cli_prints_each_relocation_and_stops_on_ctrl_c(migrated: Path) -> None:
    proc = subprocess.Popen(
        ["outfs", "watch", "--settle", str(SETTLE)],
        cwd=migrated,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert "watching out/" in read_line(proc.stderr)
        sh("printf cli > out/v_hack_cli.safetensors", migrated)
        line = read_line(proc.stdout)
        assert line.strip() == "out/v_hack_cli.safetensors -> out/vhack/v_hack_cli.safetensors"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert proc.returncode == 0
    assert (migrated / "out" / "vhack" / "v_hack_cli.safetensors").read_text() == "cli"
