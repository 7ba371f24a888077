"""The pattern language, checked against a reference matcher and by round trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outfs.patterns import PatternError, compile_pattern

NAME_CHARS = st.characters(codec="ascii", exclude_characters="/{}*\\\x00")
segment = st.text(NAME_CHARS, min_size=1, max_size=8)
literal = st.text(NAME_CHARS, max_size=6)


def reference_glob(pattern: str, path: str) -> bool:
    """A slow, obviously correct matcher for patterns made of literals, `*` and `**/`."""
    if not pattern:
        return not path
    if pattern.startswith("**/"):
        rest = pattern[3:]
        return reference_glob(rest, path) or any(
            reference_glob(rest, path[i + 1 :]) for i, ch in enumerate(path) if ch == "/"
        )
    if pattern[0] == "*":
        return any(
            reference_glob(pattern[1:], path[i:])
            for i in range(len(path) + 1)
            if "/" not in path[:i]
        )
    return bool(path) and path[0] == pattern[0] and reference_glob(pattern[1:], path[1:])


glob_piece = st.one_of(literal, st.just("*"), st.just("/"), st.just("**/"))


@given(
    st.lists(glob_piece, min_size=1, max_size=6),
    st.lists(st.one_of(segment, st.just("/")), max_size=6),
)
def test_wildcards_agree_with_reference(pieces: list[str], path_pieces: list[str]) -> None:
    text = "".join(pieces)
    path = "".join(path_pieces)
    whole_components = re.sub(r"(^|/)\*\*/", r"\1", text)
    if not text or "**" in whole_components:
        return  # `**` only as a whole component (`a/**/b`) here; the rest is tested below
    assert (compile_pattern(text).match(path) is not None) == reference_glob(text, path)


@given(literal, segment, literal, segment, literal)
def test_render_then_match_round_trips(a: str, x: str, b: str, y: str, c: str) -> None:
    pattern = compile_pattern(f"{a}{{x}}{b}/{{y}}{c}")
    path = pattern.render({"x": x, "y": y})
    captured = pattern.match(path)
    assert captured is not None
    assert pattern.render(captured) == path


@given(segment, segment)
def test_field_never_spans_a_slash(x: str, y: str) -> None:
    assert compile_pattern("v_{name}.st").match(f"v_{x}/{y}.st") is None


@given(segment, segment)
def test_repeated_field_must_match_same_text(x: str, y: str) -> None:
    captured = compile_pattern("{run}/{run}.log").match(f"{x}/{y}.log")
    assert (captured is not None) == (x == y)


def test_regex_field_with_braces_inside() -> None:
    p = compile_pattern("logs/{ts:[0-9]{8}_[0-9]{6}}_*_{run}.log")
    assert p.match("logs/20260501_120000_qwen3-8b_rl-lr3e-5.log") == {
        "ts": "20260501_120000",
        "run": "rl-lr3e-5",
    }
    assert p.match("logs/2026050_120000_q_r.log") is None
    assert p.fields == ("ts", "run")


def test_deep_matches_any_depth_including_none() -> None:
    p = compile_pattern("a/**/b.json")
    assert p.match("a/b.json") is not None
    assert p.match("a/x/y/b.json") is not None
    assert p.match("ab.json") is None


def test_bind_and_describe() -> None:
    p = compile_pattern("logs/{ts:[0-9]+}_*_{run}.log")
    assert p.describe({"run": "orphan"}) == "logs/{ts}_*_orphan.log"
    bound = p.bind({"run": "a.b"})
    assert bound.match("logs/1_m_a.b.log") == {"ts": "1"}
    assert bound.match("logs/1_m_aXb.log") is None  # bound text is literal, not a regex


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("v_{name.safetensors", "never closed"),
        ("v_name}.st", "unmatched"),
        ("{1x}", "identifier"),
        ("{x:}", "empty regular expression"),
        ("{x:[a-}", "invalid regex"),
        ("", "empty"),
    ],
)
def test_bad_patterns_say_why(text: str, problem: str) -> None:
    with pytest.raises(PatternError, match=re.escape(problem)):
        compile_pattern(text)


def test_deep_spans_names_with_newlines() -> None:
    assert compile_pattern("**/x").match("a\nb/x") is not None
    assert compile_pattern("a/**").match("a/b\nc/d") is not None
