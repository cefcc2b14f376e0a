"""What crosses to a Ray worker: cloudpickle, with plait's own objects reduced to the
recipe that rebuilds them there.

A mapped function usually closes over its ``StepContext`` (``lambda q: ctx.ask(agent,
q)``), which holds the Runtime: plugin manager, HTTP client, limiters, none of which can
travel. The pickler replaces the Runtime by its *spec* (plugins registered in code,
settings, prices, limits, tracers, transport), rebuilt once per worker process, and each
context by the run and step state a worker needs, with the run's budget replaced by the
lent ledger (``_ledger``). When something cannot be pickled, ``find_unpicklable`` walks
the object (closure variables, globals, attributes, elements) to name the piece at fault.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import types
from collections.abc import Iterator
from typing import Any

import cloudpickle  # type: ignore[import-untyped]  # no stubs, no py.typed
from plait import Runtime, StepContext
from plait._context import scope_of
from plait._hooks import Hooks
from plait._plugins import BUILTINS

from . import _rebuild
from ._errors import NotPicklable

__all__ = ["dump", "find_unpicklable", "runtime_spec", "ship", "ship_items", "worker_name"]


def runtime_spec(runtime: Runtime) -> dict[str, Any]:
    """What rebuilds ``runtime`` in a worker process. The one place that reads Runtime
    privates: the plugins registered in code are the application's, and travel by value."""
    plugins = runtime._plugins
    return {
        "plugins": [(name, plugin) for name, plugin in runtime.pm.list_name_plugin()
                    if plugin is not None and not name.startswith(BUILTINS)  # ours, a store's
                    and name not in plugins._installed and not name.startswith("tracer:")],
        "entry_points": plugins._autoload,
        "tracers": plugins._tracer_names,
        "settings": dict(runtime.settings),
        "prices": dict(runtime._prices),
        "limits": dict(runtime._limit_overrides),
        "transport": runtime._client._transport,
        "model_override": runtime.model_override,
    }


def _spec_bytes(runtime: Runtime) -> bytes:
    spec = runtime_spec(runtime)
    try:
        return _pickled(spec)
    except Exception:
        # A tracer registered in code (an OtelTracer holding an SDK provider) stays on the
        # driver: the workers trace with what they have installed. Anything else must travel.
        spec["plugins"] = [(name, plugin) for name, plugin in spec["plugins"]
                           if not (_only_wraps(runtime, plugin) and _fails(plugin, None))]
        return _pickled(spec)


def _pickled(obj: Any) -> bytes:
    data: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return data


def _only_wraps(runtime: Runtime, plugin: object) -> bool:
    hooks = {h.name for h in runtime.pm.get_hookcallers(plugin) or ()}
    return bool(hooks) and all(name.startswith("plait_wrap_") for name in hooks)


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle is untyped
    def __init__(self, file: io.BytesIO, runtime: tuple[str, bytes] | None) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._runtime = runtime

    def reducer_override(self, obj: Any) -> Any:
        if self._runtime is not None:
            if isinstance(obj, Runtime):
                return _rebuild.runtime, self._runtime
            if isinstance(obj, Hooks):
                return _rebuild.hooks, self._runtime
            if isinstance(obj, StepContext):
                return _rebuild.context, (_context_state(obj),)
        if isinstance(obj, BaseException) and type(obj).__reduce__ is BaseException.__reduce__:
            # the default rebuilds ``cls(*args)``, which fails for errors whose __init__
            # takes other arguments than their message (most of plait's)
            return _rebuild.restore_error, (type(obj), obj.args, vars(obj))
        return super().reducer_override(obj)


def _context_state(ctx: StepContext) -> tuple[Any, ...]:
    scope = scope_of(ctx)
    run = scope.run
    return (ctx.runtime, run.info, run.deps, run.prefix, scope.step_id, scope.path,
            scope.deps, scope.config, scope.item, scope.attempt, scope.budget is not None)


def dump(obj: Any, runtime: Runtime | None = None) -> bytes:
    """``obj`` pickled for a worker; plait's objects reduced when ``runtime`` is given."""
    spec = None
    if runtime is not None:
        spec_bytes = _spec_bytes(runtime)
        spec = (hashlib.sha256(spec_bytes).hexdigest()[:16], spec_bytes)
    buffer = io.BytesIO()
    _Pickler(buffer, spec).dump(obj)
    return buffer.getvalue()


def ship(fn: Any, ctx: StepContext, label: str) -> bytes:
    """The worker function and its fan-out's context, pickled together (so the context a
    worker closes over is the one its items are metered on), or ``NotPicklable`` naming
    the worker and the piece of it that cannot travel."""
    try:
        return dump((fn, ctx), ctx.runtime)
    except Exception as exc:
        raise NotPicklable(label, f"the worker {worker_name(fn)}",
                           find_unpicklable(fn, ctx.runtime) or find_unpicklable(ctx, ctx.runtime),
                           f"{type(exc).__name__}: {exc}") from exc


def ship_items(items: list[Any], first: int, label: str) -> bytes:
    """A chunk of items (``first`` is the index of its first), or ``NotPicklable`` naming
    the item that cannot travel and the piece of it at fault."""
    try:
        return dump(items)
    except Exception as exc:
        index, item = next(((first + i, item) for i, item in enumerate(items)
                            if _fails(item, None)), (first, items))
        raise NotPicklable(label, f"item {index}", find_unpicklable(item),
                           f"{type(exc).__name__}: {exc}") from exc


def worker_name(fn: Any) -> str:
    """The user's function (or worker step) inside plait's per-item wrappers."""
    for _ in range(4):
        if not _plaits(fn):
            break
        cells = _cells(fn)
        fn = cells.get("worker", cells.get("fn", cells.get("call", fn)))
    if isinstance(fn, types.FunctionType | types.MethodType):
        return fn.__qualname__
    return type(fn).__qualname__


def find_unpicklable(obj: Any, runtime: Runtime | None = None, depth: int = 8) -> str | None:
    """Where inside ``obj`` pickling fails: the path to the innermost failing piece, with
    its type (``None`` when ``obj`` pickles, or fails as a whole)."""
    path: list[str] = []
    for _ in range(depth):
        for name, child in _children(obj, runtime):
            if _fails(child, runtime):
                if name:
                    path.append(name)
                obj = child
                break
        else:
            break
    if not path:
        return None
    return f"{' -> '.join(path)} ({type(obj).__module__}.{type(obj).__qualname__})"


def _fails(value: Any, runtime: Runtime | None) -> bool:
    try:
        dump(value, runtime)
    except Exception:
        return True
    return False


def _plaits(fn: Any) -> bool:
    return isinstance(fn, types.FunctionType) and (fn.__module__ or "").startswith("plait.")


def _cells(fn: types.FunctionType) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
        try:
            cells[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return cells


def _children(obj: Any, runtime: Runtime | None) -> Iterator[tuple[str, Any]]:
    """What ``obj`` is made of, each named for a reader ("" for plait's own wrappers)."""
    if isinstance(obj, types.FunctionType):
        own = "" if _plaits(obj) else f" of {obj.__qualname__}"
        for name, value in _cells(obj).items():
            yield (f"closure variable {name!r}{own}" if own else ""), value
        for name in obj.__code__.co_names:
            value = obj.__globals__.get(name)
            if value is not None and not isinstance(value, types.ModuleType):
                yield f"global {name!r}{own}", value
    elif isinstance(obj, types.MethodType):
        yield f"the instance of {obj.__qualname__}", obj.__self__
    elif isinstance(obj, StepContext):
        scope = scope_of(obj)
        yield "ctx.deps", scope.run.deps
        yield "ctx.inputs", scope.run.inputs
        yield "ctx.item", scope.item
        yield "a dependency's output", scope.deps
        yield "the Runtime", obj.runtime
    elif isinstance(obj, Runtime):
        for name, plugin in runtime_spec(obj)["plugins"]:
            yield f"the Runtime's plugin {name!r}", plugin
        yield "the Runtime's transport", runtime_spec(obj)["transport"]
        yield "the Runtime's settings", obj.settings
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield f"[{i}]", item
    elif isinstance(obj, dict):
        for key, item in obj.items():
            yield f"[{key!r}]", item
    elif isinstance(getattr(obj, "__dict__", None), dict) and not isinstance(obj, type):
        for key, item in vars(obj).items():
            yield f"attribute {key!r}", item
