"""The path pattern language of `match`, `to`, `lookup` and `keep` (CONTRACT.md).

`{field}` captures one or more characters other than `/`; `{field:REGEX}` captures REGEX
(braces inside it are allowed); a field used twice must match the same text; `*` matches
any characters other than `/` without capturing; `**` matches any depth. A pattern compiles
to one anchored regular expression. Standard library only: the shim imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

# Token kinds produced by the tokenizer.
_LITERAL, _FIELD, _STAR, _DEEP = "literal", "field", "star", "deep"
_DEFAULT_FIELD_REGEX = "[^/]+"


class PatternError(ValueError):
    """A pattern that cannot be parsed; the message says where and why."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str = ""  # literal text, or the field name
    regex: str | None = None  # a field's own regex, if given


@dataclass(frozen=True)
class Pattern:
    """One compiled pattern. `fields` lists field names in order of first use."""

    text: str
    tokens: tuple[_Token, ...] = field(repr=False)
    regex: re.Pattern[str] = field(repr=False)
    fields: tuple[str, ...]

    @property
    def has_wildcards(self) -> bool:
        return any(t.kind in (_STAR, _DEEP) for t in self.tokens)

    @property
    def is_deep(self) -> bool:
        return any(t.kind == _DEEP for t in self.tokens)

    def match(self, path: str) -> dict[str, str] | None:
        """The fields captured when `path` matches the whole pattern, else None."""
        m = self.regex.fullmatch(path)
        return None if m is None else {name: m.group(name) for name in self.fields}

    def render(self, values: Mapping[str, str]) -> str:
        """The path this pattern names for `values` (a `to` pattern has no wildcards)."""
        out = []
        for tok in self.tokens:
            if tok.kind == _LITERAL:
                out.append(tok.text)
            elif tok.kind == _FIELD:
                out.append(values[tok.text])
            else:
                raise PatternError(f"{self.text!r}: wildcards cannot be rendered")
        return "".join(out)

    def bind(self, values: Mapping[str, str]) -> Pattern:
        """This pattern with the fields in `values` fixed to their text."""
        tokens = [
            _Token(_LITERAL, values[t.text]) if t.kind == _FIELD and t.text in values else t
            for t in self.tokens
        ]
        return _build(self.text, tokens)

    def describe(self, values: Mapping[str, str] | None = None) -> str:
        """Human form: bound fields substituted, free fields shown as `{name}`."""
        values = values or {}
        parts = []
        for tok in self.tokens:
            if tok.kind == _LITERAL:
                parts.append(tok.text)
            elif tok.kind == _FIELD:
                parts.append(values.get(tok.text, "{" + tok.text + "}"))
            else:
                parts.append("*" if tok.kind == _STAR else "**" + tok.text)
        return "".join(parts)

    @property
    def literal_head(self) -> str:
        """The text every match starts with ('' when the pattern opens with a field)."""
        first = self.tokens[0] if self.tokens else None
        return first.text if first is not None and first.kind == _LITERAL else ""

    def literal_prefix(self) -> str:
        """The leading directories that contain no field or wildcard ('' if none)."""
        first = self.tokens[0] if self.tokens else None
        if first is None or first.kind != _LITERAL:
            return ""
        return first.text.rpartition("/")[0]

    def depth(self) -> int | None:
        """How many path components a match has, or None when `**` allows any depth."""
        if self.is_deep:
            return None
        return self.describe().count("/") + 1


def ancestors(rel: str) -> list[str]:
    """`a/b/c` → `a`, `a/b`, `a/b/c`: the entry and every directory above it (root-relative)."""
    parts = rel.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def covers(patterns: Iterable[Pattern], rel: str) -> bool:
    """A pattern matches `rel` or a directory above it: the semantics of `keep`."""
    prefixes = ancestors(rel)
    return any(p.regex.fullmatch(prefix) for p in patterns for prefix in prefixes)


def compile_pattern(text: str) -> Pattern:
    """Parse `text`; raises PatternError naming the position and the problem."""
    if not text:
        raise PatternError("the pattern is empty")
    return _build(text, list(_tokenize(text)))


def _build(text: str, tokens: list[_Token]) -> Pattern:
    fields: list[str] = []
    parts: list[str] = []
    for tok in tokens:
        if tok.kind == _LITERAL:
            parts.append(re.escape(tok.text))
        elif tok.kind == _STAR:
            parts.append("[^/]*")
        elif tok.kind == _DEEP:
            # `a/**/b` spans zero or more directories, so it also matches `a/b`.
            # `[\s\S]`, not `.`: a name may hold a newline, and `**` spans any name.
            parts.append(r"(?:[\s\S]*/)?" if tok.text == "/" else r"[\s\S]*")
        elif tok.text in fields:
            parts.append(f"(?P={tok.text})")
        else:
            fields.append(tok.text)
            parts.append(f"(?P<{tok.text}>{tok.regex or _DEFAULT_FIELD_REGEX})")
    try:
        regex = re.compile("".join(parts))
    except re.error as exc:
        raise PatternError(f"{text!r}: invalid regular expression: {exc}") from None
    return Pattern(text, tuple(tokens), regex, tuple(fields))


def _tokenize(text: str) -> Iterator[_Token]:
    i, literal = 0, []
    while i < len(text):
        ch = text[i]
        if ch in "{}*" and literal:
            yield _Token(_LITERAL, "".join(literal))
            literal = []
        if ch == "{":
            end = _closing_brace(text, i)
            yield _field_token(text, text[i + 1 : end], i)
            i = end + 1
        elif ch == "}":
            raise PatternError(f"{text!r}: unmatched '}}' at position {i}")
        elif text.startswith("**/", i) and (i == 0 or text[i - 1] == "/"):
            yield _Token(_DEEP, "/")  # a whole component: it owns the slash after it
            i += 3
        elif text.startswith("**", i):
            yield _Token(_DEEP)
            i += 2
        elif ch == "*":
            yield _Token(_STAR)
            i += 1
        else:
            literal.append(ch)
            i += 1
    if literal:
        yield _Token(_LITERAL, "".join(literal))


def _closing_brace(text: str, start: int) -> int:
    depth, i = 0, start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0:
            return i
        i += 1
    raise PatternError(f"{text!r}: '{{' at position {start} is never closed")


def _field_token(text: str, body: str, pos: int) -> _Token:
    name, colon, regex = body.partition(":")
    if not name.isidentifier():
        raise PatternError(
            f"{text!r}: field name {name!r} at position {pos} must be a Python identifier"
        )
    if colon and not regex:
        raise PatternError(f"{text!r}: field {{{name}:}} has an empty regular expression")
    if regex:
        try:
            re.compile(regex)
        except re.error as exc:
            msg = f"{text!r}: field {{{name}}}: invalid regex {regex!r}: {exc}"
            raise PatternError(msg) from None
    return _Token(_FIELD, name, regex or None)
