"""`outfs rewrite`: literal old paths in code become new ones; look-alikes stay."""

from __future__ import annotations

from pathlib import Path

from helpers import run_outfs


def test_rewrite_prints_a_diff_then_writes(example: Path) -> None:
    run_outfs("migrate", "--now", cwd=example, check=True)
    script = example / "eval.sh"
    script.write_text(
        "python eval.py --v-hack-path=out/v_hack_l18.safetensors\n"
        "ls ./out/probe_distill/teacher_pool/part-0.jsonl\n"
        f"cat {example}/out/vhack_grads_l18.safetensors\n"
        "cp data/out/v_hack_l18.safetensors out/v_hack_l18.safetensors.bak\n"
        "python extract.py --out-path=out/v_hack_{{name}}.safetensors\n"
        'save(f"out/train_{run}.safetensors")\n'
    )
    before = script.read_text()
    proc = run_outfs("rewrite", "eval.sh", cwd=example, check=True)
    assert "+python eval.py --v-hack-path=out/vhack/v_hack_l18.safetensors" in proc.stdout
    assert script.read_text() == before  # a diff only
    assert "edit by hand" in proc.stderr and "out/train_{run}.safetensors" in proc.stderr

    run_outfs("rewrite", "--write", "eval.sh", cwd=example, check=True)
    assert script.read_text().splitlines() == [
        "python eval.py --v-hack-path=out/vhack/v_hack_l18.safetensors",
        "ls ./out/pools/teacher_pool/part-0.jsonl",
        f"cat {example}/out/vhack_grads/vhack_grads_l18.safetensors",
        "cp data/out/v_hack_l18.safetensors out/v_hack_l18.safetensors.bak",
        "python extract.py --out-path=out/vhack/v_hack_{{name}}.safetensors",
        'save(f"out/train_{run}.safetensors")',
    ]


def test_rewrite_whole_project_skips_data(example: Path) -> None:
    run_outfs("migrate", "--now", cwd=example, check=True)
    (example / "out" / "notes.txt").write_text("out/v_hack_l18.safetensors\n")
    run_outfs("rewrite", "--write", cwd=example, check=True)
    assert "out/pools/teacher_pool" in (example / "justfile").read_text()
    assert (example / "out" / "notes.txt").read_text() == "out/v_hack_l18.safetensors\n"
