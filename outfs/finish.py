"""`finish`: remove the shim from every environment once no alias is in use.

The alias table and the journal stay in `<root>/.outfs/` for audit and rollback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
from .errors import OutfsError
from .migrate import remove_shims
from .state import exclusive_lock
from .usage import AliasUse, UsageReport, usage_report

WAIT_POLL_SECONDS = 5.0


@dataclass
class FinishResult:
    envs: list[Path] = field(default_factory=list)
    forced_past: list[AliasUse] = field(default_factory=list)


def finish(
    config: Config,
    *,
    force: bool = False,
    wait: bool = False,
    poll: float = WAIT_POLL_SECONDS,
    on_wait: Callable[[UsageReport], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> FinishResult:
    """Remove the shim everywhere; refuses while an alias is in use, or while a queue that
    may hold jobs on old paths cannot be asked, unless `force`. Under the lock throughout, so
    no migration adds aliases between the check and the removal."""
    with exclusive_lock(config.state, "finish"):
        report = usage_report(config)
        while report.in_use() and wait and not force:
            if on_wait:
                on_wait(report)
            time.sleep(poll)
            report = usage_report(config)
        for warning in report.warnings:
            if on_warning:
                on_warning(warning)
        in_use = report.in_use()
        if in_use and not force:
            raise OutfsError(_refusal(config, in_use))
        if report.warnings and not force:
            raise OutfsError(
                "a queue could not be asked, and its jobs may still name old paths; set "
                '`queue` in the config to the queues you use (or "none"), or pass --force'
            )
        return FinishResult(envs=remove_shims(config), forced_past=in_use)


def _refusal(config: Config, in_use: list[AliasUse]) -> str:
    shown = [
        f"{config.shown(u.alias.legacy)} (by {', '.join(u.referenced_by)})" for u in in_use[:10]
    ]
    more = f" and {len(in_use) - 10} more" if len(in_use) > 10 else ""
    return (
        f"{len(in_use)} aliases are still in use: {'; '.join(shown)}{more}. Wait until those "
        "jobs and processes end (`outfs finish --wait` does), or pass --force to remove the "
        "shim anyway"
    )
