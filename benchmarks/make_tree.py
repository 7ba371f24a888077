"""Generate a large seed-shaped project for benchmarks: ~`n_files` tiny files.

    python benchmarks/make_tree.py /tmp/big --files 100000

Same scheme and config as `outfs.example` (so `outfs plan` maps everything but the
`UNMAPPED_EXPECTED` entries), but most files hold the same tiny safetensors blob or nothing:
the point is the file count, and creating 100k files must take seconds, not minutes.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterable
from pathlib import Path

try:
    from outfs import example
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from outfs import example

# One valid safetensors file, written everywhere a .safetensors is due: loaders still work.
_BLOB = example.encode_safetensors({"w": ((2,), [0.0, 1.0])})

# Share of `n_files` per datatype (the rest goes to loose v_hack files).
SHARES = {
    "vhack_grads": 0.20,
    "pool_files": 0.30,
    "runs": 0.06,  # each run: a log, train, and every other one first_hack (~2.5 files)
    "pairsets": 0.03,
    "baked": 0.02,
    "archive": 0.03,
}
POOL_SIZE = 600  # files per pool: pools are few and large
DIR_SIZE = 10  # files per baked / _archive directory


def _touch_all(paths: Iterable[Path]) -> int:
    """Create each file (parents included); `.safetensors` get `_BLOB`. Returns the count."""
    made_dirs: set[Path] = set()
    n = 0
    for path in paths:
        if path.parent not in made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(path.parent)
        # os.open/os.write: a third of the cost of Path.write_bytes at this count.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if path.suffix == ".safetensors":
                os.write(fd, _BLOB)
        finally:
            os.close(fd)
        n += 1
    return n


def _names(base: tuple[str, ...], count: int) -> list[str]:
    """`count` unique names shaped like `base` (suffixed copies, as `scale` makes them)."""
    return example.scaled(base, -(-count // len(base)))[:count]


def _loose(out: Path, counts: dict[str, int]) -> Iterable[Path]:
    for name in _names(example.VHACK_NAMES, counts["vhack"]):
        yield out / f"v_hack_{name}.safetensors"
    for name in _names(example.GRAD_NAMES, counts["vhack_grads"]):
        yield out / f"vhack_grads_{name}.safetensors"


def _runs(project: Path, rng: random.Random, n_runs: int) -> Iterable[Path]:
    out = project / "out"
    for i, run in enumerate(example.make_runs(rng, _names(example.RUN_NAMES, n_runs))):
        yield project / run.log
        yield out / f"train_{run.name}.safetensors"
        if i % 2 == 0:
            yield out / f"train_{run.name}_first_hack.safetensors"


def _dirs(out: Path, counts: dict[str, int]) -> Iterable[Path]:
    n_pools = max(1, counts["pool_files"] // POOL_SIZE)
    for pool in _names(example.POOL_NAMES, n_pools):
        for i in range(POOL_SIZE):
            suffix = "safetensors" if i % 10 == 0 else "jsonl"
            yield out / "probe_distill" / pool / f"samples_{i:05d}.{suffix}"
    for name in _names(example.PAIRSET_NAMES, counts["pairsets"]):
        yield out / "pairsets" / f"{name}.json"
    for top, base, key in (
        ("baked", example.BAKED_NAMES, "baked"),
        ("_archive", example.ARCHIVE_NAMES, "archive"),
    ):
        for name in _names(base, max(1, counts[key] // DIR_SIZE)):
            for i in range(DIR_SIZE):
                yield out / top / name / f"step_{i:06d}.safetensors"


def make_tree(dest: Path, n_files: int = 100_000, *, seed: int = 0) -> Path:
    """Create the project at `dest` with about `n_files` files; return the project dir."""
    project = Path(dest)
    if (project / "out").exists():
        raise FileExistsError(f"{project / 'out'} already exists; pick an empty directory")
    rng = random.Random(seed)
    counts = {k: int(n_files * share) for k, share in SHARES.items()}
    n_runs = max(1, int(counts["runs"] / 2.5))
    counts["vhack"] = max(1, n_files - sum(counts.values()))
    example.write_config(project)
    _touch_all(_loose(project / "out", counts))
    _touch_all(_runs(project, rng, n_runs))
    _touch_all(_dirs(project / "out", counts))
    example.write_unmapped(project, rng)
    return project


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    project = make_tree(args.dest, args.files, seed=args.seed)
    n = sum(len(files) for _, _, files in os.walk(project))
    print(f"{project}: {n} files in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
