"""Shared fixtures: the built-in example repo, configured so tests never touch a real env."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import no_envs

from outfs.example import build_example


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A fresh seed-shaped repo (its project dir); the shim is installed nowhere."""
    return no_envs(build_example(tmp_path / "repo"))
