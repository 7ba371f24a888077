"""`rewrite`: replace literal old paths in code, justfiles and configs by their new ones.

Old paths are found as whole path words that start at root (`out/...`, `./out/...`, or the
absolute root) and are rewritten through the alias table: the word itself, or its longest
ancestor for a path below a moved directory. A word that merely contains an old path
(`myout/x`, `out/x.bak`) is left alone.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .aliases import AliasTable
from .config import Config

MAX_BYTES = 2_000_000  # larger files are data, not code
SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".outfs"}
PATH_CHARS = r"[\w.\-/+=@%,]"
# Template holes in paths: just `{{x}}`, Python `{x}`, shell `${x}`/`$x`, globs `*`.
HOLE = re.compile(r"\{\{[^{}]*\}\}|\{[^{}/]*\}|\$\{\w+\}|\$\w+|\*")


@dataclass
class FileRewrite:
    path: Path
    old: str
    new: str
    count: int
    by_hand: list[str] = field(default_factory=list)  # templates a rule cannot rewrite

    def diff(self, project: Path) -> str:
        name = os.path.relpath(self.path, project)
        lines = difflib.unified_diff(
            self.old.splitlines(keepends=True),
            self.new.splitlines(keepends=True),
            f"a/{name}",
            f"b/{name}",
        )
        return "".join(lines)


def plan_rewrites(config: Config, paths: Iterable[Path] = ()) -> list[FileRewrite]:
    """The rewrites for `paths` (files or directories; default: the project's text files)."""
    mapping = {config.shown(a.legacy): config.shown(a.target) for a in AliasTable.load(config)}
    if not mapping:
        return []
    rewriter = _Rewriter(config, mapping)
    rewrites = []
    for file in _text_files(config, list(paths) or [config.project]):
        result = rewriter.rewrite_file(file)
        if result is not None:
            rewrites.append(result)
    return rewrites


def write_rewrites(rewrites: Iterable[FileRewrite]) -> None:
    for rw in rewrites:
        tmp = rw.path.with_name(f".{rw.path.name}.outfs-tmp")
        tmp.write_text(rw.new)
        os.chmod(tmp, os.stat(rw.path).st_mode)
        os.replace(tmp, rw.path)


class _Rewriter:
    def __init__(self, config: Config, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self.root_shown = config.root_shown
        self.root_abs = str(config.root)
        self.rules = config.rules
        self.word = re.compile(f"{config.root_word_head()}(?:{PATH_CHARS}|{HOLE.pattern})*")
        self.by_hand: list[str] = []

    def rewrite_file(self, file: Path) -> FileRewrite | None:
        try:
            text = file.read_text()
        except (UnicodeDecodeError, OSError):
            return None
        count = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal count
            new = self._rewrite_word(match.group(0))
            count += new != match.group(0)
            return new

        self.by_hand = []
        new = self.word.sub(replace, text)
        if not count and not self.by_hand:
            return None
        return FileRewrite(file, text, new, count, self.by_hand)

    def _rewrite_word(self, word: str) -> str:
        prefix = "./" if word.startswith("./") else ""
        body = word[len(prefix) :]
        absolute = body.startswith(self.root_abs + "/")
        shown = self.root_shown + body[len(self.root_abs) :] if absolute else body
        trail = shown[len(shown.rstrip(".,")) :]  # a sentence's full stop is not the path's
        shown = shown[: len(shown) - len(trail)]
        if HOLE.search(shown):
            new = self._rewrite_template(shown)
            return word if new is None else prefix + new + trail
        parts = shown.split("/")
        for i in range(len(parts), 1, -1):
            head = "/".join(parts[:i])
            if head in self.mapping:
                new = "/".join([self.mapping[head], *parts[i:]])
                if absolute:
                    new = self.root_abs + new[len(self.root_shown) :]
                return prefix + new + trail
        return word

    def _rewrite_template(self, shown: str) -> str | None:
        """A path with holes (`out/v_hack_{{name}}.st`) through the first rule it matches."""
        holes: list[str] = []

        def mask(match: re.Match[str]) -> str:
            holes.append(match.group(0))
            return f"\0{len(holes) - 1}\0"

        rel = HOLE.sub(mask, shown)[len(self.root_shown) + 1 :]
        for rule in self.rules:
            values = rule.match.match(rel)
            if values is None:
                continue
            if rule.lookup is not None:  # the target depends on each run's log
                self.by_hand.append(f"{shown}: rule {rule.number} needs `{rule.lookup.text}`")
                return None
            new = rule.to.render(values)
            return f"{self.root_shown}/" + re.sub("\0(\\d+)\0", lambda m: holes[int(m[1])], new)
        return None


def _text_files(config: Config, paths: list[Path]) -> Iterator[Path]:
    root = config.root.resolve()
    for path in paths:
        path = path.resolve()
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from (f for f in _files_below(path) if not f.is_relative_to(root))


def _files_below(directory: Path) -> Iterator[Path]:
    tracked = _git_files(directory)
    if tracked is not None:
        yield from (f for f in tracked if _is_text(f))
        return
    for dirpath, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            file = Path(dirpath, name)
            if _is_text(file):
                yield file


def _git_files(directory: Path) -> list[Path] | None:
    """Files git tracks or would track (ignored ones excluded), when this is a checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=directory,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [directory / os.fsdecode(name) for name in out.split(b"\0") if name]


def _is_text(file: Path) -> bool:
    try:
        if file.is_symlink() or file.stat().st_size > MAX_BYTES:
            return False
        with open(file, "rb") as fh:
            return b"\0" not in fh.read(8192)
    except OSError:
        return False
