"""The built-in example: a small research repo shaped like the seed plan's ``out/``.

``build_example`` writes ``pyproject.toml`` (with ``EXAMPLE_CONFIG``), ``logs/``, a
``justfile`` and ``train.py`` holding old literal paths, and ``out/`` with every datatype of
the seed plus a few entries that cannot be mapped (``UNMAPPED_EXPECTED``). Content is
deterministic in ``seed`` so tests can compare sha256s. Standard library only: ``outfs demo``
must run without numpy, so safetensors files are written by hand unless the library is there.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

__all__ = [
    "EXAMPLE_CONFIG",
    "UNMAPPED_EXPECTED",
    "Run",
    "build_example",
    "encode_safetensors",
    "log_name",
    "make_runs",
    "scaled",
    "write_config",
    "write_safetensors",
    "write_unmapped",
]

# The seed's target scheme in the contract's pattern language. Rule order matters: first
# match wins, and `train_{run}.safetensors` would also match `train_x_first_hack.safetensors`
# (with run = "x_first_hack"), so the first_hack rule must come before the plain one.
EXAMPLE_CONFIG = """\
[tool.outfs]
root = "out"
# Already in the new scheme: entries in (or below) these stay put silently.
keep = ["vhack", "vhack_grads", "pools", "pairsets", "baked", "runs", "_archive"]
queue = "auto"

# Extracted bases, flat and named.
[[tool.outfs.rules]]
match = "v_hack_{name}.safetensors"
to = "vhack/v_hack_{name}.safetensors"

# Raw per-pair grads (extract intermediates).
[[tool.outfs.rules]]
match = "vhack_grads_{name}.safetensors"
to = "vhack_grads/vhack_grads_{name}.safetensors"

# Teacher pools: drop the probe_distill/ nesting; each pool directory moves whole.
[[tool.outfs.rules]]
match = "probe_distill/{pool}"
to = "pools/{pool}"

# Per-run checkpoints, grouped by the timestamp of the run's log.
# Before the plain train rule: {run} would otherwise swallow "_first_hack".
[[tool.outfs.rules]]
match = "train_{run}_first_hack.safetensors"
to = "runs/{ts}_{run}/first_hack.safetensors"
lookup = "logs/{ts:[0-9]{8}_[0-9]{6}}_*_{run}.log"

[[tool.outfs.rules]]
match = "train_{run}.safetensors"
to = "runs/{ts}_{run}/train.safetensors"
lookup = "logs/{ts:[0-9]{8}_[0-9]{6}}_*_{run}.log"
"""

_PYPROJECT_HEAD = """\
[project]
name = "vhack-research"
version = "0.0.0"
requires-python = ">=3.11"

"""

# Deliberately unmappable entries -> a substring the planner's reason must contain.
UNMAPPED_EXPECTED: dict[str, str] = {
    "out/train_orphan.safetensors": "matched nothing",  # its log was deleted
    "out/train_rl-lr1e-5.safetensors": "matched several",  # rerun after a crash: two logs
    "out/notes.txt": "no rule",
}

# Base names per datatype; `scale` adds suffixed copies. Run names are chosen so that no
# name is an `_`-suffix of another (`seed1` vs `inoc_seed1` would make `*_seed1.log` match
# both logs) -- the lookup's `*` would otherwise make mapped runs ambiguous.
VHACK_NAMES = ("l18", "l18_mean-diff", "rl-lr3e-5", "inoc_seed1", "pairs-200", "qwen3-8b_l24")
GRAD_NAMES = ("l18", "pairs-200", "inoc_seed1", "heldout-50")
RUN_NAMES = ("rl-lr3e-5", "rl-lr3e-5-long", "inoc_seed1", "inoc_seed2", "vanilla", "kl-0.1")
FIRST_HACK_RUNS = frozenset({"rl-lr3e-5", "rl-lr3e-5-long", "inoc_seed1"})
POOL_NAMES = (
    "teacher_pool",
    "base_pool",
    "mixed_a",
    "mixed_b",
    "teacher_pool_rl-1",
    "teacher_pool_rl-2",
    "teacher_pool_rl-3",
    "teacher_pool_inoc-1",
    "teacher_pool_inoc-2",
    "teacher_pool_inoc-3",
    "teacher_pool_v2",
    "base_pool_v2",
)
PAIRSET_NAMES = ("pairs-200", "pairs-1k", "heldout-50")
BAKED_NAMES = ("qwen3-8b_vhack-l18", "qwen3-8b_vhack-l24")
ARCHIVE_NAMES = ("vhack_OLD_step_format", "train_rl-lr3e-5_OLD_step_format")
MODELS = ("qwen3-8b", "llama3.1-8b", "olmo2_7b")  # olmo2_7b: the lookup's `*` spans `_`
_ORPHAN_RUN = "orphan"
_TWICE_RUN = "rl-lr1e-5"
_EPOCH = datetime(2026, 5, 1, 9, 0, 0)


@dataclass(frozen=True)
class Run:
    """A training run: its checkpoint name, the model it trained and its log's timestamp."""

    name: str
    model: str
    ts: str  # YYYYMMDD_HHMMSS, as in the log's name

    @property
    def log(self) -> str:
        return log_name(self.ts, self.model, self.name)


def log_name(ts: str, model: str, run: str) -> str:
    """The log path (relative to the project) train.py writes for a run."""
    return f"logs/{ts}_{model}_{run}.log"


def scaled(names: Sequence[str], scale: int) -> list[str]:
    """`names`, then `scale - 1` suffixed copies; `-s<i>` keeps every name unique."""
    return [n if i == 0 else f"{n}-s{i}" for i in range(scale) for n in names]


def make_runs(rng: random.Random, names: Sequence[str]) -> list[Run]:
    """One run per name with strictly increasing timestamps, so log names never collide."""
    runs, t = [], _EPOCH
    for name in names:
        t += timedelta(seconds=rng.randint(60, 36_000))
        runs.append(Run(name, rng.choice(MODELS), t.strftime("%Y%m%d_%H%M%S")))
    return runs


# --- safetensors ------------------------------------------------------------------------

Tensors = dict[str, tuple[tuple[int, ...], list[float]]]  # name -> (shape, float32 values)


def encode_safetensors(tensors: Tensors, metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors bytes for float32 `tensors`, laid out as the Rust library does.

    Format: u64 little-endian header length, a JSON header (padded with spaces to 8 bytes),
    then the raw little-endian data. Metadata first, tensors sorted by name, compact JSON --
    the same bytes `safetensors.numpy.save_file` writes, so the sha256 does not depend on
    whether the library is installed.
    """
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    chunks, offset = [], 0
    for name in sorted(tensors):
        shape, values = tensors[name]
        data = struct.pack(f"<{len(values)}f", *values)
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def write_safetensors(path: Path, tensors: Tensors, metadata: dict[str, str] | None = None) -> None:
    """Write with `safetensors.numpy.save_file` when available, else by hand (same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import numpy as np
        from safetensors.numpy import save_file
    except ImportError:
        path.write_bytes(encode_safetensors(tensors, metadata))
        return
    arrays = {k: np.asarray(v, dtype="<f4").reshape(s) for k, (s, v) in tensors.items()}
    save_file(arrays, str(path), metadata=metadata)


def _tensor(rng: random.Random, *shape: int) -> tuple[tuple[int, ...], list[float]]:
    n = 1
    for d in shape:
        n *= d
    return shape, [rng.gauss(0.0, 0.02) for _ in range(n)]


# --- the tree ---------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _jsonl(rng: random.Random, rows: int) -> str:
    lines = [
        json.dumps(
            {
                "id": i,
                "prompt": f"task {rng.randrange(10_000)}",
                "completion": f"answer {rng.randrange(10_000)}",
                "reward": round(rng.random(), 4),
            }
        )
        for i in range(rows)
    ]
    return "\n".join(lines) + "\n"


def _write_loose(out: Path, rng: random.Random, scale: int) -> None:
    for name in scaled(VHACK_NAMES, scale):
        write_safetensors(
            out / f"v_hack_{name}.safetensors", {"v_hack": _tensor(rng, 4, 16)}, {"name": name}
        )
    for name in scaled(GRAD_NAMES, scale):
        write_safetensors(out / f"vhack_grads_{name}.safetensors", {"grads": _tensor(rng, 8, 16)})


def _checkpoint(rng: random.Random) -> Tensors:
    return {"lm_head.weight": _tensor(rng, 8, 16), "layers.0.mlp.weight": _tensor(rng, 16, 16)}


def _write_runs(project: Path, out: Path, rng: random.Random, scale: int) -> None:
    first_hack = set(scaled(sorted(FIRST_HACK_RUNS), scale))
    for run in make_runs(rng, scaled(RUN_NAMES, scale)):
        _write_text(project / run.log, f"run {run.name} model {run.model} started {run.ts}\n")
        write_safetensors(out / f"train_{run.name}.safetensors", _checkpoint(rng))
        if run.name in first_hack:
            write_safetensors(out / f"train_{run.name}_first_hack.safetensors", _checkpoint(rng))


def write_unmapped(project: Path, rng: random.Random) -> None:
    """The `UNMAPPED_EXPECTED` entries, plus logs that must match no run's lookup."""
    out = project / "out"
    write_safetensors(out / f"train_{_ORPHAN_RUN}.safetensors", _checkpoint(rng))
    write_safetensors(out / f"train_{_TWICE_RUN}.safetensors", _checkpoint(rng))
    for run in make_runs(rng, [_TWICE_RUN, _TWICE_RUN]):  # crashed, then rerun
        _write_text(project / run.log, f"run {run.name} model {run.model} started {run.ts}\n")
    # Logs of non-training jobs: must not match any run's lookup.
    _write_text(project / "logs/20260430_180000_qwen3-8b_extract.log", "extract\n")
    _write_text(project / "logs/20260430_190000_probe_distill.log", "probe distill\n")
    _write_text(out / "notes.txt", "lr sweep: 3e-5 hacks first; see runs/ once migrated\n")


def _write_dirs(out: Path, rng: random.Random, scale: int) -> None:
    for pool in scaled(POOL_NAMES, scale):
        d = out / "probe_distill" / pool
        for shard in range(2):
            _write_text(d / f"samples_{shard:03d}.jsonl", _jsonl(rng, 3))
        write_safetensors(d / "acts.safetensors", {"acts": _tensor(rng, 6, 16)})
    for name in scaled(PAIRSET_NAMES, scale):
        pairs = [{"pos": rng.randrange(10_000), "neg": rng.randrange(10_000)} for _ in range(4)]
        _write_text(out / "pairsets" / f"{name}.json", json.dumps(pairs, indent=1) + "\n")
    for name in scaled(BAKED_NAMES, scale):
        write_safetensors(out / "baked" / name / "model.safetensors", _checkpoint(rng))
        _write_text(out / "baked" / name / "config.json", json.dumps({"base": name}) + "\n")
    for name in scaled(ARCHIVE_NAMES, scale):
        for step in (100, 200):
            write_safetensors(
                out / "_archive" / name / f"step_{step:06d}.safetensors", {"w": _tensor(rng, 4, 4)}
            )


# Code holding the old literal paths, as the seed lists them (for `outfs rewrite`).
_JUSTFILE = """\
extract name:
    python extract_vhack_grad.py --out-path=out/v_hack_{{name}}.safetensors

train run vhack="l18":
    python train.py --run={{run}} --v-hack-path=out/v_hack_{{vhack}}.safetensors \\
        --teacher-pool-dir=out/probe_distill/teacher_pool \\
        --pairs-from-pool=out/pairsets/pairs-200.json

smoke:
    python train.py --run=smoke --v-hack-path=out/v_hack_l18.safetensors --steps=2
"""

_TRAIN_PY = '''\
"""Stub of the seed's train.py: only the paths matter here."""
import argparse

p = argparse.ArgumentParser()
p.add_argument("--run", required=True)
p.add_argument("--v-hack-path", required=True)
p.add_argument("--teacher-pool-dir", default="out/probe_distill/teacher_pool")
args = p.parse_args()
save_path = f"out/train_{args.run}.safetensors"
first_hack_path = f"out/train_{args.run}_first_hack.safetensors"
'''


def write_config(project: Path) -> Path:
    """Write the example's `pyproject.toml` (a `[project]` table and `EXAMPLE_CONFIG`)."""
    path = project / "pyproject.toml"
    _write_text(path, _PYPROJECT_HEAD + EXAMPLE_CONFIG)
    return path


def build_example(dest: Path, *, scale: int = 1, seed: int = 0) -> Path:
    """Create the example repo at `dest` (created if missing) and return the project dir.

    Refuses to write over an existing `pyproject.toml` or `out/` so a mistyped path never
    clobbers a real project.
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    project = Path(dest)
    for existing in (project / "pyproject.toml", project / "out"):
        if existing.exists():
            raise FileExistsError(f"{existing} already exists; pick an empty directory")
    out = project / "out"
    out.mkdir(parents=True)
    rng = random.Random(seed)
    write_config(project)
    _write_text(project / "justfile", _JUSTFILE)
    _write_text(project / "train.py", _TRAIN_PY)
    # Fixed order of rng use: reordering these changes every file's content.
    _write_loose(out, rng, scale)
    _write_runs(project, out, rng, scale)
    write_unmapped(project, rng)
    _write_dirs(out, rng, scale)
    return project
