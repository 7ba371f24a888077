"""Terminal output shared by the CLI and the demo: plans, migrations, progress, warnings."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from .config import Config
from .plan import Plan

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

# Above this many rows, plain lines: a rich table of 100k rows takes longer than the plan.
RICH_ROWS = 300


def esc(value: object) -> str:
    """Text from outside (paths, messages) shown literally: `[tool.outfs]` is no markup."""
    return escape(str(value))


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def migrate_with_progress(config: Config, quiet: bool, idle_poll: float | None = None) -> Any:
    """migrate --now, or with `idle_poll` --when-idle, under a progress bar unless quiet."""
    from .migrate import migrate_now, migrate_when_idle

    last = [-1]

    def waiting(jobs: int) -> None:
        if jobs != last[0]:  # say it when it changes, not at every poll
            err.print(f"waiting: {jobs} jobs queued or running")
            last[0] = jobs

    def migrate(progress: Any) -> Any:
        if idle_poll is None:
            return migrate_now(config, progress)
        return migrate_when_idle(config, progress, poll=idle_poll, on_wait=waiting)

    if quiet:
        return migrate(None)
    with progress_bar() as bar:
        task = bar.add_task("moving", total=None)
        return migrate(lambda move: bar.advance(task))


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    )


def report_migration(config: Config, result: Any) -> None:
    if result.resumed:
        out.print(f"finished {len(result.resumed)} moves of an interrupted migration")
    if result.nothing_to_do:
        out.print(
            f"nothing to move: {config.root_shown}/ is already migrated "
            f"({len(result.plan.done)} entries done)"
        )
    else:
        for env in result.envs:
            # No `envs` and no .venv: the default is the interpreter outfs runs in; say so.
            default = " (this interpreter's: set `envs` to choose)" if _is_running(env) else ""
            out.print(f"shim installed in [cyan]{esc(env)}[/]{default}")
        size = human_size(sum(m.bytes for m in result.moved))
        out.print(
            f"[green]moved {len(result.moved)} entries[/] ({size}); old paths resolve "
            f"through {config.root_shown}/.outfs/aliases.json"
        )
    show_leftovers(config, result.plan)


def warn(warnings: list[str]) -> None:
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {esc(warning)}", soft_wrap=True)


def _is_running(env: Path) -> bool:
    return Path(env).absolute() == Path(sys.prefix).absolute()


def show_plan(plan: Plan, as_json: bool) -> None:
    if as_json:
        print_json(plan.to_json())
        return
    config = plan.config
    if plan.moves:
        _show_moves(config, plan)
    show_leftovers(config, plan)
    out.print(
        f"{len(plan.moves)} to move ({human_size(plan.total_bytes)}), {len(plan.done)} done, "
        f"{len(plan.unmapped)} unmapped, {len(plan.conflicts)} conflicts"
        + ("; run `outfs migrate --now` to move them" if plan.moves else "")
    )


def _show_moves(config: Config, plan: Plan) -> None:
    rows = [
        (config.shown(m.source), config.shown(m.target), m.kind, human_size(m.bytes))
        for m in plan.moves
    ]
    show_rows(("from", "to", "kind", "size"), rows, title="moves")


def show_rows(columns: tuple[str, ...], rows: list[tuple[str, ...]], title: str = "") -> None:
    """A rich table on a terminal; tab-separated lines for a pipe or a long listing (a rich
    table of 100k rows takes longer than the work it reports)."""
    if len(rows) > RICH_ROWS or not out.is_terminal:
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join(row))
        return
    table = Table(*columns, title=title or None, title_justify="left")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def show_leftovers(config: Config, plan: Plan) -> None:
    if plan.unmapped:
        out.print(f"[yellow]unmapped[/] ({len(plan.unmapped)}, they stay where they are):")
        for u in plan.unmapped:
            out.print(f"  {esc(config.shown(u.path))}: {esc(u.reason)}", soft_wrap=True)
    if plan.conflicts:
        out.print(f"[red]conflicts[/] ({len(plan.conflicts)}, nothing of them moves):")
        for c in plan.conflicts:
            move = f"{config.shown(c.source)} -> {config.shown(c.target)}"
            out.print(f"  {esc(move)}: {esc(c.reason)}", soft_wrap=True)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
