"""Start-up cost of the shim, and the cost of a path outside root, measured in one run.

    python benchmarks/bench_startup.py [--runs 60] [--aliases 100000]

Builds a throw-away venv (no system site-packages, so the baseline is a bare interpreter)
with outfs importable, then times `python -c pass` in three states, interleaved so that
machine noise hits all three alike:

- baseline: the shim not installed;
- dormant:  `outfs_shim.pth` present, no migration registered;
- active:   one migration registered whose alias table holds --aliases entries.

Then, inside an active process, `os.stat` on a path outside root through the shim versus the
original function. Prints a table; asserts nothing (the budgets are in CONTRACT.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from outfs.shim import install  # noqa: E402

STAT_BENCH = """
import os, statistics, sys, time
patched = os.stat
original = patched.__wrapped__
path = sys.executable  # a file outside every root
assert getattr(patched, "__outfs_shim__", False)

def loop(fn, n=4000):
    t = time.perf_counter_ns()
    for _ in range(n):
        fn(path)
    return (time.perf_counter_ns() - t) / n

got = {"original": [], "patched": []}
for _ in range(150):  # interleaved slices: noise hits both alike
    for name, fn in (("original", original), ("patched", patched)):
        got[name].append(loop(fn))
print(*(f(got[k]) for f in (statistics.median, min) for k in ("original", "patched")))
"""

FIRST_HIT = """
import time
t = time.perf_counter()
os_stat = __import__("os").stat("out/a_0.bin")
print((time.perf_counter() - t) * 1e3)
"""


def make_env(path: Path, *, bare_init: bool) -> Path:
    """A venv with outfs installed as pip would (a byte-compiled copy in site-packages); with
    `bare_init`, outfs/__init__.py emptied, to tell the shim's own cost from the package's."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    package = install.site_packages(path) / "outfs"
    shutil.copytree(REPO / "outfs", package, ignore=shutil.ignore_patterns("__pycache__"))
    if bare_init:
        (package / "__init__.py").write_text('"""outfs"""\n')
    python = path / "bin" / "python"
    subprocess.run([str(python), "-m", "compileall", "-q", str(package)], check=True)
    return path


def make_root(base: Path, aliases: int) -> Path:
    root = base / "proj" / "out"
    (root / "new").mkdir(parents=True)
    (root / "new" / "a_0.bin").write_bytes(b"x")
    table = {
        "version": 1,
        "root": str(root),
        "project": "..",
        "rules": [{"match": "a_{i}.bin", "to": "new/a_{i}.bin", "lookup": None}],
        "aliases": [
            {"legacy": f"a_{i}.bin", "target": f"new/a_{i}.bin", "kind": "file"}
            for i in range(aliases)
        ],
    }
    (root / ".outfs").mkdir()
    (root / ".outfs" / "aliases.json").write_text(json.dumps(table))
    return root


class State:
    """One start-up state: an environment and the shim files its site-packages holds."""

    def __init__(self, env: Path, root: Path, registry: str | None) -> None:
        self.python = env / "bin" / "python"
        install.remove(env)
        self.files: dict[Path, str] = {}
        if registry is not None:
            install.install(env, root, root / ".outfs")
            sp = install.site_packages(env)
            pth = sp / install.PTH
            self.files = {pth: pth.read_text(), sp / install.REGISTRY: registry}
            install.remove(env)
        self.env = env

    def enter(self, envs: list[Path]) -> None:
        for env in envs:  # the other states' files go: one state at a time
            for name in (install.PTH, install.REGISTRY):
                (env / "lib" / PYVER / "site-packages" / name).unlink(missing_ok=True)
        for path, text in self.files.items():
            path.write_text(text)


PYVER = f"python{sys.version_info[0]}.{sys.version_info[1]}"


def time_start(python: Path) -> tuple[float, float]:
    """(wall ms, CPU ms) of one start: CPU time is the steadier of the two on a busy box."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([str(python), "-c", "pass"], check=True)
    wall = (time.perf_counter() - t) * 1e3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e3


def time_dormant_line(state: State, envs: list[Path]) -> float:
    """µs to run the dormant `.pth` line: steadier than timing whole start-ups."""
    state.enter(envs)
    line = next(text for path, text in state.files.items() if path.suffix == ".pth")
    code = compile(line, "outfs_shim.pth", "exec")
    times = []
    for _ in range(2000):
        t = time.perf_counter()
        exec(code, {})
        times.append(time.perf_counter() - t)
    return min(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="starts per state")
    parser.add_argument("--aliases", type=int, default=100_000, help="alias table size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outfs-bench-") as tmp:
        base = Path(tmp)
        shipped = make_env(base / "shipped", bare_init=False)
        bare = make_env(base / "bare", bare_init=True)
        root = make_root(base, args.aliases)
        active = json.dumps({"migrations": [{"root": str(root), "state": str(root / ".outfs")}]})
        dormant = '{"migrations": []}'
        states = {
            "baseline": State(shipped, root, None),
            "dormant": State(shipped, root, dormant),
            "active": State(shipped, root, active),
            "baseline, bare init": State(bare, root, None),
            "dormant, bare init": State(bare, root, dormant),
            "active, bare init": State(bare, root, active),
        }
        samples: dict[str, list[tuple[float, float]]] = {s: [] for s in states}
        for _ in range(args.runs):  # round robin, one start each: noise hits all alike
            for name, state in states.items():
                state.enter([shipped, bare])
                samples[name].append(time_start(state.python))
        dormant_line = time_dormant_line(states["dormant"], [shipped, bare])
        states["active"].enter([shipped, bare])
        python = states["active"].python
        cwd = root.parent
        out = subprocess.run(
            [str(python), "-c", STAT_BENCH], check=True, capture_output=True, text=True, cwd=cwd
        ).stdout.split()
        first = subprocess.run(
            [str(python), "-c", FIRST_HIT], check=True, capture_output=True, text=True, cwd=cwd
        ).stdout.strip()
    report(samples, [float(x) for x in out], float(first), args.aliases)
    print(f"\nthe dormant .pth line alone, run in-process: {dormant_line:.0f} µs (min of 2000);")
    print("a whole start-up varies by about a millisecond from run to run on this machine")


def report(
    samples: dict[str, list[tuple[float, float]]], stat: list[float], first: float, n: int
) -> None:
    print(f"start-up of `python -c pass`, {len(samples['baseline'])} runs per state, interleaved")
    print(f"{'state':<20}{'wall median':>12}{'+ms':>7}{'ratio':>7}{'CPU median':>12}{'+ms':>7}")
    for state, values in samples.items():
        ref = samples["baseline, bare init" if "bare" in state else "baseline"]
        wall0 = statistics.median(w for w, _ in ref)
        cpu0 = statistics.median(c for _, c in ref)
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        print(
            f"{state:<20}{wall:>12.2f}{wall - wall0:>7.2f}{wall / wall0:>7.3f}"
            f"{cpu:>12.2f}{cpu - cpu0:>7.2f}"
        )
    print("(+ms and ratio against the baseline of the same venv; bare init: a second venv whose")
    print(" outfs/__init__.py is emptied, to show the shim's own share)")
    print(f"(active: {n:,} aliases, loaded lazily: the first old path took {first:.1f} ms)")
    print()
    med_orig, med_patched, min_orig, min_patched = stat
    print("os.stat(sys.executable), a path outside root, in an active process")
    print(f"{'':<10}{'median ns':>10}{'min ns':>10}")
    print(f"{'unpatched':<10}{med_orig:>10.0f}{min_orig:>10.0f}")
    print(f"{'patched':<10}{med_patched:>10.0f}{min_patched:>10.0f}")
    print(f"{'ratio':<10}{med_patched / med_orig:>10.3f}{min_patched / min_orig:>10.3f}")


if __name__ == "__main__":
    main()
