"""task-spooler (`tsp`, upstream name `ts`).

What the tool tells us (task-spooler 1.0.1, Debian bookworm):
- `tsp -l` is a table `ID State Output E-Level Times(r/u/s) Command`; states are queued,
  running, finished, skipped (newer upstream versions add allocating). Its Command column is
  decorated with `[label]` and `[dep]&& `.
- `tsp -i ID` prints `Command: ...` without the label, but with a `[dep]&& ` prefix for `-d`/`-D`
  jobs. Arguments are joined with plain spaces, so quoting is lost. It shows no cwd.
- Any tsp call starts a server when none runs, so we look at the socket first.

tsp has no notion of a cwd because the job runs in the `tsp` client process that enqueued it,
which waits (queued) and then forks the job (running). On Linux that client is still in
/proc with the exact argv and the cwd of enqueue time, so we read both from there and fall
back to the `tsp -i` text and cwd None when it cannot be found (another host, no /proc).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from outfs.queues.api import Job, JobState, QueueError, run, which

_DONE = frozenset({"finished", "skipped"})
_DEPENDENCY = re.compile(r"^\[[0-9, ]*\]&& ")  # `tsp -d` / `tsp -D 3` jobs: "[3]&& cmd"
_PROC = Path("/proc")


def socket_path(env: Mapping[str, str] | None = None, uid: int | None = None) -> str:
    """The server socket a tsp client of `uid` would use under `env`, as task-spooler does."""
    env = os.environ if env is None else env
    if env.get("TS_SOCKET"):
        return env["TS_SOCKET"]
    return f"{env.get('TMPDIR') or '/tmp'}/socket-ts.{os.getuid() if uid is None else uid}"


class Tsp:
    name = "tsp"

    def __init__(self, socket: str | None = None) -> None:
        # None: whatever TS_SOCKET says in our environment, like the user's own `tsp -l`.
        self.socket = socket

    def _binary(self) -> str | None:
        found = which("tsp")
        if found:
            return found
        # Upstream installs `ts`, which clashes with moreutils' `ts` (a timestamp filter).
        ts = which("ts")
        if ts and "Task Spooler" in _version(ts):
            return ts
        return None

    def available(self) -> bool:
        return self._binary() is not None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.socket is not None:
            env["TS_SOCKET"] = self.socket
        return env

    def pending_jobs(self) -> list[Job]:
        binary = self._binary()
        if binary is None:
            raise QueueError("task-spooler is not installed (neither `tsp` nor `ts` on PATH)")
        env = self._env()
        sock = socket_path(env)
        if not _server_listens(sock):
            # No server: no queue. Calling tsp now would start an empty one as a side effect.
            return []
        pending: list[tuple[str, JobState, str]] = []
        for job_id, state in parse_list(run([binary, "-l"], env=env)):
            if state in _DONE:
                continue
            try:
                info = run([binary, "-i", job_id], env=env)
            except QueueError:
                continue  # removed (`tsp -r`) between the two calls: it will not run
            command = parse_info_command(info)
            pending.append((job_id, "running" if state == "running" else "queued", command))
        clients = _clients(sock)
        jobs = []
        for job_id, state, text in pending:
            found = _take_client(clients, text)
            if found is None:
                jobs.append(Job(self.name, job_id, state, text, None))
            else:
                argv, cwd = found
                jobs.append(Job(self.name, job_id, state, shlex.join(argv), cwd))
        return jobs


def parse_list(out: str) -> list[tuple[str, str]]:
    """(id, state) for each row of `tsp -l`."""
    rows = []
    for line in out.splitlines():
        fields = line.split(maxsplit=2)
        if len(fields) >= 2 and fields[0].isdigit():
            rows.append((fields[0], fields[1]))
    return rows


def parse_info_command(out: str) -> str:
    """The command of `tsp -i ID`: between `Command: ` and the next field (it may hold newlines)."""
    match = re.search(r"^Command: (.*?)\n(?:Slots required|Enqueue time):", out, re.M | re.S)
    if match is None:
        raise QueueError(f"unexpected `tsp -i` output: {out[:200]!r}")
    return _DEPENDENCY.sub("", match.group(1), count=1)


def _version(binary: str) -> str:
    try:
        return run([binary, "-V"], timeout=5)
    except QueueError:
        return ""


def _server_listens(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


@dataclass
class _Client:
    pid: int
    argv: list[str]  # the tsp client's own argv: options, then the job's argv
    cwd: str


def _clients(sock: str) -> list[_Client]:
    """The tsp client processes of this server, oldest first (tsp numbers jobs in that order)."""
    if not _PROC.is_dir():
        return []
    target = os.path.realpath(sock)
    server_inodes = _socket_inodes(target)
    clients = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() not in ("tsp", "ts"):
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
            cwd = os.readlink(entry / "cwd")
            env = _environ(entry)
            uid = entry.stat().st_uid
            if server_inodes & _fd_inodes(entry):
                continue  # the server itself keeps the argv of the call that started it
        except OSError:
            continue  # gone, or another user's process
        their_sock = socket_path(env, uid)
        if os.path.realpath(os.path.join(cwd, their_sock)) != target:
            continue
        clients.append(_Client(int(entry.name), [os.fsdecode(a) for a in argv], cwd))
    clients.sort(key=lambda c: c.pid)
    return clients


def _take_client(clients: list[_Client], command: str) -> tuple[list[str], str] | None:
    """Claim the oldest client whose argv ends with the words `tsp -i` joined into `command`."""
    for client in clients:
        args = client.argv[1:]
        for start in range(len(args)):
            if " ".join(args[start:]) == command:
                clients.remove(client)
                return args[start:], client.cwd
    return None


def _environ(proc: Path) -> dict[str, str]:
    env = {}
    for item in (proc / "environ").read_bytes().split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key in (b"TS_SOCKET", b"TMPDIR"):
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env


def _socket_inodes(path: str) -> set[str]:
    inodes = set()
    try:
        lines = (_PROC / "net" / "unix").read_text().splitlines()[1:]
    except OSError:
        return inodes
    for line in lines:
        fields = line.split(maxsplit=7)
        if len(fields) == 8 and fields[7] == path:
            inodes.add(fields[6])
    return inodes


def _fd_inodes(proc: Path) -> set[str]:
    inodes = set()
    for fd in (proc / "fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes
