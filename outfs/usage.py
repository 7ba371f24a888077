"""Which aliases are still needed: hits recorded by the shim, live processes, queued jobs.

An alias is in use while a queued or running job's command line names it (or a path below
it, or a directory above it), or a live process has resolved it.
"""

from __future__ import annotations

import bisect
import fnmatch
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .aliases import Alias, AliasTable
from .config import Config
from .patterns import ancestors
from .queues import Job, QueueError, detect, job_paths


@dataclass
class AliasUse:
    alias: Alias
    hits: int = 0
    last_hit: str | None = None
    referenced_by: list[str] = field(default_factory=list)

    @property
    def in_use(self) -> bool:
        return bool(self.referenced_by)

    def to_json(self, config: Config) -> dict[str, Any]:
        return {
            "legacy": config.shown(self.alias.legacy),
            "target": config.shown(self.alias.target),
            "kind": self.alias.kind,
            "hits": self.hits,
            "last_hit": self.last_hit,
            "in_use": self.in_use,
            "referenced_by": self.referenced_by,
        }


@dataclass
class UsageReport:
    uses: list[AliasUse]
    jobs: list[Job]
    live_pids: list[str]  # "pid:123" (or "pid:123@host" from another machine)
    warnings: list[str] = field(default_factory=list)

    def in_use(self) -> list[AliasUse]:
        return [u for u in self.uses if u.in_use]


def usage_report(config: Config, jobs: Iterable[Job] | None = None) -> UsageReport:
    """Hits, last hit and references for every alias of `config.root`."""
    table = AliasTable.load(config)
    uses = {a.legacy: AliasUse(a) for a in table}
    live = _count_process_hits(config, uses)
    warnings: list[str] = []
    pending = list(jobs) if jobs is not None else pending_jobs(config, warnings)
    matcher = _LegacyMatcher(sorted(uses))
    for job in pending:
        for legacy in matcher.named_by(config, job):
            uses[legacy].referenced_by.append(job.ref)
    return UsageReport(list(uses.values()), pending, live, warnings)


def pending_jobs(config: Config, warnings: list[str]) -> list[Job]:
    """Jobs of the configured queues. With `queue = "auto"` a client that is installed but
    cannot reach its daemon (Slurm's tools on a machine with no cluster) is skipped with a
    warning; a queue named in the config must answer."""
    jobs: list[Job] = []
    for queue in detect(config.queue):
        try:
            jobs += queue.pending_jobs()
        except QueueError as exc:
            if config.queue != "auto":
                raise
            reason = str(exc).strip().splitlines()[-1]  # a daemon's last word says why
            warnings.append(
                f"{queue.name} could not be asked ({reason}), so its jobs are not counted; "
                "set `queue` in the config to the queue you use"
            )
    return jobs


def _count_process_hits(config: Config, uses: dict[str, AliasUse]) -> list[str]:
    from .shim.usage import read_usage

    live = []
    here = os.uname().nodename
    for proc in read_usage(config.state):
        ref = f"pid:{proc.pid}" if proc.host == here else f"pid:{proc.pid}@{proc.host}"
        if proc.alive:
            live.append(ref)
        for legacy, when in proc.hits.items():
            use = uses.get(legacy)
            if use is None:
                continue
            use.hits += 1
            use.last_hit = max(use.last_hit or when, when)
            if proc.alive:
                use.referenced_by.append(ref)
    return live


class _LegacyMatcher:
    """Finds the aliases a path names: itself, an ancestor, a descendant, or a glob's match."""

    def __init__(self, legacies: list[str]) -> None:
        self.legacies = legacies  # sorted
        self.exact = set(legacies)

    def named_by(self, config: Config, job: Job) -> list[str]:
        found: dict[str, None] = {}
        for path in [*job_paths(job), *_embedded_paths(config, job.command)]:
            rel = _relative_to_root(config, job, path)
            if rel is not None:
                found.update(dict.fromkeys(self._match(rel)))
        return list(found)

    def _match(self, rel: str) -> list[str]:
        if any(ch in rel for ch in "*?["):
            return fnmatch.filter(self.legacies, rel)
        hits = [a for a in ancestors(rel) if a in self.exact]
        start = bisect.bisect_left(self.legacies, rel + "/")
        for legacy in self.legacies[start:]:
            if not legacy.startswith(rel + "/"):
                break
            hits.append(legacy)
        return hits


def _embedded_paths(config: Config, command: str) -> list[str]:
    """Paths under root written inside other words: `python -c "open('out/a.pt')"`,
    `--cfg={'ckpt': 'out/a.pt'}`. Words that are paths themselves come from job_paths."""
    word = config.root_word_head() + r"[^\s'\"`;|&<>(){},]*"
    return [m.group(0) for m in re.finditer(word, command)]


def _relative_to_root(config: Config, job: Job, path: str) -> str | None:
    base = job.cwd or str(config.project)  # a queue that hides the cwd: assume the project
    full = os.path.normpath(os.path.join(base, path))
    rel = os.path.relpath(full, config.root)
    return None if rel == "." or rel.startswith("..") else rel
