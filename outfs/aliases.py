"""The alias table: every old path (legacy) and where its entry lives now (target).

`<root>/.outfs/aliases.json` holds what migrations moved; `added/*.jsonl` holds what the shim
placed by rule when a job wrote a new file at an old path. Both are relative to root.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from .config import Config
from .errors import OutfsError
from .plan import Move
from .shim.table import TABLE_FILE, TableError, read_table
from .state import atomic_write_json

TABLE_VERSION = 1


@dataclass(frozen=True)
class Alias:
    legacy: str
    target: str
    kind: str  # "file" | "dir"

    def to_json(self) -> dict[str, str]:
        return {"legacy": self.legacy, "target": self.target, "kind": self.kind}


class AliasTable:
    """The merged table of one root, keyed by legacy path."""

    def __init__(self, config: Config, aliases: dict[str, Alias]) -> None:
        self.config = config
        self.aliases = aliases

    @classmethod
    def load(cls, config: Config) -> AliasTable:
        """The table the shim sees (`aliases.json` merged with `added/`); empty before the
        first migration."""
        if not (config.state / TABLE_FILE).exists():
            return cls(config, {})
        try:
            _header, items = read_table(config.state)
        except TableError as exc:
            raise OutfsError(f"{exc}; restore it from a backup or run `outfs rollback`") from None
        aliases = {
            a["legacy"]: Alias(a["legacy"], a["target"], a.get("kind", "file")) for a in items
        }
        return cls(config, aliases)

    def __len__(self) -> int:
        return len(self.aliases)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self.aliases.values(), key=lambda a: a.legacy))

    def targets(self) -> dict[str, str]:
        return {a.legacy: a.target for a in self.aliases.values()}

    def add_moves(self, moves: Iterable[Move]) -> None:
        for move in moves:
            self.aliases[move.source] = Alias(move.source, move.target, move.kind)

    def save(self) -> None:
        """Write the whole table atomically (added entries included: they are folded in)."""
        config = self.config
        atomic_write_json(
            config.state / TABLE_FILE,
            {
                "version": TABLE_VERSION,
                "root": str(config.root),
                "project": os.path.relpath(config.project, config.root),
                "rules": [rule.spec() for rule in config.rules],
                "keep": [pattern.text for pattern in config.keep],
                "aliases": [a.to_json() for a in self],
            },
        )
