"""The outfs shim's entry point for PYTHONPATH users (`PYTHONPATH=/path/to/outfs python ...`).

Environments with the shim installed load it from `outfs_shim.pth` instead; both routes may
run in one process, and `boot` is idempotent. Being first on sys.path, this file shadows any
other `sitecustomize` (Debian's, Homebrew's, the project's own), so it runs that one too.
"""


def _outfs_boot() -> None:
    try:
        from outfs.shim import boot
    except Exception:
        return  # outfs not importable here: nothing to resolve, nothing to say
    boot()


def _chain() -> None:
    """Run the next `sitecustomize` on sys.path, the one this file shadows."""
    import os
    import sys
    from importlib.machinery import PathFinder

    here = os.path.dirname(os.path.abspath(__file__))
    later = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = PathFinder.find_spec("sitecustomize", later)
    if spec is None or spec.origin in (None, __file__) or spec.loader is None:
        return
    module = type(sys)("sitecustomize")
    module.__file__ = spec.origin
    module.__spec__ = spec
    spec.loader.exec_module(module)


try:
    _outfs_boot()
    _chain()
except Exception as _exc:  # start-up must go on whatever happens here
    import sys as _sys

    _sys.stderr.write(f"outfs: sitecustomize: {type(_exc).__name__}: {_exc}\n")
