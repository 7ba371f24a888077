"""`outfs demo`, as a newcomer runs it: the old job reads its bytes through the old paths."""

from __future__ import annotations

from pathlib import Path

from helpers import run_outfs


def test_demo_walks_through_a_migration(tmp_path: Path) -> None:
    proc = run_outfs("demo", "--keep", str(tmp_path / "demo"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "unchanged" in proc.stdout and "landed in out/vhack/" in proc.stdout
    assert "nothing to move" in proc.stdout
    out = tmp_path / "demo" / "out"
    assert (out / "vhack" / "v_hack_demo-new.safetensors").is_file()
    assert not (out / "probe_distill").exists()
