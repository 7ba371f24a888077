"""Configuration mistakes exit 2 with a message naming the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_outfs

from outfs.config import load_config
from outfs.errors import ConfigError

GOOD_RULE = '[[tool.outfs.rules]]\nmatch = "v_{name}.st"\nto = "v/v_{name}.st"\n'


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "pyproject.toml").write_text(body)
    return tmp_path


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        ('[tool.outfs]\nrot = "out"\n', "tool.outfs.rot", "unknown key"),
        ('[tool.outfs]\nqueue = "lsf"\n', "tool.outfs.queue", "unknown queue"),
        ('[tool.outfs]\nroot = "../elsewhere"\n', "tool.outfs.root", "inside the project"),
        ('[tool.outfs]\nroot = "data"\n', "tool.outfs.root", "is not a directory"),
        (
            '[tool.outfs]\n[[tool.outfs.rules]]\nmatch = "v_{name.st"\nto = "v/x"\n',
            "tool.outfs.rules[0].match",
            "never closed",
        ),
        (
            '[tool.outfs]\n[[tool.outfs.rules]]\nmatch = "v_{name}.st"\nto = "v/{run}.st"\n',
            "tool.outfs.rules[0].to",
            "{run}",
        ),
        (
            '[tool.outfs]\n[[tool.outfs.rules]]\nmatch = "v_{name}.st"\nto = "../v/{name}"\n',
            "tool.outfs.rules[0].to",
            "inside it",
        ),
        (
            '[tool.outfs]\n[[tool.outfs.rules]]\nmatch = "v_{name}.st"\nto = "/v/{name}"\n',
            "tool.outfs.rules[0].to",
            "inside it",
        ),
        ('[tool.outfs]\n[[tool.outfs.rules]]\nmatch = "v_{name}.st"\n', "rules[0]", "missing `to`"),
        ("[tool.outfs]\nroot = 3\n", "tool.outfs.root", "non-empty string"),
        ("[tool.outfs\n", "", "not valid TOML"),
    ],
)
def test_mistakes_name_file_key_and_problem(
    tmp_path: Path, body: str, key: str, problem: str
) -> None:
    project = write(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_config(project)
    message = str(caught.value)
    assert "pyproject.toml" in message and key in message and problem in message

    proc = run_outfs("plan", cwd=project)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert key in proc.stderr and problem in proc.stderr


def test_found_upward_and_outfs_toml_wins(tmp_path: Path) -> None:
    write(tmp_path, '[tool.outfs]\nroot = "out"\n' + GOOD_RULE)
    (tmp_path / "outfs.toml").write_text('root = "data"\n')
    (tmp_path / "data").mkdir()
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    config = load_config(sub)
    assert config.file == tmp_path / "outfs.toml"
    assert config.root == tmp_path / "data"


def test_no_config_anywhere_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_outfs("plan", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no outfs configuration" in proc.stderr and "Traceback" not in proc.stderr


def test_dash_c_and_config_flag(tmp_path: Path) -> None:
    project = write(tmp_path, '[tool.outfs]\nroot = "out"\nenvs = []\n' + GOOD_RULE)
    (project / "out" / "v_a.st").write_text("a")
    assert "out/v/v_a.st" in run_outfs("plan", "-C", str(project), cwd=Path("/"), check=True).stdout
    assert "out/v/v_a.st" in run_outfs("-C", str(project), "plan", cwd=Path("/"), check=True).stdout
    other = tmp_path / "elsewhere.toml"
    other.write_text('root = "out"\n[[rules]]\nmatch = "v_{n}.st"\nto = "w/{n}.st"\n')
    proc = run_outfs("plan", "--config", str(other), cwd=Path("/"), check=True)
    assert "out/w/a.st" in proc.stdout
