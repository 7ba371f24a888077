"""`outfs plan` on a seed-shaped tree of ~100,000 files (the issue's target: under 3 s), and
`migrate --now` and `rollback` of the same tree, measured once each after the plans.

    python benchmarks/bench_plan.py [--files 100000]

Reports the wall time of the planning call and, measured in the same run, a plain
`os.walk` of the same tree as the floor no planner can beat; the ratio is what to compare
across machines. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tree import make_tree

from outfs.config import load_config
from outfs.migrate import migrate_now, rollback
from outfs.plan import make_plan


def best_of(n: int, func) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outfs-bench-") as tmp:
        project = make_tree(Path(tmp) / "repo", args.files)
        config = load_config(project)
        n_files = sum(len(f) for _, _, f in os.walk(config.root))
        plan = make_plan(config)
        walk = best_of(3, lambda: sum(1 for _ in os.walk(config.root)))
        planning = best_of(3, lambda: make_plan(config))
        no_shim = dataclasses.replace(config, envs=())  # a benchmark touches no environment
        migrating = best_of(1, lambda: migrate_now(no_shim))
        rolling_back = best_of(1, lambda: rollback(no_shim))
    print(f"files under root      {n_files:>10,}")
    print(f"moves / unmapped      {len(plan.moves):>10,} / {len(plan.unmapped):,}")
    print(f"os.walk (floor)       {walk:>10.3f} s")
    print(f"make_plan             {planning:>10.3f} s   ({planning / walk:.1f}x the walk)")
    renames = f"{len(plan.moves):,} renames"
    print(f"migrate_now           {migrating:>10.3f} s   (plan, table, journal, {renames})")
    print(f"rollback              {rolling_back:>10.3f} s")


if __name__ == "__main__":
    main()
