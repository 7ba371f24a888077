"""Find and validate the project's configuration: `outfs.toml` or `[tool.outfs]`.

Every mistake raises ConfigError naming the file, the key and the problem, so the CLI can
exit 2 with one clear line instead of a traceback.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .patterns import Pattern, PatternError, compile_pattern
from .rules import Rule

QUEUES = ("auto", "pueue", "slurm", "tsp", "none")
TOP_KEYS = ("root", "keep", "envs", "queue", "rules")
RULE_KEYS = ("match", "to", "lookup")
STATE_DIR = ".outfs"


@dataclass(frozen=True)
class Config:
    """A validated configuration. `project` is the directory holding the config file."""

    file: Path
    project: Path
    root: Path
    rules: tuple[Rule, ...]
    keep: tuple[Pattern, ...]
    envs: tuple[Path, ...]
    queue: str

    @property
    def state(self) -> Path:
        """Where migrations keep their state: inside root, so it travels with the data."""
        return self.root / STATE_DIR

    def shown(self, rel: str) -> str:
        """A path relative to root, as jobs name it: relative to the project (`out/x`)."""
        return (self.root / rel).relative_to(self.project).as_posix() if rel else self.root_shown

    @property
    def root_shown(self) -> str:
        return self.root.relative_to(self.project).as_posix()

    def root_word_head(self) -> str:
        """Regex for the start of a path word under root in free text (`out/`, `./out/`, the
        absolute root), not inside another word: `data/out/x` and `myout/x` do not count."""
        roots = "|".join(re.escape(r) for r in (str(self.root), self.root_shown))
        return rf"(?<![\w\-.])(?<![\w\-]/)(?:\./)?(?:{roots})/"


def find_config(start: Path) -> tuple[Path, dict[str, Any], str]:
    """The nearest config upward from `start`: (file, table, key prefix for messages)."""
    start = start.resolve()
    for directory in (start, *start.parents):
        own = directory / "outfs.toml"
        if own.is_file():
            return own, _read_toml(own), ""
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            table = _read_toml(pyproject).get("tool", {}).get("outfs")
            if table is not None:
                return pyproject, table, "tool.outfs."
    raise ConfigError(
        start,
        "",
        "no outfs configuration found here or in any parent directory; add a [tool.outfs] "
        "table to pyproject.toml or create outfs.toml (see MIGRATION.md), or pass -C DIR",
    )


def load_config(directory: Path | str = ".", config_file: Path | str | None = None) -> Config:
    """Load the configuration for `directory` (searching upward) or from `config_file`.

    Every outfs operation starts here, so this is where the shim steps aside in this
    process: outfs itself must see the real layout, not old paths resolved to new ones.
    """
    from .shim import suspend

    suspend()
    if config_file is not None:
        file = Path(config_file).resolve()
        if not file.is_file():
            raise ConfigError(file, "", "no such configuration file")
        table = _read_toml(file)
        prefix = ""
        if file.name == "pyproject.toml":
            prefix = "tool.outfs."
            table = table.get("tool", {}).get("outfs")
            if table is None:
                raise ConfigError(file, "tool.outfs", "no such table; add [tool.outfs] to it")
        return parse_config(file, table, prefix)
    return parse_config(*find_config(Path(directory)))


def parse_config(file: Path, table: dict[str, Any], prefix: str = "") -> Config:
    """Validate a configuration table read from `file`."""
    check = _Checker(file, prefix)
    check.known_keys(table, TOP_KEYS, "")
    project = file.parent.resolve()
    root_text = check.string(table, "root", default="out")
    root = check.inside_project(project, root_text, "root")
    queue = check.string(table, "queue", default="auto")
    if queue not in QUEUES:
        check.fail("queue", f"unknown queue {queue!r}; use one of {', '.join(QUEUES)}")
    keep = tuple(check.pattern(p, f"keep[{i}]") for i, p in enumerate(check.strings(table, "keep")))
    rules = tuple(_parse_rule(check, spec, i) for i, spec in enumerate(_rule_list(check, table)))
    return Config(
        file=file,
        project=project,
        root=root,
        rules=rules,
        keep=keep,
        envs=_envs(check, table, project),
        queue=queue,
    )


def _rule_list(check: _Checker, table: dict[str, Any]) -> list[Any]:
    rules = table.get("rules", [])
    if not isinstance(rules, list):
        check.fail("rules", "must be an array of tables ([[rules]] entries)")
    return rules


def _parse_rule(check: _Checker, spec: Any, index: int) -> Rule:
    key = f"rules[{index}]"
    if not isinstance(spec, dict):
        check.fail(key, "must be a table with `match` and `to`")
    check.known_keys(spec, RULE_KEYS, key + ".")
    for required in ("match", "to"):
        if required not in spec:
            check.fail(key, f"missing `{required}`")
    # A trailing slash only says "a directory"; the match decides that by what it finds.
    match_text = check.string(spec, "match", key=f"{key}.match").rstrip("/")
    match = check.pattern(match_text, f"{key}.match")
    to = check.pattern(check.string(spec, "to", key=f"{key}.to").rstrip("/"), f"{key}.to")
    lookup = None
    if "lookup" in spec:
        text = check.string(spec, "lookup", key=f"{key}.lookup")
        lookup = check.pattern(text, f"{key}.lookup")
    check.relative(match.text, f"{key}.match", "root")
    check.relative(to.text, f"{key}.to", "root")
    if to.has_wildcards:
        check.fail(f"{key}.to", f"{to.text!r} uses `*` or `**`; a target names fields only")
    bound = set(match.fields) | set(lookup.fields if lookup else ())
    unbound = [f for f in to.fields if f not in bound]
    if unbound:
        check.fail(
            f"{key}.to",
            f"uses {{{unbound[0]}}}, which neither `match` nor `lookup` captures",
        )
    return Rule(number=index + 1, match=match, to=to, lookup=lookup)


def _envs(check: _Checker, table: dict[str, Any], project: Path) -> tuple[Path, ...]:
    if "envs" in table:
        return tuple((project / e).absolute() for e in check.strings(table, "envs"))
    venv = project / ".venv"
    return (venv,) if venv.is_dir() else (Path(sys.prefix),)


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with open(file, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(file, "", f"cannot be read: {exc.strerror}") from None


class _Checker:
    """Raises ConfigError with the file and the full key name (`tool.outfs.rules[2].to`)."""

    def __init__(self, file: Path, prefix: str) -> None:
        self.file, self.prefix = file, prefix

    def fail(self, key: str, problem: str) -> Any:
        raise ConfigError(self.file, self.prefix + key, problem)

    def known_keys(self, table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in known:
                self.fail(where + key, f"unknown key; known keys are {', '.join(known)}")

    def string(self, table: dict[str, Any], name: str, *, default: str = "", key: str = "") -> str:
        value = table.get(name, default)
        if not isinstance(value, str) or not value:
            self.fail(key or name, f"must be a non-empty string, not {value!r}")
        return value

    def strings(self, table: dict[str, Any], name: str) -> list[str]:
        value = table.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(name, "must be an array of non-empty strings")
        return value

    def pattern(self, text: str, key: str) -> Pattern:
        try:
            return compile_pattern(text)
        except PatternError as exc:
            return self.fail(key, str(exc))

    def relative(self, text: str, key: str, base: str) -> None:
        parts = text.split("/")
        if text.startswith("/") or ".." in parts or "" in parts:
            self.fail(key, f"{text!r} must be a plain path relative to {base}, inside it")

    def inside_project(self, project: Path, text: str, key: str) -> Path:
        # Lexically inside the project, not resolved: `out` is often a symlink to a scratch
        # disk, and jobs name it `out/...` all the same.
        root = Path(os.path.normpath(project / text))
        if not root.is_relative_to(project) or root == project:
            self.fail(key, f"{text!r} must name a directory inside the project {project}")
        if not root.is_dir():
            self.fail(key, f"{root} is not a directory; fix `{key}` or run from the right project")
        return root
