"""Lookups: the values a match binds are literal text, whatever the pattern's own parse."""

from __future__ import annotations

from pathlib import Path

from outfs.patterns import compile_pattern
from outfs.rules import LookupCache, find_lookup

LOOKUP = compile_pattern("logs/{ts:[0-9]{8}_[0-9]{6}}_*_{run}.log")


def logs(tmp_path: Path, *names: str) -> LookupCache:
    (tmp_path / "logs").mkdir()
    for name in names:
        (tmp_path / "logs" / name).write_text("")
    return LookupCache(tmp_path)


def test_a_run_name_inside_another_is_found_both_ways(tmp_path: Path) -> None:
    cache = logs(tmp_path, "20260101_000000_model_inoc_seed1.log", "20260102_000000_m_x.log")
    # `*` may swallow `inoc`: the log names run "seed1" as well as run "inoc_seed1".
    assert find_lookup(LOOKUP, {"run": "inoc_seed1"}, cache) == [
        ("logs/20260101_000000_model_inoc_seed1.log", {"ts": "20260101_000000"})
    ]
    assert find_lookup(LOOKUP, {"run": "seed1"}, cache) == [
        ("logs/20260101_000000_model_inoc_seed1.log", {"ts": "20260101_000000"})
    ]
    assert find_lookup(LOOKUP, {"run": "x"}, cache) == [
        ("logs/20260102_000000_m_x.log", {"ts": "20260102_000000"})
    ]


def test_bound_text_is_not_a_regex(tmp_path: Path) -> None:
    cache = logs(tmp_path, "20260101_000000_m_lr3e-5.log", "20260101_000000_m_lr3eX5.log")
    found = [path for path, _ in find_lookup(LOOKUP, {"run": "lr3e-5"}, cache)]
    assert found == ["logs/20260101_000000_m_lr3e-5.log"]
    assert find_lookup(LOOKUP, {"run": "lr.e-5"}, cache) == []
