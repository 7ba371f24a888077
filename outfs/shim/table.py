"""The alias table as the shim sees it: `aliases.json` merged with `added/*.jsonl`.

Loaded lazily, on a job's first path under root, never at start-up. `read_table` is public so
that `outfs/aliases.py` can share the exact merge rule the shim applies.
"""

from __future__ import annotations

import json
import os
from typing import Any

TABLE_FILE = "aliases.json"
ADDED_DIR = "added"


class TableError(ValueError):
    """`aliases.json` is missing, truncated or not in the design.md format."""


def read_table(state: str | os.PathLike[str]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(header, aliases) of the migration whose state directory is `state`.

    `header` is `aliases.json` without its `aliases` key (version, root, project, rules);
    `aliases` lists `aliases.json`'s items, then those of `added/*.jsonl` (files in name order)
    whose legacy path is not already aliased. Raises TableError when `aliases.json` cannot be
    used; a torn line in an `added` file (a killed writer) is skipped.
    """
    header, items = _read_aliases_json(os.fspath(state))
    seen = {item["legacy"] for item in items}
    for item in read_added(os.fspath(state), {}):
        if item["legacy"] not in seen:
            seen.add(item["legacy"])
            items.append(item)
    return header, items


def _read_aliases_json(state: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    path = os.path.join(state, TABLE_FILE)
    try:
        with open(path, "rb") as fh:
            header = json.loads(fh.read())
        items = header.pop("aliases")
        if not all(item["legacy"] and item["target"] for item in items):
            raise ValueError("an alias without legacy or target")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TableError(f"{path}: {exc}") from None
    return header, items


def read_added(state: str, offsets: dict[str, int]) -> list[dict[str, str]]:
    """Items appended to `added/*.jsonl` past `offsets` (file name → bytes read), which is
    updated: a running job reads only what other processes appended since its last look."""
    directory = os.path.join(state, ADDED_DIR)
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".jsonl"))
    except OSError:
        return []
    items: list[dict[str, str]] = []
    for name in names:
        start = offsets.get(name, 0)
        try:
            with open(os.path.join(directory, name), "rb") as fh:
                fh.seek(start)
                data = fh.read()
        except OSError:
            continue
        end = data.rfind(b"\n") + 1  # whole lines only: the writer may be mid-line
        offsets[name] = start + end
        for line in data[:end].splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a torn line of a killed process, then its next one
            if isinstance(item, dict) and item.get("legacy") and item.get("target"):
                items.append(item)
    return items


def signature(state: str) -> tuple[int, int, int] | None:
    """What changes when `aliases.json` is rewritten (checked at most once a second)."""
    try:
        st = os.stat(os.path.join(state, TABLE_FILE))
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class ResolvingTable:
    """Legacy → (target, kind), relative to root, plus the rules for new files."""

    def __init__(self, header: dict[str, Any], items: list[dict[str, str]]) -> None:
        self.aliases: dict[str, tuple[str, str]] = {
            i["legacy"].strip("/"): (i["target"].strip("/"), i.get("kind", "file")) for i in items
        }
        self.offsets: dict[str, int] = {}  # how far each added/*.jsonl has been read
        self.rule_specs: list[dict[str, Any]] = list(header.get("rules") or [])
        self.keep: list[str] = list(header.get("keep") or [])
        self.project: str = str(header.get("project") or "..")
        self._rules: list[Any] | None = None
        self._keep: list[Any] | None = None
        self._children: dict[str, dict[str, str]] | None = None

    def find(self, rel: str) -> tuple[str, str, str] | None:
        """(legacy, target, rest) for `rel` or the nearest aliased ancestor of it."""
        aliases = self.aliases
        hit = aliases.get(rel)
        if hit is not None:
            return rel, hit[0], ""
        i = rel.rfind("/")
        while i > 0:
            hit = aliases.get(rel[:i])
            if hit is not None:
                return rel[:i], hit[0], rel[i:]
            i = rel.rfind("/", 0, i)
        return None

    def add(self, legacy: str, target: str, kind: str) -> None:
        self.aliases[legacy] = (target, kind)
        self._children = None

    def children(self, rel: str) -> dict[str, str] | None:
        """Name → kind of the aliased entries directly below `rel` ("" for root), when `rel`
        is a proper ancestor of a legacy path (`probe_distill`, whose pools moved)."""
        if self._children is None:
            index: dict[str, dict[str, str]] = {}
            for legacy, (_, kind) in self.aliases.items():
                parent, _, name = legacy.rpartition("/")
                while True:  # up to root itself (""): `out/` lists moved top-level names
                    index.setdefault(parent, {})[name] = kind
                    if not parent:
                        break
                    parent, _, name = parent.rpartition("/")
                    kind = "dir"
            self._children = index
        return self._children.get(rel)

    def rules(self) -> list[Any]:
        """The compiled rules; outfs.rules is imported on the first new file only."""
        if self._rules is None:
            from outfs.rules import compile_rules

            self._rules = compile_rules(self.rule_specs)
        return self._rules

    def kept(self, rel: str) -> bool:
        """True when `rel` or an ancestor matches a `keep` pattern (if the table has any)."""
        if not self.keep:
            return False
        from outfs.patterns import compile_pattern, covers

        if self._keep is None:
            self._keep = [compile_pattern(k) for k in self.keep]
        return covers(self._keep, rel)

    def absorb_added(self, state: str) -> None:
        """Take in what processes appended to `added/` since the last look."""
        for item in read_added(state, self.offsets):
            legacy = item["legacy"].strip("/")
            if legacy not in self.aliases:
                self.add(legacy, item["target"].strip("/"), item.get("kind", "file"))


def load_table(state: str) -> ResolvingTable:
    table = ResolvingTable(*_read_aliases_json(state))
    table.absorb_added(state)
    return table


def append_added(state: str, host: str, pid: int, item: dict[str, str]) -> None:
    """Record an alias the shim created, in this process's own file (no concurrent writer)."""
    directory = os.path.join(state, ADDED_DIR)
    os.makedirs(directory, exist_ok=True)
    append_line(os.path.join(directory, f"{host}-{pid}.jsonl"), item)


def append_line(path: str, item: dict[str, Any]) -> None:
    # One write() of one line on an O_APPEND descriptor: readers never see half a record
    # from a live writer, only a torn last line from a killed one.
    data = (json.dumps(item, separators=(", ", ": ")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
