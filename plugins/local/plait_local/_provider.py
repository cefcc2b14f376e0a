"""The ``local`` provider: chat completions from a GGUF model loaded in this process.

Parallel generation. A llama.cpp context is not re-entrant, so a model that should serve
several requests at once is loaded several times: a pool of up to ``parallel`` instances,
each its own context with one thread, all mapping the same weights from the file (an
extra instance costs its KV cache and buffers, not the weights). Instances load on demand:
a second one only when a request finds the first busy. Single-thread instances degrade
gracefully when other processes share the cores, where one context with more threads
collapses at llama.cpp's thread barriers. A prompt prefix several instances need at once
is evaluated once, by one of them on the threads of all of them, and copied to the others
(``_prefix.py``; measurements in docs/plugins/local.md).

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

import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.lowlevel
import attrs
import plait

from ._models import resolve_model
from ._prefix import SharedPrefixes, common_prefix, usable_cores
from ._tools import tool_arguments, tool_reply

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
    return min(usable_cores(), _MAX_DEFAULT_PARALLEL)


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
        # llama.cpp's threads wait for each other after every operation of a prompt
        # evaluated on several (a shared prefix is, see _prefix.py); spinning there, as
        # OpenMP does by default, made two threads slower than one whenever another process
        # wanted a core. Read by OpenMP when llama_cpp is first imported; a value the user
        # set is kept.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
                best = max(self._idle, key=lambda i: common_prefix(i.prompt, prompt))
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
    prefixes: SharedPrefixes = attrs.field(factory=SharedPrefixes)  # across its instances
    requests: int = 0  # queued or running; changed on the event loop, read by the threads

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
            raise _no_reply(request) from None
        return _response(completion, model.name, structured=request.json_schema is not None,
                         tools=bool(request.tools))

    async def stream(self, request: plait.ModelRequest) -> AsyncIterator[plait.StreamChunk]:
        """llama-cpp's ``stream=True``: a piece of text per token, pulled one at a time by
        worker threads (see ``_Generation``). llama.cpp reports no usage while streaming,
        so none is given (plait counts the call from its text; the model is free)."""
        try:
            with anyio.fail_after(request.timeout):
                model = await self._model(request.model)
        except TimeoutError:
            raise _no_reply(request) from None
        arguments = {**_chat_arguments(request), "stream": True}
        generation = _Generation(model, arguments)
        model.requests += 1
        try:
            async with model.queue():
                try:
                    while True:
                        try:
                            with anyio.fail_after(request.timeout):
                                piece = await anyio.to_thread.run_sync(generation.next,
                                                                       abandon_on_cancel=True)
                        except TimeoutError:
                            raise _no_reply(request) from None
                        if piece is None:
                            return
                        chunk = _piece(piece, model.name)
                        if chunk is not None:
                            yield chunk
                finally:
                    generation.close()  # a thread still inside a token closes it after
        finally:
            model.requests -= 1

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
        prompt = _prompt_key(arguments)

        def run() -> Any:
            instance = model.pool.claim(prompt, abandoned)
            if instance is None:
                return None
            try:
                model.prefixes.prefill(instance.llama, arguments["messages"],
                                       alone=model.requests < 2)
                return _call(instance.llama, model.name, arguments)
            finally:
                model.pool.release(instance, prompt)

        model.requests += 1
        try:
            async with model.queue():
                try:
                    return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
                except anyio.get_cancelled_exc_class():
                    abandoned.set()
                    raise
        finally:
            model.requests -= 1


class _Generation:
    """One streamed generation, advanced a token at a time by whichever worker thread
    ``next`` runs in; one at a time (its lock), on the instance it claims first.

    The claim is released by the thread that ends the generation, never by the event loop:
    ``close`` (the reader left) ends it at once when no thread is inside a token, and
    otherwise leaves it to that thread, which sees ``abandoned`` as the token returns. So
    an abandoned stream stops generating after at most one more token, and its instance is
    not handed on while llama.cpp still runs in it.
    """

    def __init__(self, model: _LoadedModel, arguments: dict[str, Any]) -> None:
        self._model = model
        self._arguments = arguments
        self._prompt = _prompt_key(arguments)
        self._lock = threading.Lock()
        self._abandoned = threading.Event()
        self._instance: _Instance | None = None
        self._pieces: Any = None  # llama-cpp's generator of chunks
        self._done = False

    def next(self) -> Any:
        """The next chunk, ``None`` at the end (runs in a worker thread)."""
        with self._lock:
            piece = self._step()
        if self._abandoned.is_set():  # close() may have found the lock taken: end it here
            self._end_if_free()
        return piece

    def close(self) -> None:
        self._abandoned.set()
        self._end_if_free()

    def _step(self) -> Any:
        if self._done or self._abandoned.is_set():
            self._end()
            return None
        if self._instance is None:
            self._instance = self._model.pool.claim(self._prompt, self._abandoned)
            if self._instance is None:
                self._done = True
                return None
            self._model.prefixes.prefill(self._instance.llama, self._arguments["messages"],
                                         alone=self._model.requests < 2)
            self._pieces = _call(self._instance.llama, self._model.name, self._arguments)
        piece = None
        try:
            with _llama_errors(self._model.name):
                piece = next(self._pieces, None)
        finally:
            if piece is None:  # the end, or an error: either way the generation is over
                self._end()
        return piece

    def _end_if_free(self) -> None:
        if self._lock.acquire(blocking=False):
            try:
                self._end()
            finally:
                self._lock.release()

    def _end(self) -> None:
        """Close llama-cpp's generator and hand the instance back (holding the lock)."""
        if self._done:
            return
        self._done = True
        if self._pieces is not None:
            self._pieces.close()
        if self._instance is not None:
            self._model.pool.release(self._instance, self._prompt)


def _no_reply(request: plait.ModelRequest) -> plait.ProviderUnavailable:
    return plait.ProviderUnavailable(
        f"no reply within {request.timeout:g}s (the generation finishes in the "
        "background before its model instance takes another request)",
        provider="local", model=request.model,
    )


def _prompt_key(arguments: Mapping[str, Any]) -> str:
    """The prompt as the pool matches prefixes on it."""
    return "\0".join(f"{m['role']}\0{m['content']}" for m in arguments["messages"])


def _piece(chunk: Any, model: str) -> plait.StreamChunk | None:
    """A chunk of llama-cpp's stream (the Chat Completions chunk shape)."""
    choice = chunk["choices"][0]
    text = (choice.get("delta") or {}).get("content") or ""
    finish_reason = choice.get("finish_reason")
    if not (text or finish_reason):
        return None
    return plait.StreamChunk(text, finish_reason=finish_reason, model=model)


def _call(llama: ChatModel, name: str, arguments: dict[str, Any]) -> Any:
    """One llama.cpp chat completion, its exceptions translated (runs in a worker thread)."""
    with _llama_errors(name):
        return llama.create_chat_completion(**arguments)


@contextlib.contextmanager
def _llama_errors(name: str) -> Iterator[None]:
    try:
        yield
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
    if request.tools:
        tool_arguments(request, arguments)
    arguments.update(request.extra)
    return arguments


def _response(completion: Any, model: str, *, structured: bool,
              tools: bool = False) -> plait.ModelResponse:
    choice = completion["choices"][0]
    text = choice["message"].get("content") or ""
    usage = completion.get("usage") or {}
    parsed = plait.json_or_none(text) if structured else None
    calls: tuple[plait.ToolCall, ...] = ()
    if tools:
        text, parsed, calls = tool_reply(text, structured)
    return plait.ModelResponse(
        text=text,
        usage=plait.TokenCount(input_tokens=usage.get("prompt_tokens", 0),
                               output_tokens=usage.get("completion_tokens", 0)),
        finish_reason="tool_calls" if calls else choice.get("finish_reason"),
        parsed=parsed,
        model=model,
        raw=completion,
        tool_calls=calls,
    )
