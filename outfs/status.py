"""`status`: where a migration stands, in one look."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import Config
from .journal import Journal
from .migrate import shim_envs
from .usage import usage_report

PHASES = {
    "not-migrated": "not migrated",
    "interrupted": "interrupted (run `outfs migrate --now` to finish it)",
    "active": "active: the shim resolves old paths",
    "finished": "finished: data moved, no shim left in any environment",
}


@dataclass
class Status:
    phase: str  # a key of PHASES
    aliases: int
    envs: list[str]
    live_processes: list[str]
    queue_references: list[str]
    deferred_moves: int
    warnings: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return PHASES[self.phase]

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "warnings"}


def status(config: Config) -> Status:
    envs = shim_envs(config)
    pending = Journal.load(config.state).pending()
    report = usage_report(config)
    if pending:
        phase = "interrupted"
    elif envs:
        phase = "active"
    elif report.uses:
        phase = "finished"
    else:
        phase = "not-migrated"
    jobs = {ref for use in report.uses for ref in use.referenced_by if not ref.startswith("pid:")}
    return Status(
        phase, len(report.uses), envs, report.live_pids, sorted(jobs), len(pending), report.warnings
    )
