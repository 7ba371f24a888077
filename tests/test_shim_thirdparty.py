"""The shim with the loaders ML jobs use: numpy, fsspec, safetensors (Rust), torch (C++).

Rust and C++ open files without Python's open(); wrapt post-import hooks patch those entry
points when the job imports the library, and wrapt itself is imported only then.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from shimenv import Project, ShimVenv, make_project, migrate, shimmed_project

from outfs.shim import install

pytestmark = pytest.mark.slow


def _numpy_files() -> dict[str, bytes]:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.arange(1000, dtype=np.int64))
    return {"arr.npy": buf.getvalue()}


@pytest.fixture
def proj(tmp_path: Path, venv: ShimVenv) -> Iterator[Project]:
    moves = {"arr.npy": ("arrays/arr.npy", "file")}
    with shimmed_project(tmp_path, venv, _numpy_files(), moves) as project:
        yield project


NUMPY_FSSPEC = """
import sys
import numpy as np
before = "wrapt" in sys.modules
import fsspec
root = os.path.abspath("out")
fs = fsspec.filesystem("file")

def np_memmap():
    m = np.memmap("out/weights.bin", dtype=np.uint8, mode="r")
    return sha(bytes(m))

def np_save_new():
    np.save("out/fresh.npy", np.ones(3))  # a new .npy at an old path: rule {name}.npy
    return np.load("out/fresh.npy").tolist()

def np_memmap_write():
    m = np.memmap("out/grid.bin", dtype=np.float32, mode="w+", shape=(4,))
    m[:] = 7
    m.flush()
    return np.fromfile("out/grid.bin", dtype=np.float32).tolist()

def fs_open_url():
    with fsspec.open("file://" + root + "/v_hack_a.safetensors", "rb") as fh:
        return sha(fh.read())

report({
    "wrapt_at_start": lambda: before,
    "np_load": lambda: int(np.load("out/arr.npy").sum()),
    "np_load_abs": lambda: int(np.load(root + "/arr.npy").sum()),
    "np_fromfile": lambda: sha(np.fromfile("out/weights.bin", dtype=np.uint8).tobytes()),
    "np_memmap": np_memmap,
    "np_save_new": np_save_new,
    "np_memmap_write": np_memmap_write,
    "fs_open_rel": lambda: sha(fsspec.open("out/weights.bin", "rb").open().read()),
    "fs_open_url": fs_open_url,
    "fs_exists": lambda: fs.exists(root + "/probe_distill/poolA/s0.jsonl"),
    "fs_info": lambda: [fs.info(root + "/weights.bin")[k] for k in ("size", "type")],
    "fs_ls": lambda: sorted(os.path.basename(p) for p in fs.ls(root + "/probe_distill/poolA")),
    "fs_ls_url": lambda: len(fs.ls("file://" + root + "/probe_distill/poolA")),
    "fs_cat": lambda: sha(fs.cat_file(root + "/probe_distill/poolA/sub/deep.txt")),
    "fs_write": lambda: fs.pipe_file(root + "/v_hack_z.safetensors", b"zzz") or "ok",
    "wrapt_after": lambda: "wrapt" in sys.modules,
})
"""


def test_numpy_and_fsspec(venv: ShimVenv, proj: Project) -> None:
    got = venv.run_json(NUMPY_FSSPEC, proj.dir)
    h = proj.hashes
    assert got["wrapt_at_start"] is False
    assert got["np_load"] == got["np_load_abs"] == sum(range(1000))
    assert got["np_fromfile"] == got["np_memmap"] == h["weights.bin"]
    assert got["np_save_new"] == [1.0, 1.0, 1.0]
    assert (proj.root / "arrays/fresh.npy").is_file()
    assert got["np_memmap_write"] == [7.0] * 4
    assert (proj.root / "bins/grid.bin").stat().st_size == 16
    assert got["fs_open_rel"] == h["weights.bin"]
    assert got["fs_open_url"] == h["v_hack_a.safetensors"]
    assert got["fs_exists"] is True
    assert got["fs_info"] == [len(bytes(range(256)) * 40), "file"]
    assert got["fs_ls"] == ["s0.jsonl", "s1.jsonl", "sub"]
    assert got["fs_ls_url"] == 3
    assert got["fs_cat"] == h["probe_distill/poolA/sub/deep.txt"]
    assert (proj.root / "vhack/v_hack_z.safetensors").read_bytes() == b"zzz"
    # numpy and fsspec go through os and open(): no reason to import wrapt for them.
    assert got["wrapt_after"] is False


SAFETENSORS = """
import sys
from safetensors.numpy import load_file, save_file
import numpy as np
from safetensors import safe_open
A = "out/v_hack_a.safetensors"

def st_safe_open():
    with safe_open("out/v_hack_a.safetensors", framework="np") as f:
        return [list(f.keys()), float(f.get_tensor("v").sum())]

def st_save_new():
    save_file({"x": np.arange(4, dtype=np.float32)}, "out/v_hack_new.safetensors")
    return load_file("out/v_hack_new.safetensors")["x"].tolist()

def st_save_over():
    save_file({"y": np.zeros(2, dtype=np.float32)}, "out/v_hack_b.safetensors")
    return sorted(load_file("out/v_hack_b.safetensors"))

def st_save_lookup():
    save_file({"w": np.ones(2, dtype=np.float32)}, "out/train_run7.safetensors")
    return load_file("out/train_run7.safetensors")["w"].tolist()

report({
    "load_file": lambda: float(load_file("out/v_hack_a.safetensors")["v"].sum()),
    "load_file_abs": lambda: float(load_file(os.path.abspath(A))["v"].sum()),
    "safe_open": st_safe_open,
    "save_new": st_save_new,
    "save_over": st_save_over,
    "save_lookup": st_save_lookup,
    "wrapt": lambda: "wrapt" in sys.modules,
})
"""


def test_safetensors_numpy(venv: ShimVenv, proj: Project) -> None:
    from safetensors.numpy import load_file

    expected = float(load_file(str(proj.root / "vhack/v_hack_a.safetensors"))["v"].sum())
    got = venv.run_json(SAFETENSORS, proj.dir)
    assert got["load_file"] == got["load_file_abs"] == expected
    assert got["safe_open"] == [["v"], expected]
    assert got["save_new"] == [0.0, 1.0, 2.0, 3.0]
    assert (proj.root / "vhack/v_hack_new.safetensors").is_file()
    assert got["save_over"] == ["y"]
    assert got["save_lookup"] == [1.0, 1.0]
    assert (proj.root / "runs/20240101_120000_run7/train.safetensors").is_file()
    leftovers = {p.name for p in proj.root.iterdir()}
    assert leftovers == {".outfs", "vhack", "pools", "bins", "arrays", "runs", "untouched.txt"}
    assert got["wrapt"] is True


TORCH = """
import sys
import torch
from safetensors.torch import load_file, save_file

def save_new():
    torch.save({"w": torch.arange(5)}, "out/ckpt_e2.pt")
    return torch.load("out/ckpt_e2.pt")["w"].tolist()

def save_over():
    torch.save({"w": torch.zeros(2)}, "out/ckpt_e1.pt")
    return torch.load("out/ckpt_e1.pt", weights_only=True)["w"].tolist()

def st_torch_save():
    save_file({"t": torch.ones(3)}, "out/v_hack_t.safetensors")
    return load_file("out/v_hack_t.safetensors")["t"].tolist()

report({
    "load": lambda: torch.load("out/ckpt_e1.pt")["w"].tolist(),
    "load_abs": lambda: torch.load(os.path.abspath("out/ckpt_e1.pt"))["w"].tolist(),
    "load_mmap": lambda: torch.load("out/ckpt_e1.pt", mmap=True)["w"].tolist(),
    "from_file": lambda: torch.from_file("out/weights.bin", size=4, dtype=torch.uint8).tolist(),
    "st_load": lambda: load_file("out/v_hack_a.safetensors")["v"].shape[0],
    "save_new": save_new,
    "save_over": save_over,
    "st_save": st_torch_save,
})
"""


def test_torch_in_one_process(tmp_path: Path, venv: ShimVenv) -> None:
    torch = pytest.importorskip("torch")
    project = make_project(tmp_path)
    torch.save({"w": torch.arange(3)}, str(project.root / "ckpt_e1.pt"))
    install.install(venv.path, project.root, project.state)
    try:
        migrate(project, {"ckpt_e1.pt": ("ckpts/ckpt_e1.pt", "file")})
        got = venv.run_json(TORCH, project.dir, timeout=300)
    finally:
        install.remove(venv.path, project.root)
    assert got["load"] == got["load_abs"] == got["load_mmap"] == [0, 1, 2]
    assert got["from_file"] == [0, 1, 2, 3]
    assert got["st_load"] == 64
    assert got["save_new"] == [0, 1, 2, 3, 4]
    assert (project.root / "ckpts/ckpt_e2.pt").is_file()
    assert got["save_over"] == [0.0, 0.0]
    assert got["st_save"] == [1.0, 1.0, 1.0]
    assert (project.root / "vhack/v_hack_t.safetensors").is_file()
    assert not (project.root / "ckpt_e2.pt").exists()


SQLITE = """
import sqlite3
def fresh():
    db = sqlite3.connect("out/fresh.bin")  # a new file at an old path: rule {name}.bin
    db.execute("create table t (n)")
    db.commit()
    return sqlite3.connect("out/fresh.bin").execute("select count(*) from t").fetchone()[0]
report({
    "read": lambda: sqlite3.connect("out/runs.db").execute("select n from t").fetchall(),
    "fresh": fresh,
})
"""


def test_sqlite(tmp_path: Path, venv: ShimVenv) -> None:
    import sqlite3

    project = make_project(tmp_path)
    with sqlite3.connect(project.root / "runs.db") as db:
        db.execute("create table t (n)")
        db.executemany("insert into t values (?)", [(1,), (2,)])
    install.install(venv.path, project.root, project.state)
    try:
        migrate(project, {"runs.db": ("dbs/runs.db", "file")})
        got = venv.run_json(SQLITE, project.dir)
    finally:
        install.remove(venv.path, project.root)
    assert got == {"read": [[1], [2]], "fresh": 0}
    assert (project.root / "bins/fresh.bin").is_file()
    assert not (project.root / "runs.db").exists() and not (project.root / "fresh.bin").exists()
