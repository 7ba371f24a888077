"""The built-in example repo: deterministic, every datatype present, real safetensors files."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from outfs import example
from outfs.example import EXAMPLE_CONFIG, UNMAPPED_EXPECTED, build_example, encode_safetensors

HAS_SAFETENSORS = all(importlib.util.find_spec(m) for m in ("numpy", "safetensors"))


def digests(project: Path) -> dict[str, str]:
    return {
        p.relative_to(project).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(project.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_example(tmp_path_factory.mktemp("ex") / "repo")


def loose(project: Path, glob: str) -> list[str]:
    return sorted(p.name for p in (project / "out").glob(glob) if p.is_file())


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = digests(build_example(tmp_path / "a", seed=3))
    b = digests(build_example(tmp_path / "b", seed=3))
    assert a == b


def test_other_seed_other_content_same_names(tmp_path: Path) -> None:
    a = digests(build_example(tmp_path / "a", seed=0))
    b = digests(build_example(tmp_path / "b", seed=1))
    # Log names carry seeded timestamps; compare the files both trees have.
    same_names = {k for k in a.keys() & b.keys() if k.endswith(".safetensors")}
    assert same_names
    assert all(a[k] != b[k] for k in same_names)


def test_writes_the_config_verbatim(project: Path) -> None:
    text = (project / "pyproject.toml").read_text()
    assert EXAMPLE_CONFIG in text
    cfg = tomllib.loads(text)["tool"]["outfs"]
    assert cfg["root"] == "out"
    assert cfg["keep"] == ["vhack", "vhack_grads", "pools", "pairsets", "baked", "runs", "_archive"]
    matches = [r["match"] for r in cfg["rules"]]
    # First match wins: the first_hack rule must come before the plain train rule.
    assert matches.index("train_{run}_first_hack.safetensors") < matches.index(
        "train_{run}.safetensors"
    )


def test_contains_every_datatype(project: Path) -> None:
    out = project / "out"
    assert len(loose(project, "v_hack_*.safetensors")) >= 3
    assert len(loose(project, "vhack_grads_*.safetensors")) >= 3
    assert len(loose(project, "train_*_first_hack.safetensors")) >= 2
    pools = sorted(p.name for p in (out / "probe_distill").iterdir())
    assert len(pools) >= 12
    assert {"teacher_pool", "base_pool", "mixed_a"} <= set(pools)
    assert any(p.startswith("teacher_pool_rl-") for p in pools)
    assert any(p.startswith("teacher_pool_inoc-") for p in pools)
    for pool in pools:
        assert list((out / "probe_distill" / pool).glob("*.jsonl"))
        assert list((out / "probe_distill" / pool).glob("*.safetensors"))
    assert list((out / "pairsets").glob("*.json"))
    assert list((out / "baked").glob("*/*"))
    assert list((out / "_archive").glob("*_OLD_step_format/*"))


def test_run_names_look_real(project: Path) -> None:
    runs = [n.removeprefix("train_") for n in loose(project, "train_*.safetensors")]
    assert any("_" in r for r in runs)
    assert any("-" in r for r in runs)


def logs_for(project: Path, run: str) -> list[str]:
    """The lookup's semantics, re-implemented: logs/{ts}_*_{run}.log."""
    pattern = re.compile(rf"[0-9]{{8}}_[0-9]{{6}}_[^/]+_{re.escape(run)}\.log")
    return [p.name for p in (project / "logs").iterdir() if pattern.fullmatch(p.name)]


@pytest.mark.parametrize("scale", [1, 3])
def test_each_mapped_checkpoint_has_exactly_one_log(tmp_path: Path, scale: int) -> None:
    project = build_example(tmp_path / "repo", scale=scale)
    unmapped = {Path(p).name for p in UNMAPPED_EXPECTED}
    checked = 0
    for name in loose(project, "train_*.safetensors"):
        if name in unmapped:
            continue
        run = re.sub(r"(_first_hack)?\.safetensors$", "", name.removeprefix("train_"))
        assert len(logs_for(project, run)) == 1, name
        checked += 1
    assert checked >= 6 * scale


def test_unmapped_entries_exist_for_their_reasons(project: Path) -> None:
    for rel, reason in UNMAPPED_EXPECTED.items():
        assert (project / rel).is_file(), rel
        run = Path(rel).name.removeprefix("train_").removesuffix(".safetensors")
        want = {"matched nothing": 0, "matched several": 2}.get(reason)
        if want is not None:
            assert len(logs_for(project, run)) == want, rel


def test_scale_multiplies_counts(tmp_path: Path) -> None:
    one = build_example(tmp_path / "one")
    three = build_example(tmp_path / "three", scale=3)
    for glob in ("v_hack_*", "vhack_grads_*", "train_*_first_hack.*"):
        assert len(loose(three, glob)) == 3 * len(loose(one, glob))
    n_pools = len(list((one / "out/probe_distill").iterdir()))
    assert len(list((three / "out/probe_distill").iterdir())) == 3 * n_pools
    assert {p for p in UNMAPPED_EXPECTED if (three / p).exists()} == set(UNMAPPED_EXPECTED)


def test_refuses_to_overwrite(project: Path) -> None:
    with pytest.raises(FileExistsError):
        build_example(project)


def test_hand_written_safetensors_header() -> None:
    data = encode_safetensors({"w": ((1, 2), [1.0, -2.0])}, {"k": "v"})
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0
    assert data[8 : 8 + n].rstrip(b" ") == (
        b'{"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}'
    )
    assert data[8 + n :] == b"\x00\x00\x80\x3f\x00\x00\x00\xc0"


@pytest.mark.skipif(not HAS_SAFETENSORS, reason="needs numpy and safetensors")
def test_safetensors_files_load(project: Path) -> None:
    from safetensors.numpy import load_file

    files = sorted((project / "out").rglob("*.safetensors"))
    assert len(files) > 30
    for f in files:
        tensors = load_file(f)
        assert tensors, f
        assert all(t.dtype.name == "float32" and t.size for t in tensors.values())


def test_builds_with_stdlib_only(tmp_path: Path, project: Path) -> None:
    # -S: no site-packages, so no numpy/safetensors, as `outfs demo` on a bare Python. The
    # hand-written files must have the library's very bytes, so the sha256s do not change.
    code = "import sys; from outfs.example import build_example; build_example(sys.argv[1])"
    root = Path(example.__file__).parents[1]
    subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path / "bare")], check=True, cwd=root)
    assert digests(tmp_path / "bare") == digests(project)


def test_migration_guide_shows_the_example_config() -> None:
    guide = Path(example.__file__).parents[1] / "MIGRATION.md"
    if not guide.exists():
        pytest.skip("no MIGRATION.md next to the package (installed copy)")
    assert EXAMPLE_CONFIG in guide.read_text(encoding="utf-8")
