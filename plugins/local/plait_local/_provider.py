"""The ``local`` provider: chat completions from a GGUF model loaded in this process.

Concurrency. A llama.cpp context is not re-entrant, so each loaded model is used by one
thread at a time. Two guards do that:

- a ``threading.Lock`` taken *by the worker thread* around the llama.cpp call. It is what
  guarantees exclusion, even for a thread whose caller stopped waiting;
- an ``anyio.CapacityLimiter(1)`` that callers queue on in the event loop, so a fan-out of
  a hundred requests waits as a hundred cheap tasks (FIFO, cancellable) instead of
  parking a hundred worker threads on the lock.

Cancellation and timeouts. llama.cpp cannot be interrupted inside a call, so the wait is
abandoned instead (``to_thread.run_sync(..., abandon_on_cancel=True)``): the caller gets
its timeout or cancellation at once, and the generation finishes in the background,
still holding the model's lock, so the next request starts only after it (a generation
is bounded by ``max_tokens``, or by the context size). anyio's asyncio backend releases a
``limiter=`` passed to ``run_sync`` as soon as the wait is abandoned, which would let the
next request into the same context while the old thread still runs: that is why
exclusion rests on the lock the thread holds, not on the limiter. A request abandoned
while its thread still waits for the lock never runs. (Stopping the generation itself
early would need a callback from inside llama.cpp's sampler, where an exception cannot
propagate; not worth the risk for a bounded generation.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.lowlevel
import attrs
import plait

from ._models import resolve_model

if TYPE_CHECKING:
    from anyio.lowlevel import EventLoopToken

__all__ = ["ChatModel", "LlamaLoader", "LocalProvider"]

_SETTINGS = ("n_ctx", "n_threads")


class ChatModel(Protocol):
    """What the provider needs from a loaded model (``llama_cpp.Llama`` is one)."""

    def create_chat_completion(self, *args: Any, **kwargs: Any) -> Any: ...


@attrs.frozen
class LlamaLoader:
    """Loads a GGUF file with llama-cpp-python (imported here, on first use)."""

    n_ctx: int = 2048
    # One thread: a 135M model gains nothing from two, and when other processes compete for
    # the cores, llama.cpp's spinning thread barriers made two threads 20-50x slower.
    n_threads: int = 1

    def __call__(self, path: Path) -> ChatModel:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise plait.PluginError(
                "plait-local needs llama-cpp-python, which could not be imported "
                f"({exc}); see the plait-local README for the portable build"
            ) from exc
        try:
            return Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                         verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise plait.ProviderError(f"could not load {str(path)!r}: {exc}", provider="local",
                                      model=path.name) from exc


@attrs.define
class _LoadedModel:
    llama: ChatModel
    name: str  # reported as ModelResponse.model
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    _queue: tuple[EventLoopToken, anyio.CapacityLimiter] | None = None

    def queue(self) -> anyio.CapacityLimiter:
        """The limiter of the running event loop.

        A provider outlives an event loop when a Runtime is reused (``run_sync`` twice,
        asyncio then trio); a limiter cannot, so each loop gets its own. The thread-held
        lock keeps exclusion across loops.
        """
        token = anyio.lowlevel.current_token()
        if self._queue is None or self._queue[0] != token:
            self._queue = (token, anyio.CapacityLimiter(1))
        return self._queue[1]


class LocalProvider:
    """Chat completions from GGUF models run in process; built once per Runtime.

    Each model is loaded on its first request, in a worker thread, and kept for the
    provider's life. ``loader`` turns a GGUF path into a model (tests inject a fake).
    """

    def __init__(self, loader: Callable[[Path], ChatModel] | None = None) -> None:
        self._loader = loader or LlamaLoader()
        self._by_name: dict[str, _LoadedModel] = {}
        self._by_path: dict[Path, _LoadedModel] = {}
        self._load_lock = threading.Lock()

    @classmethod
    def from_env(cls, env: plait.ProviderEnv) -> LocalProvider:
        """The factory registered for ``local``: settings ``n_ctx`` and ``n_threads``."""
        settings: Mapping[str, Any] = env.settings
        unknown = sorted(set(settings) - set(_SETTINGS))
        if unknown:
            raise plait.PluginError(f"unknown plait-local setting(s) {', '.join(unknown)}; "
                                    f"known: {', '.join(_SETTINGS)}")
        for key in _SETTINGS:
            value = settings.get(key)
            if value is not None and (type(value) is not int or value < 1):
                raise plait.PluginError(f"plait-local setting {key} must be a positive int, "
                                        f"got {value!r}")
        return cls(LlamaLoader(**{k: settings[k] for k in _SETTINGS if k in settings}))

    async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
        try:
            with anyio.fail_after(request.timeout):
                model = await self._model(request.model)
                completion = await self._generate(model, _chat_arguments(request))
        except TimeoutError:
            raise plait.ProviderUnavailable(
                f"no reply within {request.timeout:g}s (the generation finishes in the "
                "background before the model takes another request)",
                provider="local", model=request.model,
            ) from None
        return _response(completion, model.name, structured=request.json_schema is not None)

    async def _model(self, name: str) -> _LoadedModel:
        model = self._by_name.get(name)
        if model is None:
            # Abandoning is safe: the thread finishes the load and caches it for next time.
            model = await anyio.to_thread.run_sync(self._load, name, abandon_on_cancel=True)
        return model

    def _load(self, name: str) -> _LoadedModel:
        path = resolve_model(name)
        with self._load_lock:
            model = self._by_path.get(path)
            if model is None:
                model = self._by_path[path] = _LoadedModel(self._loader(path), path.stem)
            self._by_name[name] = model
        return model

    async def _generate(self, model: _LoadedModel, arguments: dict[str, Any]) -> Any:
        abandoned = threading.Event()

        def run() -> Any:
            with model.lock:
                if abandoned.is_set():  # the caller gave up while this thread waited
                    return None
                return _call(model, arguments)

        async with model.queue():
            try:
                return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
            except anyio.get_cancelled_exc_class():
                abandoned.set()
                raise


def _call(model: _LoadedModel, arguments: dict[str, Any]) -> Any:
    """One llama.cpp chat completion, its exceptions translated (runs in a worker thread)."""
    try:
        return model.llama.create_chat_completion(**arguments)
    except (ValueError, TypeError) as exc:  # context overflow, unknown extra field
        raise plait.BadRequest(str(exc), provider="local", model=model.name) from exc
    except Exception as exc:
        raise plait.ProviderError(f"llama.cpp failed: {type(exc).__name__}: {exc}",
                                  provider="local", model=model.name) from exc


def _chat_arguments(request: plait.ModelRequest) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
    }
    if request.temperature is not None:
        arguments["temperature"] = request.temperature
    if request.max_tokens is not None:
        arguments["max_tokens"] = request.max_tokens
    if request.stop:
        arguments["stop"] = list(request.stop)
    if request.seed is not None:
        arguments["seed"] = request.seed
    if request.json_schema is not None:
        # llama-cpp-python compiles the schema into a grammar that constrains sampling.
        arguments["response_format"] = {"type": "json_object",
                                        "schema": dict(request.json_schema)}
    arguments.update(request.extra)
    return arguments


def _response(completion: Any, model: str, *, structured: bool) -> plait.ModelResponse:
    choice = completion["choices"][0]
    text = choice["message"].get("content") or ""
    usage = completion.get("usage") or {}
    return plait.ModelResponse(
        text=text,
        usage=plait.TokenCount(input_tokens=usage.get("prompt_tokens", 0),
                               output_tokens=usage.get("completion_tokens", 0)),
        finish_reason=choice.get("finish_reason"),
        parsed=plait.json_or_none(text) if structured else None,
        model=model,
        raw=completion,
    )
