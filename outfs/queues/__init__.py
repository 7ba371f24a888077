"""Queue adapters: which queued or running jobs may still name an old path.

`detect(config.queue)` gives the queues to ask; `job_paths(job)` the paths a job names.
"""

from __future__ import annotations

from outfs.errors import ConfigError
from outfs.queues.api import Job, Queue, QueueError, job_paths
from outfs.queues.pueue import Pueue
from outfs.queues.slurm import Slurm
from outfs.queues.tsp import Tsp

__all__ = ["ADAPTERS", "Job", "Queue", "QueueError", "detect", "job_paths"]

ADAPTERS: dict[str, type[Queue]] = {"pueue": Pueue, "slurm": Slurm, "tsp": Tsp}


def detect(name: str = "auto") -> list[Queue]:
    """The queues to ask for `queue = name`.

    "auto": every queue whose client is installed here; "none": no queue at all (the user
    vouches for an empty queue); a queue's name: that one, which must be installed, because
    silently asking nothing would let `outfs finish` remove the shim under a waiting job.
    """
    if name == "none":
        return []
    if name == "auto":
        return [queue for queue in (cls() for cls in ADAPTERS.values()) if queue.available()]
    cls = ADAPTERS.get(name)
    if cls is None:
        choices = ", ".join(["auto", "none", *ADAPTERS])
        raise ConfigError("configuration", "queue", f"unknown queue {name!r}; use one of {choices}")
    queue = cls()
    if not queue.available():
        raise QueueError(
            f"queue = {name!r} is configured but its client is not installed on this machine; "
            "run outfs where the queue's commands work, or set queue = 'auto' or 'none'"
        )
    return [queue]
