"""The plan: scan `root`, apply `keep` and the rules, and say what would move.

Nothing here changes the filesystem. Paths inside a Plan are relative to root (POSIX);
`Plan.to_json` shows them relative to the project, as jobs name them (`out/x`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import STATE_DIR, Config
from .patterns import ancestors, covers
from .rules import LookupCache, map_entry

NO_RULE = "no rule matches"


@dataclass(frozen=True)
class Move:
    source: str
    target: str
    kind: str  # "file" | "dir"
    bytes: int = 0

    def to_json(self, config: Config) -> dict[str, Any]:
        return {
            "from": config.shown(self.source),
            "to": config.shown(self.target),
            "kind": self.kind,
            "bytes": self.bytes,
        }


@dataclass(frozen=True)
class Unmapped:
    path: str
    reason: str

    def to_json(self, config: Config) -> dict[str, Any]:
        return {"path": config.shown(self.path), "reason": self.reason}


@dataclass(frozen=True)
class Conflict:
    source: str
    target: str
    reason: str

    def to_json(self, config: Config) -> dict[str, Any]:
        return {
            "from": config.shown(self.source),
            "to": config.shown(self.target),
            "reason": self.reason,
        }


@dataclass
class Plan:
    config: Config
    moves: list[Move] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    done: list[Move] = field(default_factory=list)  # migrated earlier: source gone, target here

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "moves": [m.to_json(c) for m in self.moves],
            "unmapped": [u.to_json(c) for u in self.unmapped],
            "conflicts": [x.to_json(c) for x in self.conflicts],
            "done": [m.to_json(c) for m in self.done],
        }

    @property
    def total_bytes(self) -> int:
        return sum(m.bytes for m in self.moves)


def make_plan(config: Config, known: Mapping[str, str] | None = None) -> Plan:
    """Plan the migration of `config.root`. `known` maps legacy → target of earlier migrations."""
    known = dict(known or {})
    scanner = _Scanner(config, protected=set(known.values()))
    candidates, unmapped = scanner.scan("")
    plan = Plan(config, unmapped=unmapped)
    _settle(plan, candidates)
    plan.done = _already_done(config.root, known)
    return plan


@dataclass
class _Found:
    candidates: list[Move] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    settled: bool = False  # something below was kept, protected or mapped by a rule


class _Scanner:
    def __init__(self, config: Config, protected: set[str]) -> None:
        self.config = config
        self.protected = protected
        self.lookups = LookupCache(config.project)
        # `keep = ["vhack", "runs", ...]`: plain names are a set lookup, not a regex each.
        self.keep_names = {p.text for p in config.keep if not p.fields and not p.has_wildcards}
        self.keep_patterns = [p for p in config.keep if p.text not in self.keep_names]

    def scan(self, rel_dir: str) -> tuple[list[Move], list[Unmapped]]:
        found = self._scan_dir(rel_dir)
        return found.candidates, found.unmapped

    def _scan_dir(self, rel_dir: str) -> _Found:
        found = _Found()
        directory = self.config.root / rel_dir if rel_dir else self.config.root
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if rel == STATE_DIR:
                continue
            self._scan_entry(entry, rel, found)
        return found

    def _scan_entry(self, entry: os.DirEntry[str], rel: str, found: _Found) -> None:
        if self._is_kept(rel):
            found.settled = True
            return
        is_dir = entry.is_dir(follow_symlinks=False)
        mapping = map_entry(self.config.rules, rel, self.lookups)
        if mapping is not None:
            found.settled = True
            if mapping.target is None:
                found.unmapped.append(Unmapped(rel, mapping.reason or "lookup failed"))
            elif mapping.target != rel:  # a rule that maps an entry onto itself: in place
                found.candidates.append(_move(entry, rel, mapping.target, is_dir))
        elif is_dir:
            self._descend(rel, found)
        else:
            found.unmapped.append(Unmapped(rel, NO_RULE))

    def _descend(self, rel: str, found: _Found) -> None:
        inner = self._scan_dir(rel)
        found.candidates += inner.candidates
        if inner.settled:
            found.settled = True
            found.unmapped += inner.unmapped
        else:
            # Nothing below is ours: report the directory once, not each file in it.
            count = len(inner.unmapped)
            found.unmapped.append(Unmapped(rel, f"{NO_RULE} (directory, {count} entries)"))

    def _is_kept(self, rel: str) -> bool:
        """`keep` matches the entry or an ancestor; earlier targets are kept implicitly."""
        if rel in self.protected:
            return True
        prefixes = ancestors(rel)
        return any(p in self.keep_names for p in prefixes) or covers(self.keep_patterns, rel)


def _move(entry: os.DirEntry[str], rel: str, target: str, is_dir: bool) -> Move:
    if is_dir:
        return Move(rel, target, "dir", tree_bytes(entry.path))
    return Move(rel, target, "file", entry.stat(follow_symlinks=False).st_size)


def _settle(plan: Plan, candidates: list[Move]) -> None:
    """Split candidates into moves and conflicts."""
    by_target: dict[str, list[Move]] = defaultdict(list)
    for move in candidates:
        by_target[move.target].append(move)
    check = _TargetCheck(plan.config.root, candidates)
    for target, moves in by_target.items():
        if len(moves) > 1:
            sources = ", ".join(plan.config.shown(m.source) for m in moves)
            reason = f"{len(moves)} entries map to this target: {sources}"
            plan.conflicts += [Conflict(m.source, target, reason) for m in moves]
            continue
        move = moves[0]
        reason = check.problem(move)
        if reason:
            plan.conflicts.append(Conflict(move.source, target, reason))
        else:
            plan.moves.append(move)
    plan.moves.sort(key=lambda m: m.source)


class _TargetCheck:
    """Why a move's target cannot be created; parent directories are checked once each."""

    def __init__(self, root: Path, candidates: list[Move]) -> None:
        self.root = str(root)
        self.parent_problem: dict[str, str | None] = {}
        # Moves must not nest: one target inside another's target or source would make the
        # second rename fail halfway through a migration.
        self.busy = {m.target for m in candidates} | {m.source for m in candidates}
        self.enclosing = {a for m in candidates for a in ancestors(m.target)[:-1]}

    def problem(self, move: Move) -> str | None:
        if move.target.startswith(move.source + "/"):
            return "the target lies inside the entry itself"
        if move.target in self.enclosing:
            return "another entry's target lies inside this target"
        outer = next((a for a in ancestors(move.target)[:-1] if a in self.busy), None)
        if outer is not None:
            return f"the target lies inside {outer}, which another entry moves to or from"
        target = os.path.join(self.root, move.target)
        if os.path.lexists(target):
            same = (
                move.kind == "file"
                and os.path.isfile(target)
                and _same_file_content(Path(self.root, move.source), Path(target))
            )
            if same:
                return "destination exists with identical content; delete one copy"
            return "destination exists with different content"
        return self._parent(os.path.dirname(move.target))

    def _parent(self, rel: str) -> str | None:
        if not rel:
            return None
        if rel not in self.parent_problem:
            path = os.path.join(self.root, rel)
            if os.path.isdir(path):
                self.parent_problem[rel] = None
            elif os.path.lexists(path):
                self.parent_problem[rel] = f"{rel} exists and is not a directory"
            else:
                self.parent_problem[rel] = self._parent(os.path.dirname(rel))
        return self.parent_problem[rel]


def _already_done(root: Path, known: Mapping[str, str]) -> list[Move]:
    done = []
    for legacy, target in sorted(known.items()):
        if not os.path.lexists(root / legacy) and os.path.lexists(root / target):
            kind = "dir" if (root / target).is_dir() else "file"
            done.append(Move(legacy, target, kind))
    return done


def tree_bytes(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            # A file that vanished while we looked is skipped: the plan is a snapshot.
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _same_file_content(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return file_sha256(a) == file_sha256(b)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
