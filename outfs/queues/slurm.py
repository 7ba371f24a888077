"""Slurm, through `squeue` and `scontrol write batch_script` (checked against slurm-wlm 22.05).

`squeue --me -h -o ...` lists only jobs that may still run (pending, running, suspended,
completing...) unless asked for more. Its `%o` is the submitted script's path and arguments,
joined with spaces, and `(null)` for `sbatch --wrap` jobs, whose command lives only in the
batch script slurmctld keeps; so the job's command is `%o` plus that script. `%Z` is the
working directory the job runs in (`--chdir`, else where sbatch ran). A pending job array is
one row (`5_[1-3]`) and shares its array job's (`%A`) script.
"""

from __future__ import annotations

from outfs.queues.api import Job, JobState, QueueError, run, which

_SEP = "\x1f"  # ASCII unit separator: the fields include free text (paths, command lines)
_FORMAT = _SEP.join(["%i", "%A", "%T", "%Z", "%o"])

# Never run again. squeue hides them by default; they appear only briefly or with `-t all`.
_DONE = frozenset(
    {
        "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
        "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "TIMEOUT",
    }
)  # fmt: skip
# Everything else has or may get a live process; the ones with a process now are running.
_RUNNING = frozenset(
    {"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}
)


class Slurm:
    name = "slurm"

    def available(self) -> bool:
        return which("squeue") is not None

    def pending_jobs(self) -> list[Job]:
        squeue = which("squeue")
        if squeue is None:
            raise QueueError("Slurm's client is not installed (no `squeue` on PATH)")
        rows = parse_squeue(run([squeue, "--me", "-h", "-o", _FORMAT]))
        scripts: dict[str, str] = {}
        jobs = []
        for job_id, array_id, state, cwd, command in rows:
            if array_id not in scripts:
                scripts[array_id] = batch_script(array_id)
            parts = [part for part in (command, scripts[array_id]) if part]
            jobs.append(Job(self.name, job_id, state, "\n".join(parts), cwd))
        return jobs


def parse_squeue(out: str) -> list[tuple[str, str, JobState, str | None, str]]:
    """(id, array job id, state, cwd, command) of each pending row of `squeue -o _FORMAT`."""
    rows = []
    for line in out.splitlines():
        if not line.strip():
            continue
        fields = line.split(_SEP, 4)
        if len(fields) != 5:
            raise QueueError(f"unexpected squeue output line: {line!r}")
        job_id, array_id, state, cwd, command = (field.strip() for field in fields)
        state = state.split()[0].upper() if state else ""
        if state in _DONE:
            continue
        rows.append(
            (
                job_id,
                array_id or job_id,
                "running" if state in _RUNNING else "queued",
                cwd if cwd.startswith("/") else None,
                "" if command == "(null)" else command,
            )
        )
    return rows


def batch_script(job_id: str) -> str:
    """The batch script slurmctld holds for a job; "" for jobs without one (srun, salloc)."""
    scontrol = which("scontrol")
    if scontrol is None:
        return ""
    try:
        # Prints an error but exits 0 for an unknown job: an empty stdout is "no script".
        return run([scontrol, "write", "batch_script", job_id, "-"])
    except QueueError:
        return ""  # not a batch job, or it left the queue between the two calls
