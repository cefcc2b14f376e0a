"""The ``local`` provider: chat completions from a GGUF model loaded in this process.

Parallel generation. A llama.cpp context is not re-entrant, so a model that should serve
several requests at once is loaded several times: a pool of up to ``parallel`` instances,
each its own context with one thread, all mapping the same weights from the file (an
extra instance costs its KV cache and buffers, not the weights). Instances load on demand:
a second one only when a request finds the first busy. Single-thread instances degrade
gracefully when other processes share the cores, where one context with more threads
collapses at llama.cpp's spinning thread barriers; what they give up against batching in
one context is evaluating a shared prompt prefix once (measurements and the trade-off in
docs/plugins/local.md).

A request goes to the idle instance whose last prompt shares the longest start with its
own: llama-cpp-python then evaluates only the tokens after the shared prefix, so a chain
of calls over the same pages keeps its cache even when other calls run beside it.

Two guards keep an instance to one generation at a time:

- the pool's claim, taken and released *by the worker thread* around the llama.cpp call.
  It is what guarantees exclusion, even for a thread whose caller stopped waiting;
- an ``anyio.CapacityLimiter(parallel)`` that callers queue on in the event loop, so a
  fan-out of a hundred requests waits as a hundred cheap tasks (FIFO, cancellable) instead
  of parking a hundred worker threads on the pool.

Cancellation and timeouts. llama.cpp cannot be interrupted inside a call, so the wait is
abandoned instead (``to_thread.run_sync(..., abandon_on_cancel=True)``): the caller gets
its timeout or cancellation at once, and the generation finishes in the background,
still holding its instance, so that instance takes another request only after it (a
generation is bounded by ``max_tokens``, or by the context size). anyio's asyncio backend
releases a ``limiter=`` passed to ``run_sync`` as soon as the wait is abandoned, which
would let the next request into the same context while the old thread still runs: that
is why exclusion rests on the claim the thread holds, not on the limiter. A request
abandoned while its thread still waits for an instance never runs. (Stopping the
generation itself early would need a callback from inside llama.cpp's sampler, where an
exception cannot propagate; not worth the risk for a bounded generation.)
"""

from __future__ import annotations

import os
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

__all__ = ["ChatModel", "LlamaLoader", "LocalProvider", "default_parallel"]

_SETTINGS = ("n_ctx", "n_threads", "parallel")
_MAX_DEFAULT_PARALLEL = 4  # each instance holds its own KV cache; see the docs for memory
# With verbose=False, llama-cpp-python silences a load by pointing the process's stdout and
# stderr (file descriptors 1 and 2, and sys.stdout) at /dev/null and back. Two loads at once
# interleave that, and the second restores the first one's /dev/null: the process's output
# is gone for good. The descriptors are process-wide, so this lock is too.
_LOADING = threading.Lock()


def default_parallel() -> int:
    """Instances per model when ``parallel`` is not set: one per usable core, at most 4."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, _MAX_DEFAULT_PARALLEL))


class ChatModel(Protocol):
    """What the provider needs from a loaded model (``llama_cpp.Llama`` is one)."""

    def create_chat_completion(self, *args: Any, **kwargs: Any) -> Any: ...


@attrs.frozen
class LlamaLoader:
    """Loads a GGUF file with llama-cpp-python (imported here, on first use)."""

    n_ctx: int = 2048
    # One thread: a 135M model gains nothing from two, and when other processes compete for
    # the cores, llama.cpp's spinning thread barriers made two threads 20-50x slower.
    # Parallel requests run on separate instances instead, one thread each.
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
            # n_threads_batch (prompt evaluation) defaults to every core, which spins
            # against the other instances' threads: keep it to n_threads too.
            with _LOADING:
                return Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                             n_threads_batch=self.n_threads, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise plait.ProviderError(f"could not load {str(path)!r}: {exc}", provider="local",
                                      model=path.name) from exc


@attrs.define
class _Instance:
    llama: ChatModel
    prompt: str = ""  # the last prompt it evaluated: what its KV cache starts with


class _Pool:
    """The instances of one model. Worker threads claim one around each llama.cpp call
    and release it themselves, so an abandoned generation keeps its instance to the end."""

    def __init__(self, first: ChatModel, load: Callable[[], ChatModel], size: int) -> None:
        self._idle = [_Instance(first)]
        self._loaded = 1
        self._load = load
        self._size = size
        self._changed = threading.Condition()

    def claim(self, prompt: str, abandoned: threading.Event) -> _Instance | None:
        """An idle instance, the one sharing the longest prefix with ``prompt``; a new one
        if none is idle and the pool has room; else wait. ``None`` once ``abandoned``."""
        with self._changed:
            self._changed.wait_for(lambda: self._idle or self._loaded < self._size)
            if abandoned.is_set():  # the caller gave up while this thread waited
                return None
            if self._idle:
                best = max(self._idle, key=lambda i: _shared(i.prompt, prompt))
                self._idle.remove(best)
                return best
            self._loaded += 1
        try:
            return _Instance(self._load())
        except BaseException:
            with self._changed:
                self._loaded -= 1
                self._changed.notify_all()
            raise

    def release(self, instance: _Instance, prompt: str) -> None:
        instance.prompt = prompt
        with self._changed:
            self._idle.append(instance)
            self._changed.notify_all()


@attrs.define
class _LoadedModel:
    pool: _Pool
    name: str  # reported as ModelResponse.model
    parallel: int
    _queue: tuple[EventLoopToken, anyio.CapacityLimiter] | None = None

    def queue(self) -> anyio.CapacityLimiter:
        """The limiter of the running event loop.

        A provider outlives an event loop when a Runtime is reused (``run_sync`` twice,
        asyncio then trio); a limiter cannot, so each loop gets its own. The claims the
        threads hold keep exclusion across loops.
        """
        token = anyio.lowlevel.current_token()
        if self._queue is None or self._queue[0] != token:
            self._queue = (token, anyio.CapacityLimiter(self.parallel))
        return self._queue[1]


class LocalProvider:
    """Chat completions from GGUF models run in process; built once per Runtime.

    Each model is loaded on its first request, in a worker thread, and kept for the
    provider's life; up to ``parallel`` instances of it (default: ``default_parallel()``)
    generate at once. ``loader`` turns a GGUF path into a model instance (tests inject a
    fake); it is called once per instance.
    """

    def __init__(self, loader: Callable[[Path], ChatModel] | None = None, *,
                 parallel: int | None = None) -> None:
        self._loader = loader or LlamaLoader()
        self._parallel = parallel or default_parallel()
        self._by_name: dict[str, _LoadedModel] = {}
        self._by_path: dict[Path, _LoadedModel] = {}
        self._load_lock = threading.Lock()

    @property
    def parallel(self) -> int:
        """How many instances of each model may generate at once."""
        return self._parallel

    @classmethod
    def from_env(cls, env: plait.ProviderEnv) -> LocalProvider:
        """The factory registered for ``local``: settings ``n_ctx``, ``n_threads`` and
        ``parallel``."""
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
        loader = LlamaLoader(**{k: settings[k] for k in ("n_ctx", "n_threads") if k in settings})
        return cls(loader, parallel=settings.get("parallel"))

    async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
        try:
            with anyio.fail_after(request.timeout):
                model = await self._model(request.model)
                completion = await self._generate(model, _chat_arguments(request))
        except TimeoutError:
            raise plait.ProviderUnavailable(
                f"no reply within {request.timeout:g}s (the generation finishes in the "
                "background before its model instance takes another request)",
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
                pool = _Pool(self._loader(path), lambda: self._loader(path), self.parallel)
                model = self._by_path[path] = _LoadedModel(pool, path.stem, self.parallel)
            self._by_name[name] = model
        return model

    async def _generate(self, model: _LoadedModel, arguments: dict[str, Any]) -> Any:
        abandoned = threading.Event()
        prompt = "\0".join(f"{m['role']}\0{m['content']}" for m in arguments["messages"])

        def run() -> Any:
            instance = model.pool.claim(prompt, abandoned)
            if instance is None:
                return None
            try:
                return _call(instance.llama, model.name, arguments)
            finally:
                model.pool.release(instance, prompt)

        async with model.queue():
            try:
                return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
            except anyio.get_cancelled_exc_class():
                abandoned.set()
                raise


def _shared(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` have in common."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _call(llama: ChatModel, name: str, arguments: dict[str, Any]) -> Any:
    """One llama.cpp chat completion, its exceptions translated (runs in a worker thread)."""
    try:
        return llama.create_chat_completion(**arguments)
    except (ValueError, TypeError) as exc:  # context overflow, unknown extra field
        raise plait.BadRequest(str(exc), provider="local", model=name) from exc
    except Exception as exc:
        raise plait.ProviderError(f"llama.cpp failed: {type(exc).__name__}: {exc}",
                                  provider="local", model=name) from exc


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
