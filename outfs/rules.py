"""Rules: where one entry of `root` belongs (`match` → `to`, with an optional `lookup`).

Standard library only: the shim uses this module to place a new file that a job writes at
an old path, resolving the rule's lookup at write time.
"""

from __future__ import annotations

import bisect
import itertools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .patterns import Pattern, compile_pattern


@dataclass(frozen=True)
class Rule:
    """One `[[rules]]` entry, compiled. `number` is its 1-based position in the config."""

    number: int
    match: Pattern
    to: Pattern
    lookup: Pattern | None = None

    def spec(self) -> dict[str, str | None]:
        """The rule as written in the config (stored in the alias table for the shim)."""
        return {
            "match": self.match.text,
            "to": self.to.text,
            "lookup": self.lookup.text if self.lookup else None,
        }


@dataclass(frozen=True)
class Mapping_:
    """Where a matched entry goes: `target` (relative to root), or why it cannot go."""

    rule: Rule
    target: str | None
    reason: str | None = None


@dataclass
class LookupCache:
    """Candidate paths per lookup pattern, listed once: a plan maps thousands of entries."""

    project: Path
    _listings: dict[str, _Listing] = field(default_factory=dict)

    def candidates(self, pattern: Pattern) -> _Listing:
        if pattern.text not in self._listings:
            self._listings[pattern.text] = _Listing(_list_candidates(self.project, pattern))
        return self._listings[pattern.text]


class _Listing:
    """Paths joined into one string, so finding those that contain a text is one C scan
    per entry instead of a Python loop over every candidate (thousands of runs by logs)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.blob = "\n".join(paths)
        self.starts = list(itertools.accumulate((len(p) + 1 for p in paths[:-1]), initial=0))
        self.searchable = not any("\n" in p for p in paths)

    def containing(self, needle: str) -> list[str]:
        if not needle or not self.searchable:
            return self.paths
        hits: dict[int, None] = {}
        i = self.blob.find(needle)
        while i >= 0:
            hits[bisect.bisect_right(self.starts, i) - 1] = None
            i = self.blob.find(needle, i + 1)
        return [self.paths[line] for line in hits]


def compile_rules(specs: Iterable[Mapping[str, str | None]]) -> list[Rule]:
    """Rules from their stored form (`spec()`); the config module validates user input."""
    return [
        Rule(
            number=i,
            match=compile_pattern(str(spec["match"])),
            to=compile_pattern(str(spec["to"])),
            lookup=compile_pattern(str(spec["lookup"])) if spec.get("lookup") else None,
        )
        for i, spec in enumerate(specs, start=1)
    ]


def map_entry(rules: Iterable[Rule], rel: str, lookups: LookupCache) -> Mapping_ | None:
    """Apply the first rule whose `match` matches `rel`; None when no rule matches."""
    for rule in rules:
        if not rel.startswith(rule.match.literal_head):
            continue  # cheaper than the regex, and most rules fail on their first letters
        values = rule.match.match(rel)
        if values is not None:
            return _apply(rule, values, lookups)
    return None


def _apply(rule: Rule, values: dict[str, str], lookups: LookupCache) -> Mapping_:
    if rule.lookup is None:
        return Mapping_(rule, rule.to.render(values))
    hits = find_lookup(rule.lookup, values, lookups)
    shown = rule.lookup.describe(values)
    if not hits:
        return Mapping_(rule, None, f"lookup {shown} matched nothing")
    if len(hits) > 1:
        paths = ", ".join(path for path, _ in hits)
        return Mapping_(rule, None, f"lookup {shown} matched several: {paths}")
    return Mapping_(rule, rule.to.render({**values, **hits[0][1]}))


def find_lookup(
    lookup: Pattern, values: Mapping[str, str], lookups: LookupCache
) -> list[tuple[str, dict[str, str]]]:
    """The existing paths (relative to the project) the lookup names for these values,
    each with the fields it captures."""
    bound_values = {k: v for k, v in values.items() if k in lookup.fields}
    # Every bound value appears literally in a hit: search for the longest one first.
    needles = sorted(bound_values.values(), key=len, reverse=True)
    listing = lookups.candidates(lookup)
    exact: Pattern | None = None  # the lookup with these values bound, compiled if needed
    hits = []
    for path in listing.containing(needles[0] if needles else ""):
        if not all(n in path for n in needles[1:]):
            continue
        # The unbound pattern's parse usually agrees with the values; only when it does
        # not is a bound pattern compiled (a compile per entry dominated large plans).
        quick = lookup.match(path)
        if quick is not None and all(quick[k] == v for k, v in bound_values.items()):
            hits.append((path, {k: v for k, v in quick.items() if k not in bound_values}))
            continue
        exact = exact or lookup.bind(bound_values)
        captured = exact.match(path)
        if captured is not None:
            hits.append((path, captured))
    return hits


def _list_candidates(project: Path, pattern: Pattern) -> list[str]:
    """Every path below the pattern's literal prefix at the depth the pattern allows."""
    prefix = pattern.literal_prefix()
    depth = pattern.depth()
    remaining = None if depth is None else depth - (prefix.count("/") + 1 if prefix else 0)
    found: list[str] = []
    _walk(project / prefix if prefix else project, prefix, remaining, found)
    return found


def _walk(directory: Path, rel: str, remaining: int | None, found: list[str]) -> None:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return  # a missing lookup directory simply matches nothing
    for entry in entries:
        path = f"{rel}/{entry.name}" if rel else entry.name
        if remaining is None or remaining == 1:
            found.append(path)
        if (remaining is None or remaining > 1) and entry.is_dir(follow_symlinks=False):
            _walk(Path(entry.path), path, None if remaining is None else remaining - 1, found)
