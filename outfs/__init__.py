"""outfs: reorganise an experiment `out/` directory now, keep queued jobs working.

This file stays tiny on purpose: the shim imports `outfs.shim` at every Python start-up
in a job environment, which imports this package first. The library API is reached
through lazy attributes (`outfs.load_config`, `outfs.make_plan`, `outfs.migrate_now`, ...).
"""

__version__ = "0.1.0"

_API = {
    "load_config": "outfs.config",
    "Config": "outfs.config",
    "make_plan": "outfs.plan",
    "Plan": "outfs.plan",
    "migrate_now": "outfs.migrate",
    "rollback": "outfs.migrate",
    "verify": "outfs.migrate",
    "OutfsError": "outfs.errors",
    "ConfigError": "outfs.errors",
}


def __getattr__(name: str) -> object:  # no `typing` import: this runs at start-up
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'outfs' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
