"""pueue, through `pueue status --json` (pueue v3 and v4 shapes).

The JSON is the daemon's whole state: `{"tasks": {"<id>": Task}, "groups": {...}}`. A task's
`path` is its working directory and its command runs through `sh -c`. `status` is a bare
string or a one-key object (`"Queued"`, `{"Stashed": {...}}`, v4 `{"Queued": {...}}`), so we
go by the name alone. pueue keeps its queue across daemon restarts, so a daemon that does not
answer is an error, never an empty queue.
"""

from __future__ import annotations

import json
from typing import Any

from outfs.queues.api import Job, JobState, QueueError, run, which

# Still to run (or running): Queued, Stashed (held back), Locked (about to start), Running,
# Paused (a live process, stopped). Done (any result) will never run again.
_STATES: dict[str, JobState] = {
    "Queued": "queued",
    "Stashed": "queued",
    "Locked": "queued",
    "Running": "running",
    "Paused": "running",
}


class Pueue:
    name = "pueue"

    def available(self) -> bool:
        return which("pueue") is not None

    def pending_jobs(self) -> list[Job]:
        binary = which("pueue")
        if binary is None:
            raise QueueError("pueue is not installed (no `pueue` on PATH)")
        return parse_status(run([binary, "status", "--json"]))


def parse_status(out: str) -> list[Job]:
    """Pending jobs from the output of `pueue status --json`, ordered by task id."""
    try:
        tasks = json.loads(out)["tasks"]
    except (ValueError, KeyError, TypeError) as exc:
        raise QueueError(f"unexpected `pueue status --json` output: {out[:200]!r}") from exc
    jobs = []
    for key, task in sorted(tasks.items(), key=lambda item: _order(item[0])):
        name = _status_name(task.get("status"))
        if name == "Done":
            continue
        # A state this version does not know may still run: listing it is the safe mistake.
        state = _STATES.get(name, "queued")
        jobs.append(Job("pueue", str(task.get("id", key)), state, _command(task), task.get("path")))
    return jobs


def _status_name(status: Any) -> str:
    if isinstance(status, str):
        return status
    if isinstance(status, dict) and len(status) == 1:
        return next(iter(status))
    return ""


def _command(task: dict[str, Any]) -> str:
    # `command` is what runs (aliases from pueue_aliases.yml expanded), `original_command`
    # what the user typed; a path may be named in either, so keep both, one per line.
    command = task.get("command") or ""
    original = task.get("original_command") or ""
    if not command:
        return original
    if original and original != command:
        return f"{command}\n{original}"
    return command


def _order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 62, key)
