"""Shared fixtures: the built-in example repo, configured so tests never touch a real env."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import no_envs
from shimenv import Project, ShimVenv, shim_venv, shimmed_project

from outfs.example import build_example


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A fresh seed-shaped repo (its project dir); the shim is installed nowhere."""
    return no_envs(build_example(tmp_path / "repo"))


@pytest.fixture
def venv() -> ShimVenv:
    """The session's job venv (made once): outfs importable, numpy/safetensors/torch seen."""
    return shim_venv()


@pytest.fixture
def proj(tmp_path: Path, venv: ShimVenv) -> Iterator[Project]:
    """A migrated project whose old paths the shim in `venv` resolves."""
    with shimmed_project(tmp_path, venv) as project:
        yield project
