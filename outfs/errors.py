"""The two kinds of failure a user can meet, each mapped to the contract's exit status."""

from __future__ import annotations


class OutfsError(Exception):
    """Refused or failed (exit 1). The message says why and what to do."""

    exit_code = 1


class ConfigError(OutfsError):
    """A usage or configuration mistake (exit 2): names the file, the key and the problem."""

    exit_code = 2

    def __init__(self, file: object, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        where = f"{file}: {key}" if key else f"{file}"
        super().__init__(f"{where}: {problem}")
