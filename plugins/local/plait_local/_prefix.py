"""Prompt prefixes evaluated once for all of a model's instances, on all their cores.

The calls of a fan-out often start with the same long text (the FAQ demo's answers all
begin with the same three pages). Each instance of the pool would evaluate that prefix
itself, at the same moment as the others, each on its one thread: the same work done
once per instance, and on the critical path. Instead, an instance about to evaluate a
prompt first looks at the prompts the other instances are evaluating right now; if one
shares a longer start with its own than its KV cache holds, it waits for that instance
to get there and copies its KV cells (``llama_state_seq_get_data``/``set_data``), then
evaluates only the rest. While it waits its core would sit idle, so the instance it
waits for evaluates with one more thread per waiting instance (``llama_set_n_threads``):
the prefix is evaluated once, on every core the waiting instances would have used.

The instance that leads evaluates its prompt in chunks and, between two chunks, copies
its cells out for whoever waits and sets its thread count to the number of instances
the chunk is for (a context must not be read while it decodes, so only its own thread
may copy). Nobody waits on a follower: a thread follows first, then leads, so waits form
no cycle, and a leader leaves the board in a ``finally``, which wakes its followers
whatever happened.

Sharing is an optimisation only: the prompt is tokenized here as llama-cpp-python's chat
handler does it, and llama-cpp-python still compares the prompt with what the context
holds and evaluates whatever differs, so a mismatch costs time, never a wrong reply.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import attrs

__all__ = ["SharedPrefixes", "common_prefix", "usable_cores"]

# Tokens evaluated between two chances to hand the cells to a follower and to change the
# thread count. The first chunk is short: a fan-out's followers arrive with their leader,
# and get to lend it their cores after 16 tokens (about 0.1 s on one thread here).
FIRST_CHUNK = 16
CHUNK = 128
MIN_SHARED = 32  # fewer tokens than this are not worth waiting for, nor leading
# Tokens left for the completion to evaluate: its logits then come from a batch of
# several tokens as without sharing (a last token evaluated alone gets slightly different
# logits, and greedy decoding can follow them to another reply).
TAIL = 16


@attrs.define(eq=False)
class _Lead:
    """A prompt one instance is evaluating, and how far it got."""

    tokens: list[int]
    done: int
    wanted: int = 0  # how far a follower waits for it to get
    # where each waiting follower waits for it to get: their cores are idle until then
    waits: list[int] = attrs.field(factory=list)
    cells: tuple[int, bytes] | None = None  # (tokens covered, the copied KV cells)


class SharedPrefixes:
    """The prompts a model's instances are evaluating, for the others to copy from."""

    def __init__(self) -> None:
        self._leads: list[_Lead] = []
        self._changed = threading.Condition()
        self._formatter: Any = None  # the instances are of one model: one chat template

    def prefill(self, llama: Any, messages: list[dict[str, str]], *, alone: bool) -> None:
        """Bring ``llama``'s KV cache to the prompt of ``messages`` but its last ``TAIL``
        tokens, copying what another instance evaluates instead of doing it again.
        Runs in the worker thread that holds ``llama``; does nothing for a model that
        is not a ``llama_cpp.Llama`` with a chat template, nor when the request is
        ``alone`` (no other request of the model queued or running, so none can share)
        or the prompt adds too little to what the context holds: then the completion
        evaluates the prompt exactly as it would without sharing (evaluating in other
        chunks changes the last bits of the logits, and greedy decoding can follow them
        to another reply)."""
        if alone:
            return
        tokens = self._tokens(llama, messages)
        if tokens is None or len(tokens) >= llama.n_ctx():
            return  # the completion itself reports a prompt too long for the context
        end = len(tokens) - TAIL
        held = common_prefix(llama.input_ids[:llama.n_tokens], tokens)
        if end - held < MIN_SHARED:
            return  # nothing worth sharing: the context holds (nearly) all of it already
        if llama.n_tokens != held:  # what follows is not this prompt's: evaluate after it
            llama.n_tokens = held
            llama._requires_eval = True
        held = max(held, self._follow(llama, tokens, held))
        if end - held < MIN_SHARED:
            return  # the rest is the completion's
        lead = _Lead(tokens, held)
        with self._changed:
            self._leads.append(lead)
        try:
            self._lead(llama, lead, end)
        except Exception:
            # Only an optimisation: start the context afresh and let the completion
            # evaluate (and report whatever goes wrong) as it would without sharing.
            llama.reset()
        finally:
            with self._changed:
                self._leads.remove(lead)
                self._changed.notify_all()

    def _follow(self, llama: Any, tokens: list[int], held: int) -> int:
        """Wait for the lead sharing the most with ``tokens`` and copy its cells; how
        many tokens ``llama`` then holds (0 if no lead was worth it)."""
        with self._changed:
            best = max(self._leads, key=lambda lead: common_prefix(lead.tokens, tokens),
                       default=None)
            want = common_prefix(best.tokens, tokens) if best else 0
            if best is None or want - held < MIN_SHARED:
                return 0
            want = min(want, len(tokens) - TAIL, len(best.tokens) - TAIL)  # where both stop
            best.wanted = max(best.wanted, want)
            best.waits.append(want)
            self._changed.notify_all()
            try:
                self._changed.wait_for(lambda: best not in self._leads or (
                    best.cells is not None and best.cells[0] >= want))
            finally:
                best.waits.remove(want)
            cells = best.cells
        if cells is None or cells[0] < want:
            return 0  # the lead stopped early (it failed): evaluate it all here
        if not _set_cells(llama, cells[1]):
            llama.reset()  # whatever the context held is gone: evaluate it all
            return 0
        llama.input_ids[:want] = tokens[:want]
        llama.n_tokens = want
        llama._requires_eval = True  # the logits are not those of the copied cells
        return want

    def _lead(self, llama: Any, lead: _Lead, end: int) -> None:
        """Evaluate ``lead.tokens[lead.done:end]``, copying the cells out between chunks
        whenever a follower waits for a point already reached, with one thread more per
        follower still waiting for a point ahead."""
        own = llama.context_params.n_threads_batch
        threads, start = own, lead.done
        try:
            while True:
                with self._changed:
                    if lead.wanted and lead.wanted <= lead.done and (
                            lead.cells is None or lead.cells[0] < lead.wanted):
                        lead.cells = (lead.done, _get_cells(llama))
                        self._changed.notify_all()
                    stop = min(end, lead.done + (CHUNK if lead.done > start else FIRST_CHUNK))
                    if lead.wanted > lead.done:
                        stop = min(stop, lead.wanted)
                    wanted = min(own * (1 + sum(w > lead.done for w in lead.waits)),
                                 max(own, usable_cores()))  # more threads than cores only wait
                if lead.done >= end:
                    return
                if wanted != threads:
                    threads = _set_threads(llama, wanted)
                llama.eval(lead.tokens[lead.done:stop])
                with self._changed:
                    lead.done = stop
        finally:
            if threads != own:
                _set_threads(llama, own)

    def _tokens(self, llama: Any, messages: list[dict[str, str]]) -> list[int] | None:
        """The prompt's tokens as llama-cpp-python's default chat handler makes them, or
        ``None`` when ``llama`` would use another handler."""
        if getattr(llama, "chat_format", None) != "chat_template.default" or getattr(
                llama, "chat_handler", None) is not None:
            return None
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            def text(token: int) -> str:
                return str(llama._model.token_get_text(token)) if token != -1 else ""

            self._formatter = Jinja2ChatFormatter(
                template=llama.metadata["tokenizer.chat_template"],
                eos_token=text(llama.token_eos()), bos_token=text(llama.token_bos()))
        result = self._formatter(messages=messages)
        return list(llama.tokenize(result.prompt.encode("utf-8"),
                                   add_bos=not result.added_special, special=True))


def usable_cores() -> int:
    """The cores this process may run on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    """How many leading items (tokens, characters) ``a`` and ``b`` have in common."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _get_cells(llama: Any) -> bytes:
    import ctypes  # with llama_cpp, which loads it anyway: registration stays light

    from llama_cpp import llama_cpp as lib

    size = lib.llama_state_seq_get_size(llama.ctx, 0)
    buffer = (ctypes.c_uint8 * size)()
    written = lib.llama_state_seq_get_data(llama.ctx, buffer, size, 0)
    return ctypes.string_at(buffer, written)  # slicing the array would make a list


def _set_cells(llama: Any, cells: bytes) -> bool:
    import ctypes

    from llama_cpp import llama_cpp as lib

    buffer = (ctypes.c_uint8 * len(cells)).from_buffer_copy(cells)
    return bool(lib.llama_state_seq_set_data(llama.ctx, buffer, len(cells), 0) == len(cells))


def _set_threads(llama: Any, batch: int) -> int:
    """Evaluate prompts on ``batch`` threads from now on (generation keeps its own)."""
    from llama_cpp import llama_cpp as lib

    lib.llama_set_n_threads(llama.ctx, llama.context_params.n_threads, batch)
    return batch
