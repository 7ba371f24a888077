"""Shared fixtures: the built-in example repo, configured so tests never touch a real env."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import no_envs
from shimenv import Project, ShimVenv, shim_venv, shimmed_project
from slurmcluster import private_cluster

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (OUTFS_REQUIRE_TOOLS=1, set by .ci/run) a skip is a failure: CI installs every
    tool, so a skipped test there means a missing install step, not a missing feature."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("OUTFS_REQUIRE_TOOLS"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may be: {report.longrepr}"


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One private Slurm cluster for the session; the environment its clients need."""
    with private_cluster(tmp_path_factory) as env:
        yield env
