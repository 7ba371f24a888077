"""`migrate --now`, `rollback` and `verify`: the data side of a migration.

Order matters for queued jobs: every job environment is checked, the alias table is
written, the shim goes into every environment, the journal is written, and only then does
anything move. A job starting in between finds a target missing and uses its old path.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .aliases import AliasTable
from .config import Config
from .errors import OutfsError
from .journal import Journal, Mover, dirs_to_create, parents_of, remove_empty_dirs
from .plan import Move, Plan, make_plan
from .state import atomic_write_json, exclusive_lock, read_json

Progress = Callable[[Move], None]
ENVS_FILE = "envs.json"


def current_plan(config: Config) -> Plan:
    """The plan for root as it is now, knowing what earlier migrations did."""
    return make_plan(config, AliasTable.load(config).targets())


@dataclass
class MigrateResult:
    plan: Plan
    moved: list[Move] = field(default_factory=list)
    resumed: list[Move] = field(default_factory=list)  # finished for an interrupted run
    envs: list[Path] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not self.moved and not self.resumed


def migrate_now(config: Config, progress: Progress | None = None) -> MigrateResult:
    """Move every planned entry now; safe to run again (an interrupted run is finished)."""
    with exclusive_lock(config.state, "migrate --now"):
        journal = Journal.load(config.state)
        resumed = _run_moves(config, journal, journal.pending(), progress)
        table = AliasTable.load(config)
        plan = make_plan(config, table.targets())
        result = MigrateResult(plan, resumed=resumed)
        if not plan.moves:
            return result
        check_envs(config)  # refuse before writing anything if a job env cannot load the shim
        # The table first: a job starting before the moves finds a target missing and uses
        # the old path, whereas a shim without its table would warn.
        table.add_moves(plan.moves)
        table.save()
        result.envs = install_shims(config)
        journal.begin(plan.moves, dirs_to_create(config.root, plan.moves))
        result.moved = _run_moves(config, journal, plan.moves, progress)
        return result


def migrate_when_idle(
    config: Config,
    progress: Progress | None = None,
    poll: float = 10.0,
    on_wait: Callable[[int], None] | None = None,
) -> MigrateResult:
    """Wait until no queued or running job remains, then migrate with no shim: nothing
    queued can hold an old path any more."""
    from .usage import pending_jobs

    warnings: list[str] = []
    while jobs := pending_jobs(config, warnings):
        if on_wait:
            on_wait(len(jobs))
        time.sleep(poll)
    if warnings:  # an unreachable queue is no idle queue: its jobs may name old paths
        raise OutfsError(
            f"{warnings[0]}; --when-idle cannot tell the queue is idle, so nothing moved"
        )
    return migrate_now(dataclasses.replace(config, envs=()), progress)


def _run_moves(
    config: Config, journal: Journal, moves: list[Move], progress: Progress | None
) -> list[Move]:
    if not moves:
        return []
    moved = []
    mover = Mover(config.root)
    for move in moves:
        if mover.move(move.source, move.target):
            moved.append(move)
        if progress:
            progress(move)
    # Directories a move emptied (probe_distill/) go: the scheme drops that nesting.
    remove_empty_dirs(config.root, parents_of(m.source for m in moves))
    journal.complete()
    return moved


def check_envs(config: Config) -> None:
    if config.envs:
        from .shim import install as shim_install

        for env in config.envs:
            shim_install.check(env)


def install_shims(config: Config) -> list[Path]:
    """Put the shim into every job environment and remember where, for finish/rollback."""
    if config.envs:
        from .shim import install as shim_install

        for env in config.envs:
            shim_install.install(env, config.root, config.state)
    envs = sorted({*shim_envs(config), *(str(e) for e in config.envs)})
    atomic_write_json(config.state / ENVS_FILE, envs)
    return list(config.envs)


def shim_envs(config: Config) -> list[str]:
    """Every environment a migration of this root installed the shim into."""
    return list(read_json(config.state / ENVS_FILE) or [])


def remove_shims(config: Config, envs: list[Path] | None = None) -> list[Path]:
    """Take this root's shim out of `envs` (default: every env it went into); the record of
    where it still is shrinks to match."""
    from .shim import install as shim_install

    recorded = [Path(e) for e in shim_envs(config)]
    chosen = recorded if envs is None else [Path(e).absolute() for e in envs]
    removed = []
    for env in chosen:
        if env.exists():
            shim_install.remove(env, config.root)
            removed.append(env)
    remaining = [str(e) for e in recorded if e not in chosen]
    atomic_write_json(config.state / ENVS_FILE, remaining)
    return removed


@dataclass
class RollbackResult:
    restored: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    envs: list[Path] = field(default_factory=list)


def rollback(config: Config, progress: Progress | None = None) -> RollbackResult:
    """Move every aliased entry back to its old path and remove the shim."""
    result = RollbackResult()
    if not config.state.is_dir():
        return result
    with exclusive_lock(config.state, "rollback"):
        table = AliasTable.load(config)
        journal = Journal.load(config.state)
        mover = Mover(config.root)
        for alias in table:
            try:
                if mover.move(alias.target, alias.legacy):
                    result.restored.append(alias.legacy)
            except OutfsError as exc:
                result.problems.append(str(exc))
            if progress:
                progress(Move(alias.target, alias.legacy, alias.kind))
        # Directories migrations made, and those the shim made for new files by rule.
        moved = journal.moved_sources()
        placed_by_shim = [a.target for a in table if a.legacy not in moved]
        remove_empty_dirs(config.root, {*journal.created_dirs(), *parents_of(placed_by_shim)})
        result.envs = remove_shims(config)
        if not result.problems:  # the tree is as it was before the first migration
            shutil.rmtree(config.state)
    return result


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    aliases: int = 0
    unmapped: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(config: Config) -> VerifyReport:
    """The acceptance checks: nothing loose but unmapped entries, every alias target there,
    every moved entry present exactly once."""
    table = AliasTable.load(config)
    plan = make_plan(config, table.targets())
    report = VerifyReport(aliases=len(table), unmapped=len(plan.unmapped))
    shown = config.shown
    for alias in table:
        legacy_here = os.path.lexists(config.root / alias.legacy)
        target_here = os.path.lexists(config.root / alias.target)
        if not target_here:
            report.problems.append(
                f"{shown(alias.target)} is missing (alias of "
                f"{shown(alias.legacy)}{'' if legacy_here else '; lost'})"
            )
        elif legacy_here:
            report.problems.append(
                f"{shown(alias.legacy)} exists again beside its target "
                f"{shown(alias.target)}: one of them is a stray copy"
            )
    # Whatever is loose at the top of root and not unmapped is a pending move or a conflict
    # (kept entries and those a rule maps onto themselves are where they belong).
    for move in plan.moves:
        report.problems.append(
            f"{shown(move.source)} still waits to move to {shown(move.target)}: "
            "run `outfs migrate --now`"
        )
    for conflict in plan.conflicts:
        report.problems.append(f"{shown(conflict.source)}: {conflict.reason}")
    return report
