"""Third-party patching, deferred until the job imports the library.

wrapt's post-import hooks do the work, but importing wrapt costs tens of milliseconds, so
start-up only puts a tiny finder at the front of `sys.meta_path`. On the first import of a
watched top-level package it imports wrapt, registers a post-import hook per THIRD_PARTY
module, and hands that very import to wrapt's own finder (which wraps the loader so the
hook runs when the module has executed). Nothing here is hand-written that wrapt does.
"""

import sys

from outfs.shim import warn
from outfs.shim.patches import THIRD_PARTY, Arg, rewrite

WATCHED = frozenset(spec[0].partition(".")[0] for spec in THIRD_PARTY)
_wrappers: set[int] = set()  # ids of the wrappers we made: never wrap twice


class _Trigger:
    """A meta-path finder that wakes once, on the first watched import, then stays quiet."""

    fired = False

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if self.fired or fullname not in WATCHED:
            return None
        self.fired = True
        finder = _register()
        return None if finder is None else finder.find_spec(fullname, path, target)


_trigger = _Trigger()


def install() -> None:
    if _trigger not in sys.meta_path and not _trigger.fired:
        sys.meta_path.insert(0, _trigger)


def uninstall() -> None:
    _trigger.fired = True
    if _trigger in sys.meta_path:
        sys.meta_path.remove(_trigger)


def _register() -> object:
    """Register a hook per module with wrapt; wrapt's finder, to hand the import to."""
    try:
        import wrapt
        from wrapt.importer import ImportHookFinder

        for module in dict.fromkeys(spec[0] for spec in THIRD_PARTY):
            wrapt.register_post_import_hook(_patch_module, module)
    except Exception as exc:
        warn("wrapt", f"cannot patch {', '.join(sorted(WATCHED))} ({exc}); their old paths fail")
        return None
    return next((f for f in sys.meta_path if isinstance(f, ImportHookFinder)), None)


def _patch_module(module: object) -> None:
    """The post-import hook: wrap this module's entries of THIRD_PARTY (never raises)."""
    import wrapt

    name = getattr(module, "__name__", "")
    for spec_module, attr, args_spec in THIRD_PARTY:
        if spec_module != name:
            continue
        try:
            orig = getattr(module, attr, None)
            if orig is None or id(orig) in _wrappers:
                continue  # absent in this version, or imported from a module we patched
            wrapper = wrapt.FunctionWrapper(orig, _call_with_paths(args_spec))
            setattr(module, attr, wrapper)
            _wrappers.add(id(wrapper))
        except Exception as exc:
            warn(f"patch {name}.{attr}", f"cannot patch {name}.{attr}: {exc}")


def _call_with_paths(args_spec: tuple[Arg, ...]):  # type: ignore[no-untyped-def]
    def wrapper(wrapped, instance, args, kwargs):  # type: ignore[no-untyped-def]
        args, kwargs = rewrite(args_spec, args, kwargs)
        return wrapped(*args, **kwargs)

    return wrapper
