"""Which process used which alias: written by the shim, read by `outfs aliases` and `finish`.

Each process appends to its own `<state>/usage/<host>-<pid>.jsonl` (design.md): a header line,
one line per alias on its first hit, and an `exit` line at interpreter exit. One file per
process, so concurrent processes on several machines never write the same file.
The writer side runs inside jobs: it imports json only on a first hit, never at start-up.
"""

import os
import sys
import time

USAGE_DIR = "usage"

_seen: set[tuple[str, str]] = set()
_files: dict[str, str] = {}  # state dir → this process's usage file
_hooks_registered = False


def identity() -> tuple[str, int]:
    """(host, pid) that name this process's files."""
    return os.uname().nodename, os.getpid()


def now_iso(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))


def hit(state: str, legacy: str) -> None:
    """Record the first hit of `legacy` in this process (later hits cost a set lookup)."""
    key = (state, legacy)
    if key in _seen:
        return
    _seen.add(key)
    try:
        from outfs.shim.table import append_line

        append_line(_usage_file(state), {"legacy": legacy, "t": now_iso()})
    except Exception as exc:  # read-only state: resolving matters more than counting
        from outfs.shim import warn

        warn("usage", f"cannot record alias usage in {state}: {exc}")


def _usage_file(state: str) -> str:
    path = _files.get(state)
    if path is None:
        from outfs.shim.table import append_line

        _register_hooks()
        directory = os.path.join(state, USAGE_DIR)
        os.makedirs(directory, exist_ok=True)
        host, pid = identity()
        path = os.path.join(directory, f"{host}-{pid}.jsonl")
        append_line(path, _header(host, pid))
        _files[state] = path
    return path


def _header(host: str, pid: int) -> dict[str, object]:
    ticks = start_ticks(pid)
    return {
        "pid": pid,
        "host": host,
        "argv": list(sys.argv),
        "started": now_iso(_start_time(ticks)),
        "boot_id": boot_id(),
        "start_ticks": ticks,
    }


def _register_hooks() -> None:
    global _hooks_registered
    if _hooks_registered:
        return
    _hooks_registered = True
    import atexit

    atexit.register(_at_exit)
    # A forked child (DataLoader workers) is another process: its own file, its own hits.
    os.register_at_fork(after_in_child=_forget)


def _forget() -> None:
    _seen.clear()
    _files.clear()


def _at_exit() -> None:
    from outfs.shim import paths
    from outfs.shim.table import append_line

    paths._local.busy = True  # our own writes under root must not be redirected
    for path in list(_files.values()):
        try:  # noqa: SIM105 - no contextlib import in a job for this
            append_line(path, {"exit": now_iso()})
        except Exception:
            pass


def start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot (/proc/<pid>/stat field 22)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        return int(data[data.rindex(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _start_time(ticks: int | None) -> float | None:
    if ticks is None:
        return None
    try:
        with open("/proc/stat", "rb") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith(b"btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration):
        return None


class ProcessUsage:
    """One process's usage file, read back: who it is, whether it runs, what it hit."""

    __slots__ = ("alive", "argv", "boot_id", "exited", "hits", "host", "path", "pid", "started")

    def __init__(self, path: str, header: dict[str, object]) -> None:
        self.path = path
        self.pid = int(header.get("pid") or 0)  # type: ignore[call-overload]
        self.host = str(header.get("host") or "")
        argv = header.get("argv")
        self.argv: list[str] = [str(a) for a in argv] if isinstance(argv, list) else []
        self.started = str(header.get("started") or "")
        self.boot_id = header.get("boot_id")
        self.exited: str | None = None
        self.hits: dict[str, str] = {}  # legacy → first hit (ISO)
        self.alive = False

    def __repr__(self) -> str:
        return f"ProcessUsage(pid={self.pid}, host={self.host!r}, alive={self.alive}, " + (
            f"hits={len(self.hits)})"
        )


def read_usage(state: str | os.PathLike[str]) -> list[ProcessUsage]:
    """Every process that recorded usage under `state`, with hits and liveness.

    A process is alive while its file has no `exit` line and, on this host, its pid still
    runs with the same start time (a reused pid is not it). On another host a process
    without an `exit` line counts as alive: it cannot be checked from here.
    """
    import json

    directory = os.path.join(state, USAGE_DIR)
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".jsonl"))
    except OSError:
        return []
    found = []
    for name in names:
        try:
            with open(os.path.join(directory, name), "rb") as fh:
                lines = fh.read().splitlines()
            records = [_loads(json, line) for line in lines]
        except OSError:
            continue
        records = [r for r in records if r is not None]
        if records and "pid" in records[0]:
            found.append(_process(os.path.join(directory, name), records))
    return found


def _loads(json, line: bytes) -> dict[str, object] | None:  # type: ignore[no-untyped-def]
    try:
        value = json.loads(line)
    except ValueError:
        return None  # torn last line of a killed process
    return value if isinstance(value, dict) else None


def _process(path: str, records: list[dict[str, object]]) -> ProcessUsage:
    header = records[0]
    proc = ProcessUsage(path, header)
    for rec in records[1:]:
        if "exit" in rec:
            proc.exited = str(rec["exit"])
        elif "legacy" in rec:
            legacy, t = str(rec["legacy"]), str(rec.get("t") or "")
            if legacy not in proc.hits or t < proc.hits[legacy]:
                proc.hits[legacy] = t
    proc.alive = proc.exited is None and _running(header)
    return proc


def _running(header: dict[str, object]) -> bool:
    if header.get("host") != os.uname().nodename:
        return True
    if header.get("boot_id") and header.get("boot_id") != boot_id():
        return False  # the machine rebooted since
    pid = header.get("pid")
    if not isinstance(pid, int):
        return False
    ticks = start_ticks(pid)
    if ticks is None:
        return False
    recorded = header.get("start_ticks")
    return recorded is None or recorded == ticks
