"""The shim in a real venv: old paths through builtins, io, os, os.path, pathlib, glob, shutil.

Each test migrates a small project by hand, installs the shim into the session's venv, and
runs a job there that uses only the old paths. Jobs report what they saw as JSON.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from shimenv import Project, ShimVenv, make_project, migrate, sha

from outfs.shim import install

pytestmark = pytest.mark.slow


READS = """
import glob, io, pathlib, shutil
root = os.path.abspath("out")
pool = "out/probe_distill/poolA"
rb = lambda p: open(p, "rb").read()
report({
    "rel": lambda: sha(rb("out/v_hack_a.safetensors")),
    "abs": lambda: sha(rb(root + "/v_hack_a.safetensors")),
    "dot": lambda: sha(rb("./out/v_hack_a.safetensors")),
    "dotdot": lambda: sha(rb("out/probe_distill/../v_hack_a.safetensors")),
    "double_slash": lambda: sha(rb("out//v_hack_a.safetensors")),
    "bytes": lambda: sha(rb(b"out/v_hack_a.safetensors")),
    "pathlike": lambda: sha(rb(pathlib.Path("out/v_hack_a.safetensors"))),
    "io_open": lambda: sha(io.open("out/v_hack_b.safetensors", "rb").read()),
    "text": lambda: open(pool + "/s0.jsonl").readline(),
    "below_dir": lambda: sha(rb(pool + "/sub/deep.txt")),
    "os_open": lambda: sha(os.read(os.open("out/weights.bin", os.O_RDONLY), 1 << 20)),
    "stat": lambda: os.stat("out/weights.bin").st_size,
    "lstat": lambda: os.lstat("out/weights.bin").st_size,
    "stat_bytes": lambda: os.stat(b"out/weights.bin").st_size,
    "access": lambda: os.access("out/weights.bin", os.R_OK),
    "exists": lambda: os.path.exists("out/v_hack_a.safetensors"),
    "isfile": lambda: os.path.isfile("out/v_hack_a.safetensors"),
    "isdir": lambda: os.path.isdir(pool),
    "isdir_slash": lambda: os.path.isdir(pool + "/"),
    "getsize": lambda: os.path.getsize(pool + "/s1.jsonl"),
    "listdir": lambda: sorted(os.listdir(pool)),
    "listdir_slash": lambda: sorted(os.listdir(pool + "/")),
    "listdir_bytes": lambda: sorted(x.decode() for x in os.listdir(pool.encode())),
    "scandir": lambda: sorted(e.name for e in os.scandir(pool)),
    "walk": lambda: sorted(
        os.path.relpath(os.path.join(d, f), pool) for d, _, fs in os.walk(pool) for f in fs
    ),
    "glob": lambda: sorted(glob.glob(pool + "/*.jsonl")),
    "glob_deep": lambda: sorted(glob.glob("out/probe_distill/*/**/*.txt", recursive=True)),
    "path_exists": lambda: pathlib.Path(pool, "s0.jsonl").exists(),
    "path_read": lambda: sha(pathlib.Path(pool, "s1.jsonl").read_bytes()),
    "path_iterdir": lambda: sorted(p.name for p in pathlib.Path(pool).iterdir()),
    "path_glob": lambda: sorted(str(p) for p in pathlib.Path(pool).glob("*.jsonl")),
    "path_rglob": lambda: sorted(p.name for p in pathlib.Path(pool).rglob("*")),
    "path_is_dir": lambda: pathlib.Path("out/probe_distill/poolB").is_dir(),
    "gone_dir_listdir": lambda: sorted(os.listdir("out/probe_distill")),
    "gone_dir_isdir": lambda: os.path.isdir("out/probe_distill/"),
    "gone_dir_glob": lambda: sorted(glob.glob("out/probe_distill/*/s0.jsonl")),
    "gone_dir_path": lambda: sorted(p.name for p in pathlib.Path("out/probe_distill").iterdir()),
    "gone_dir_scandir": lambda: sorted(
        (e.name, e.is_dir(), e.path) for e in os.scandir("out/probe_distill")),
    "copyfile": lambda: sha(rb(shutil.copyfile(pool + "/s0.jsonl", "copy.jsonl"))),
    "copy2": lambda: sha(rb(shutil.copy2("out/weights.bin", "w2.bin"))),
    "copytree": lambda: sorted(
        str(p.relative_to("tree")) for p in pathlib.Path(shutil.copytree(pool, "tree")).rglob("*")
    ),
    "move_out": lambda: sha(rb(shutil.move("out/probe_distill/poolB/s0.jsonl", "moved.jsonl"))),
})
"""


def test_reads_resolve_through_every_stdlib_route(venv: ShimVenv, proj: Project) -> None:
    got = venv.run_json(READS, proj.dir)
    h = proj.hashes
    pool = "out/probe_distill/poolA"
    a = h["v_hack_a.safetensors"]
    for name in ("rel", "abs", "dot", "dotdot", "double_slash", "bytes", "pathlike"):
        assert got[name] == a, name
    assert got["io_open"] == h["v_hack_b.safetensors"]
    assert got["text"] == '{"s": 0}\n'
    assert got["below_dir"] == h["probe_distill/poolA/sub/deep.txt"]
    assert got["os_open"] == h["weights.bin"]
    size = len(bytes(range(256)) * 40)
    assert got["stat"] == got["lstat"] == got["stat_bytes"] == size
    assert got["access"] is got["exists"] is got["isfile"] is got["isdir"] is True
    assert got["isdir_slash"] is True
    assert got["getsize"] == len(b'{"s": 1}\n' * 70)
    names = ["s0.jsonl", "s1.jsonl", "sub"]
    assert got["listdir"] == got["listdir_slash"] == got["listdir_bytes"] == names
    assert got["scandir"] == got["path_iterdir"] == names
    assert got["walk"] == ["s0.jsonl", "s1.jsonl", "sub/deep.txt"]
    # glob answers with the names the job asked for: old paths, which keep resolving.
    assert got["glob"] == [f"{pool}/s0.jsonl", f"{pool}/s1.jsonl"]
    assert got["glob_deep"] == [f"{pool}/sub/deep.txt"]
    assert got["path_glob"] == [f"{pool}/s0.jsonl", f"{pool}/s1.jsonl"]
    assert got["path_rglob"] == ["deep.txt", "s0.jsonl", "s1.jsonl", "sub"]
    assert got["path_exists"] is got["path_is_dir"] is True
    assert got["path_read"] == h["probe_distill/poolA/s1.jsonl"]
    # probe_distill/ itself is gone (all it held moved): it still lists its old pools.
    pools = ["poolA", "poolB"]
    assert got["gone_dir_listdir"] == got["gone_dir_path"] == pools
    assert got["gone_dir_isdir"] is True
    assert got["gone_dir_glob"] == [f"out/probe_distill/{p}/s0.jsonl" for p in pools]
    assert got["gone_dir_scandir"] == [[p, True, f"out/probe_distill/{p}"] for p in pools]
    assert got["copyfile"] == h["probe_distill/poolA/s0.jsonl"]
    assert got["copy2"] == h["weights.bin"]
    assert got["copytree"] == ["s0.jsonl", "s1.jsonl", "sub", "sub/deep.txt"]
    assert got["move_out"] == h["probe_distill/poolB/s0.jsonl"]
    assert not (proj.root / "pools/poolB/s0.jsonl").exists()  # moved away from its target


WRITES = """
import pathlib, shutil, time
def write(path, data, mode="wb"):
    with open(path, mode) as fh:
        fh.write(data)
    return sha(open(path, "rb").read())

def rename_old():
    os.rename("out/probe_distill/poolA/s1.jsonl", "out/probe_distill/poolA/s1.old")
    return sorted(os.listdir("out/probe_distill/poolA"))

def utime_old():
    os.utime("out/weights.bin", (1_000_000_000, 1_000_000_000))
    return os.stat("out/weights.bin").st_mtime

def chmod_old():
    os.chmod("out/weights.bin", 0o600)
    return oct(os.stat("out/weights.bin").st_mode & 0o777)

def truncate_old():
    os.truncate("out/probe_distill/poolB/s0.jsonl", 3)
    return open("out/probe_distill/poolB/s0.jsonl", "rb").read().decode()

def mkdir_new_pool():
    os.makedirs("out/probe_distill/poolC", exist_ok=True)
    write("out/probe_distill/poolC/s0.jsonl", b"new pool sample\\n")
    return sorted(os.listdir("out/probe_distill/poolC"))

def atomic_save():
    write("out/new_tmp.part", b"atomic\\n")
    os.replace("out/new_tmp.part", "out/atomic.bin")
    return sha(open("out/atomic.bin", "rb").read())

report({
    "overwrite": lambda: write("out/v_hack_b.safetensors", b"rewritten"),
    "append": lambda: write("out/probe_distill/poolA/s0.jsonl", b"more\\n", "ab"),
    "new_rule": lambda: write("out/v_hack_c.safetensors", b"a new vector"),
    "new_lookup": lambda: write("out/train_run7.safetensors", b"trained"),
    "new_text": lambda: pathlib.Path("out/other.bin").write_text("text") and sha(
        pathlib.Path("out/other.bin").read_bytes()),
    "new_unmapped": lambda: write("out/notes.txt", b"no rule maps me"),
    "kept_in_place": lambda: write("out/untouched.txt", b"changed in place"),
    "new_below_moved_dir": lambda: write("out/probe_distill/poolA/s9.jsonl", b"s9"),
    "rename_in_root": rename_old,
    "utime": utime_old,
    "chmod": chmod_old,
    "truncate": truncate_old,
    "mkdir_rule": mkdir_new_pool,
    "atomic_replace": atomic_save,
    "remove": lambda: (os.remove("out/v_hack_a.safetensors"),
                       os.path.exists("out/v_hack_a.safetensors"))[1],
    "rmtree": lambda: (shutil.rmtree("out/probe_distill/poolB"),
                       os.path.exists("out/probe_distill/poolB"))[1],
})
"""

READ_BACK = """
report({
    "new_rule": lambda: open("out/v_hack_c.safetensors", "rb").read().decode(),
    "new_lookup": lambda: open("out/train_run7.safetensors", "rb").read().decode(),
    "new_pool": lambda: open("out/probe_distill/poolC/s0.jsonl", "rb").read().decode(),
    "atomic": lambda: open("out/atomic.bin", "rb").read().decode(),
})
"""


def test_writes_land_at_targets_and_read_back(venv: ShimVenv, proj: Project) -> None:
    got = venv.run_json(WRITES, proj.dir)
    root = proj.root
    digest = {name: sha(root / rel) for name, rel in [
        ("overwrite", "vhack/v_hack_b.safetensors"),
        ("append", "pools/poolA/s0.jsonl"),
        ("new_rule", "vhack/v_hack_c.safetensors"),
        ("new_lookup", "runs/20240101_120000_run7/train.safetensors"),
        ("new_text", "bins/other.bin"),
        ("new_unmapped", "notes.txt"),
        ("kept_in_place", "untouched.txt"),
        ("new_below_moved_dir", "pools/poolA/s9.jsonl"),
        ("atomic_replace", "bins/atomic.bin"),
    ]}  # fmt: skip
    for name, value in digest.items():
        assert got[name] == value, name
    assert (root / "pools/poolA/s0.jsonl").read_bytes().endswith(b"more\n")
    assert (root / "vhack/v_hack_b.safetensors").read_bytes() == b"rewritten"
    assert not (root / "v_hack_c.safetensors").exists()
    assert not (root / "train_run7.safetensors").exists()
    assert got["rename_in_root"] == ["s0.jsonl", "s1.old", "s9.jsonl", "sub"]
    assert (root / "pools/poolA/s1.old").is_file()
    assert got["utime"] == 1_000_000_000
    assert (root / "bins/weights.bin").stat().st_mtime == 1_000_000_000
    assert got["chmod"] == "0o600"
    assert got["truncate"] == '{"b'
    assert (root / "pools/poolB").exists() is False  # removed by rmtree through the old path
    assert got["mkdir_rule"] == ["s0.jsonl"]
    assert (root / "pools/poolC/s0.jsonl").read_bytes() == b"new pool sample\n"
    assert not (root / "probe_distill/poolC").exists()
    assert got["remove"] is False and not (root / "vhack/v_hack_a.safetensors").exists()
    assert got["rmtree"] is False
    # A later process reads the new files back through the old paths.
    back = venv.run_json(READ_BACK, proj.dir)
    assert back == {
        "new_rule": "a new vector",
        "new_lookup": "trained",
        "new_pool": "new pool sample\n",
        "atomic": "atomic\n",
    }
    added = "".join(p.read_text() for p in (proj.state / "added").glob("*.jsonl"))
    assert '"legacy": "train_run7.safetensors"' in added
    assert '"target": "runs/20240101_120000_run7/train.safetensors"' in added


OUTSIDE = """
import pathlib, sys
outside = sys.argv[1]
os.makedirs("out_other", exist_ok=True)
open("out_other/v_hack_a.safetensors", "wb").write(b"sibling")
report({
    "outside_abs": lambda: open(outside + "/v_hack_a.safetensors", "rb").read().decode(),
    "outside_rel": lambda: open(os.path.relpath(outside) + "/v_hack_a.safetensors").read(),
    "prefix_sibling": lambda: open("out_other/v_hack_a.safetensors", "rb").read().decode(),
    "sibling_listing": lambda: os.listdir("out_other"),
    "unaliased_in_root": lambda: open("out/untouched.txt").read(),
    "missing_in_root": lambda: open("out/never_existed.txt").read(),
    "new_outside": lambda: (open(outside + "/train_run7.safetensors", "w").write("x"),
                            sorted(os.listdir(outside)))[1],
    "fd": lambda: os.stat(0).st_mode > 0,
    "file_object": lambda: os.fspath(pathlib.PurePath("out")) == "out",
})
"""


def test_paths_outside_root_are_untouched(venv: ShimVenv, proj: Project) -> None:
    got = venv.run_json(OUTSIDE, proj.dir, str(proj.outside))
    assert got["outside_abs"] == got["outside_rel"] == "outside the root: never redirected\n"
    assert got["prefix_sibling"] == "sibling"
    assert got["sibling_listing"] == ["v_hack_a.safetensors"]
    assert got["unaliased_in_root"] == "an unmapped file stays put\n"
    assert got["missing_in_root"].startswith("error: FileNotFoundError")
    assert "out/never_existed.txt" in got["missing_in_root"]
    assert got["new_outside"] == ["train_run7.safetensors", "v_hack_a.safetensors"]
    assert got["fd"] is True and got["file_object"] is True


CHDIR = """
def inside_root():
    os.chdir("out")
    return sha(open("v_hack_a.safetensors", "rb").read()), os.listdir("probe_distill/poolA/sub")

def into_moved_dir():
    os.chdir("probe_distill/poolA")
    return os.path.basename(os.getcwd()), sha(open("s0.jsonl", "rb").read())

def back_up():
    os.chdir("../..")  # from pools/poolA: the real parent, as the OS sees it
    return sorted(os.listdir("."))[:3], sha(open("../out/weights.bin", "rb").read())

report({"inside_root": inside_root, "into_moved_dir": into_moved_dir, "back_up": back_up})
"""


def test_relative_paths_follow_chdir(venv: ShimVenv, proj: Project) -> None:
    got = venv.run_json(CHDIR, proj.dir)
    assert got["inside_root"] == [proj.hashes["v_hack_a.safetensors"], ["deep.txt"]]
    assert got["into_moved_dir"] == ["poolA", proj.hashes["probe_distill/poolA/s0.jsonl"]]
    assert got["back_up"][1] == proj.hashes["weights.bin"]


SYMLINKED = """
import sys
real = sys.argv[1]
def from_inside():
    os.chdir("out")  # the kernel reports the real directory from now on
    return sha(open("v_hack_a.safetensors", "rb").read())
report({
    "relative": lambda: sha(open("out/v_hack_a.safetensors", "rb").read()),
    "via_link": lambda: sha(open(os.path.abspath("out/v_hack_a.safetensors"), "rb").read()),
    "real": lambda: sha(open(real + "/v_hack_a.safetensors", "rb").read()),
    "listing": lambda: sorted(os.listdir(real + "/probe_distill/poolA")),
    "inside": from_inside,
})
"""


def test_symlinked_root(tmp_path: Path, venv: ShimVenv) -> None:
    """out/ is often a symlink to a big disk: jobs may spell it either way."""
    project = make_project(tmp_path)
    disk = tmp_path / "disk"
    disk.mkdir()
    real = disk / "out"
    project.root.rename(real)
    project.root.symlink_to(real)
    install.install(venv.path, project.root, project.state)
    try:
        migrate(project)
        got = venv.run_json(SYMLINKED, project.dir, str(real))
    finally:
        install.remove(venv.path, project.root)
    a = project.hashes["v_hack_a.safetensors"]
    assert got == {
        "relative": a,
        "via_link": a,
        "real": a,
        "listing": ["s0.jsonl", "s1.jsonl", "sub"],
        "inside": a,
    }


LISTINGS = """
import glob, pathlib

def top_level_glob():
    return sorted(glob.glob("out/v_hack_*.safetensors"))

def root_listing():
    names = os.listdir("out")
    return sorted(n for n in names if n.startswith(("v_hack_", "probe_distill", "weights")))

def pathlib_glob():
    return sorted(p.name for p in pathlib.Path("out").glob("*.bin"))

def recreated_old_dir():
    os.makedirs("out/probe_distill", exist_ok=True)  # old code making sure its dir exists
    return sorted(os.listdir("out/probe_distill")), sorted(glob.glob("out/probe_distill/*"))

def read_what_glob_found():
    return sha(open(glob.glob("out/v_hack_a*")[0], "rb").read())

report({"top_level_glob": top_level_glob, "root_listing": root_listing,
        "pathlib_glob": pathlib_glob, "recreated_old_dir": recreated_old_dir,
        "read_what_glob_found": read_what_glob_found})
"""


def test_old_names_are_listed_where_they_lay(venv: ShimVenv, proj: Project) -> None:
    """Listing `out/` (which still exists) shows what moved out of it under its old names,
    so an old job's glob finds its inputs; so does an old directory that a job re-creates."""
    got = venv.run_json(LISTINGS, proj.dir)
    assert got["top_level_glob"] == ["out/v_hack_a.safetensors", "out/v_hack_b.safetensors"]
    assert got["root_listing"] == [
        "probe_distill",
        "v_hack_a.safetensors",
        "v_hack_b.safetensors",
        "weights.bin",
    ]
    assert got["pathlib_glob"] == ["weights.bin"]
    assert got["recreated_old_dir"] == [
        ["poolA", "poolB"],
        ["out/probe_distill/poolA", "out/probe_distill/poolB"],
    ]
    assert got["read_what_glob_found"] == proj.hashes["v_hack_a.safetensors"]
