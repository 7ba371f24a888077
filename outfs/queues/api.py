"""The small api every queue adapter implements, and what outfs reads out of a job.

outfs asks a queue one question: which jobs may still run, and what do their command lines
name? An alias is in use while such a job names it (or a path below it), so an adapter must
err on the side of listing a job: a missed job breaks when `outfs finish` removes the shim.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from outfs.errors import OutfsError

JobState = Literal["queued", "running"]

# Data files ML jobs name without a directory (`v_hack_a.safetensors` run from inside out/).
# Scripts (.py, .sh) are left out on purpose: they live in the code, never under root.
DATA_EXTENSIONS = frozenset(
    {
        ".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".gguf", ".onnx", ".h5", ".hdf5",
        ".npy", ".npz", ".pkl", ".pickle", ".json", ".jsonl", ".parquet", ".arrow", ".csv",
        ".tsv", ".yaml", ".yml", ".toml", ".txt", ".log", ".tar", ".gz", ".zip", ".zst",
    }
)  # fmt: skip

# `--flag=value`, `-o=value` and `key=value` (hydra overrides, env assignments before a command).
_ASSIGNMENT = re.compile(r"-{0,2}[A-Za-z_][\w.\-]*=")
# The flag before a word that is a whole shell line: sh -c, bash -lc, sbatch --wrap.
_SHELL_LINE_FLAG = re.compile(r"-[a-z]*c$|--wrap$|--command$")


class QueueError(OutfsError):
    """A queue could not be asked. Refuse rather than guess: its jobs may still name aliases."""


@dataclass(frozen=True)
class Job:
    queue: str  # the adapter's name: "tsp", "slurm", "pueue"
    id: str
    state: JobState
    command: str  # the full command line as the queue will run it (a shell line or a script)
    cwd: str | None  # absolute working directory, None when the queue does not say

    @property
    def ref(self) -> str:
        """How reports name the job, e.g. `tsp:4` in `referenced_by`."""
        return f"{self.queue}:{self.id}"


@runtime_checkable
class Queue(Protocol):
    name: str

    def available(self) -> bool:
        """The queue's client is installed here (cheap; never starts a daemon)."""
        ...

    def pending_jobs(self) -> list[Job]:
        """Jobs that may still run (queued, running, paused, held...), never finished ones.

        Raises QueueError when the queue exists but cannot be asked (daemon down, timeout).
        """
        ...


def job_paths(job: Job) -> list[str]:
    """The path-like words of a job's command, absolute and normalised against its cwd.

    Relative paths stay relative when the queue does not report a cwd. A word is path-like
    when it contains `/` or ends with a data extension; `--flag=value` counts as its value.
    Words that are themselves shell lines (`sh -c '... out/a.pt'`) are searched too.
    """
    seen: dict[str, None] = {}  # ordered set: reports list paths in command order
    for word in _path_words(job.command, depth=0):
        path = os.path.expanduser(word) if word.startswith("~") else word
        if job.cwd is not None and not os.path.isabs(path):
            path = os.path.join(job.cwd, path)
        seen.setdefault(os.path.normpath(path))
    return list(seen)


def _path_words(line: str, depth: int) -> Iterator[str]:
    previous = ""
    for word in split_command(line):
        match = _ASSIGNMENT.match(word)
        value = word[match.end() :] if match else word
        # A shell line inside one word (`sh -c '...'`, `bash -lc`, `sbatch --wrap=...`): look
        # inside it. Only there, so a quoted path with spaces is not split into pieces.
        if depth < 3 and (_SHELL_LINE_FLAG.match(previous) or word.startswith("--wrap=")):
            yield from _path_words(value, depth + 1)
        elif _looks_like_path(value):
            yield value
        previous = word


def _looks_like_path(word: str) -> bool:
    if not word or "://" in word or word.startswith("-"):
        return False
    if "/" in word:
        return True
    return os.path.splitext(word)[1].lower() in DATA_EXTENSIONS


def split_command(line: str) -> list[str]:
    """Split a shell line into words; shell operators (`&&`, `;`, `>`) become their own words.

    Queues such as pueue and tsp's listing join arguments with plain spaces, so quotes may
    not balance: fall back to splitting on whitespace rather than failing.
    """
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:
        return line.split()


def which(*names: str) -> str | None:
    """The first of `names` found on PATH."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def run(argv: Sequence[str], *, timeout: float = 15.0, env: dict[str, str] | None = None) -> str:
    """Run a queue's client and return its stdout; any failure is a QueueError naming it."""
    cmd = shlex.join(argv)
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,  # a look-alike binary (moreutils `ts`) must not hang on stdin
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise QueueError(f"`{cmd}` did not answer within {timeout:g} s; is the queue up?") from exc
    except OSError as exc:
        raise QueueError(f"could not run `{cmd}`: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
        raise QueueError(f"`{cmd}` failed: {detail}")
    return proc.stdout
