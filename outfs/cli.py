"""The `outfs` command: a thin layer of click and rich over the library API.

User mistakes surface as one line on stderr and the contract's exit status (1 refused or
failed, 2 usage or configuration), never as a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .config import Config, load_config
from .console import (
    err,
    esc,
    migrate_with_progress,
    out,
    print_json,
    progress_bar,
    report_migration,
    show_plan,
    show_rows,
    warn,
)
from .errors import OutfsError
from .migrate import current_plan

F = TypeVar("F", bound=Callable[..., Any])


def _config(ctx: click.Context) -> Config:
    opts = ctx.find_root().params
    sub = ctx.params
    directory = sub.get("directory") or opts.get("directory") or "."
    config_file = sub.get("config_file") or opts.get("config_file")
    return load_config(directory, config_file)


def _location_options(func: F) -> F:
    """-C DIR and --config FILE, accepted before or after the sub-command (like git -C)."""
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(exists=True, dir_okay=False),
        help="Use this config file (pyproject.toml or outfs.toml).",
    )(func)
    return click.option(
        "-C",
        "directory",
        type=click.Path(exists=True, file_okay=False),
        help="Run as if started in DIR.",
    )(func)


def _json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)


# `outfs --help` lists commands in the order a migration uses them, not alphabetically.
COMMAND_ORDER = (
    "plan",
    "migrate",
    "verify",
    "status",
    "aliases",
    "watch",
    "rewrite",
    "finish",
    "rollback",
    "shim",
    "demo",
)


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(self.commands, key=lambda name: (rank.get(name, len(rank)), name))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OutfsError as exc:
            err.print(f"[bold red]outfs:[/] {esc(exc)}", soft_wrap=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:  # safe at any point: the journal lets a rerun finish
            err.print("[bold red]outfs:[/] interrupted; run the same command again to finish")
            ctx.exit(130)
        except BrokenPipeError:  # `outfs aliases | head`: the reader has all it wanted
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes it at exit
            ctx.exit(0)
        except OSError as exc:  # permissions, a full disk: the machine's word, not a bug
            where = f"{exc.filename}: " if exc.filename else ""
            err.print(f"[bold red]outfs:[/] {esc(where)}{esc(exc.strerror or exc)}", soft_wrap=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@_location_options
@click.version_option(package_name="outfs")
def main(directory: str | None, config_file: str | None) -> None:
    """Reorganise an experiment out/ directory now; queued jobs keep their old paths."""


# --------------------------------------------------------------------------- plan / migrate


@main.command()
@_location_options
@_json_option
@click.pass_context
def plan(ctx: click.Context, as_json: bool, **_: Any) -> None:
    """Show what would move, what stays unmapped and why, and conflicts. Changes nothing."""
    show_plan(current_plan(_config(ctx)), as_json)


@main.command()
@_location_options
@_json_option
@click.option("--now", is_flag=True, help="Install the shim, write the alias table, move now.")
@click.option("--when-idle", is_flag=True, help="Wait for an idle queue, then migrate.")
@click.option(
    "--poll",
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="With --when-idle: how often to ask the queue.",
)
@click.pass_context
def migrate(
    ctx: click.Context, now: bool, when_idle: bool, poll: float, as_json: bool, **_: Any
) -> None:
    """Migrate the data (a dry run, like `plan`, without --now)."""
    config = _config(ctx)
    if now and when_idle:
        raise click.UsageError("--now and --when-idle exclude each other")
    if not now and not when_idle:
        show_plan(current_plan(config), as_json)
        return
    result = migrate_with_progress(config, quiet=as_json, idle_poll=poll if when_idle else None)
    if as_json:
        print_json(
            {
                "moved": [m.to_json(config) for m in result.moved + result.resumed],
                **{k: v for k, v in result.plan.to_json().items() if k != "moves"},
                "envs": [str(e) for e in result.envs],
            }
        )
        return
    report_migration(config, result)


# --------------------------------------------------------------------------- verify / rollback


@main.command()
@_location_options
@_json_option
@click.pass_context
def verify(ctx: click.Context, as_json: bool, **_: Any) -> None:
    """Check the result: nothing loose but unmapped entries, every alias target present."""
    from .migrate import verify as run_verify

    config = _config(ctx)
    report = run_verify(config)
    if as_json:
        print_json(dataclasses.asdict(report) | {"ok": report.ok})
    else:
        for problem in report.problems:
            out.print(f"[red]✗[/] {esc(problem)}", soft_wrap=True)
        if report.ok:
            out.print(
                f"[green]✓[/] {config.root_shown}/: {report.aliases} aliases, all targets "
                f"present, nothing loose but {report.unmapped} unmapped entries"
            )
    if not report.ok:
        sys.exit(1)


@main.command()
@_location_options
@click.pass_context
def rollback(ctx: click.Context, **_: Any) -> None:
    """Move everything back to its old path and remove the shim."""
    from .migrate import rollback as run_rollback

    config = _config(ctx)
    with progress_bar() as bar:
        task = bar.add_task("moving back", total=None)
        result = run_rollback(config, progress=lambda move: bar.advance(task))
    for env in result.envs:
        out.print(f"shim removed from [cyan]{esc(env)}[/]")
    out.print(f"restored {len(result.restored)} entries to their old paths")
    for problem in result.problems:
        err.print(f"[red]✗[/] {esc(problem)}", soft_wrap=True)
    if result.problems:
        sys.exit(1)


# --------------------------------------------------------------------------- demo


@main.command()
@click.option(
    "--keep",
    "keep_dir",
    type=click.Path(file_okay=False),
    help="Build the example here and keep it (default: a temporary directory).",
)
def demo(keep_dir: str | None) -> None:
    """Build the built-in example repo and walk through a migration with an old job."""
    from .demo import run_demo

    if keep_dir:
        ok = run_demo(out, Path(keep_dir))
    else:
        with tempfile.TemporaryDirectory(prefix="outfs-demo-") as tmp:
            ok = run_demo(out, Path(tmp) / "repo")
    if not ok:
        sys.exit(1)


# --------------------------------------------------------------------------- aliases / finish


@main.command()
@_location_options
@_json_option
@click.option("--used", "which", flag_value="used", help="Only aliases still in use.")
@click.option("--unused", "which", flag_value="unused", help="Only aliases nothing needs.")
@click.pass_context
def aliases(ctx: click.Context, which: str | None, as_json: bool, **_: Any) -> None:
    """The alias table: hits, last hit, and the jobs and processes that still need each."""
    from .usage import usage_report

    config = _config(ctx)
    report = usage_report(config)
    warn(report.warnings)
    uses = report.uses
    if which:
        uses = [u for u in uses if u.in_use == (which == "used")]
    if as_json:
        print_json([u.to_json(config) for u in uses])
        return
    rows = [
        (
            config.shown(u.alias.legacy),
            config.shown(u.alias.target),
            str(u.hits),
            u.last_hit or "-",
            ", ".join(u.referenced_by) or "-",
        )
        for u in uses
    ]
    show_rows(("legacy", "target", "hits", "last hit", "referenced by"), rows)
    out.print(f"{len(uses)} aliases" + (f" ({which})" if which else ""))


@main.command()
@_location_options
@click.option("--wait", is_flag=True, help="Block until no alias is in use, then finish.")
@click.option("--force", is_flag=True, help="Remove the shim even while aliases are in use.")
@click.pass_context
def finish(ctx: click.Context, wait: bool, force: bool, **_: Any) -> None:
    """Remove the shim from every environment once no alias is in use."""
    from .finish import finish as run_finish

    config = _config(ctx)

    def waiting(report: Any) -> None:
        err.print(f"waiting: {len(report.in_use())} aliases in use …")

    result = run_finish(
        config, force=force, wait=wait, on_wait=waiting, on_warning=lambda w: warn([w])
    )
    for env in result.envs:
        out.print(f"shim removed from [cyan]{esc(env)}[/]")
    if result.forced_past:
        err.print(f"[yellow]warning:[/] forced past {len(result.forced_past)} aliases in use")
    out.print(
        f"finished: the alias table stays in {config.root_shown}/.outfs/ for audit and rollback"
    )


@main.command()
@_location_options
@_json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool, **_: Any) -> None:
    """Phase, environments with the shim, live processes, queue references."""
    from .status import status as read_status

    state = read_status(_config(ctx))
    warn(state.warnings)
    if as_json:
        print_json(state.to_json())
        return
    out.print(f"phase: [bold]{state.description}[/]  ({state.aliases} aliases)")
    out.print(f"shim in: {esc(', '.join(state.envs) or '-')}")
    out.print(f"live processes using it: {', '.join(state.live_processes) or '-'}")
    out.print(f"queued/running jobs naming old paths: {', '.join(state.queue_references) or '-'}")
    if state.deferred_moves:
        out.print(f"moves still to do: {state.deferred_moves}")


# --------------------------------------------------------------------------- shim


@main.group()
def shim() -> None:
    """Install, remove or inspect the shim in one environment by hand."""


def _env_option(func: F) -> F:
    return click.option(
        "--env",
        "env",
        type=click.Path(file_okay=False),
        default=None,
        help="The environment (default: the configured envs).",
    )(func)


def _target_envs(config: Config, env: str | None) -> list[Path]:
    return [Path(env).absolute()] if env else list(config.envs)


@shim.command("install")
@_location_options
@_env_option
@click.pass_context
def shim_install(ctx: click.Context, env: str | None, **_: Any) -> None:
    """Install the shim for this project's root (finish and rollback will remove it)."""
    from .migrate import install_shims

    config = _config(ctx)
    for path in install_shims(dataclasses.replace(config, envs=tuple(_target_envs(config, env)))):
        out.print(f"installed in {esc(path)}")


@shim.command("remove")
@_location_options
@_env_option
@click.pass_context
def shim_remove(ctx: click.Context, env: str | None, **_: Any) -> None:
    """Remove the shim of this project's root."""
    from .migrate import remove_shims

    config = _config(ctx)
    for path in remove_shims(config, _target_envs(config, env)):
        out.print(f"removed from {esc(path)}")


@shim.command("status")
@_location_options
@_env_option
@_json_option
@click.pass_context
def shim_status(ctx: click.Context, env: str | None, as_json: bool, **_: Any) -> None:
    """Which migrations the shim serves in each environment."""
    from .shim import install

    config = _config(ctx)
    served = {str(path): install.installed(path) for path in _target_envs(config, env)}
    if as_json:
        print_json([{"env": path, "migrations": entries} for path, entries in served.items()])
        return
    for path, entries in served.items():
        roots = ", ".join(str(e.get("root")) for e in entries) or "not installed"
        out.print(f"{esc(path)}: {esc(roots)}")


# --------------------------------------------------------------------------- rewrite


@main.command()
@_location_options
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--write", is_flag=True, help="Change the files instead of printing a diff.")
@click.pass_context
def rewrite(ctx: click.Context, paths: tuple[str, ...], write: bool, **_: Any) -> None:
    """Rewrite literal old paths in code, justfiles and configs (a diff unless --write)."""
    from .rewrite import plan_rewrites, write_rewrites

    config = _config(ctx)
    rewrites = plan_rewrites(config, [Path(p) for p in paths])
    count = sum(rw.count for rw in rewrites)
    for rw in rewrites:
        for note in rw.by_hand:
            name = rw.path.relative_to(config.project)
            err.print(f"[yellow]edit by hand[/] {esc(name)}: {esc(note)}", soft_wrap=True)
    if write:
        write_rewrites(rewrites)
        out.print(f"rewrote {count} old paths in {len(rewrites)} files")
        return
    for rw in rewrites:
        click.echo(rw.diff(config.project), nl=False)
    err.print(f"{count} old paths in {len(rewrites)} files; `outfs rewrite --write` applies this")


# --------------------------------------------------------------------------- watch


@main.command()
@_location_options
@click.option(
    "--settle",
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="How long a new file must be closed and quiet before it moves.",
)
@click.pass_context
def watch(ctx: click.Context, settle: float, **_: Any) -> None:
    """Relocate files that processes without the shim write at old paths (until Ctrl-C)."""
    import signal
    import threading

    from .watch import watch as run_watch

    config = _config(ctx)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ready = threading.Event()

    def announce() -> None:  # once inotify watches: a file written earlier goes unseen
        ready.wait()
        err.print(f"watching {config.root_shown}/ for new files at old paths (Ctrl-C stops)")
        err.file.flush()

    threading.Thread(target=announce, daemon=True).start()

    def moved(move: Any) -> None:
        out.print(f"{esc(config.shown(move.source))} -> {esc(config.shown(move.target))}")
        out.file.flush()  # a log follows the watcher live, also through a pipe

    run_watch(
        config,
        settle=settle,
        on_move=moved,
        on_skip=lambda s: err.print(
            f"[yellow]left in place:[/] {esc(s.describe(config))}", soft_wrap=True
        ),
        stop=stop,
        ready=ready,
    )
