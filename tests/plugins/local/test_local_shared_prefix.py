"""Prompt prefixes shared across model instances, with the real SmolLM2 model."""

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import plait
import plait_local
import pytest
from llama_cpp import Llama
from llama_cpp import llama_cpp as lib
from plait._demos import faq
from plait_local import _prefix
from plait_local._models import resolve_model
from plait_local._prefix import TAIL, SharedPrefixes

pytestmark = pytest.mark.local_model

WAIT = 60  # seconds any step of these tests may take, however loaded the machine


def _messages(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": faq.PAGES_SYSTEM},
            {"role": "user", "content": faq.ANSWER_PROMPT.format(content=faq.CONTENT,
                                                                 question=question)}]


SOLAR = _messages("What are the benefits of solar energy?")
WIND = _messages("How do wind turbines generate electricity?")


class Counted:
    """A real instance that counts the prompt tokens it evaluates; its first evaluation
    waits for ``gate``, so a test can line up a follower behind it."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.llama = plait_local.LlamaLoader()(resolve_model("smollm2"))
        assert isinstance(self.llama, Llama)
        self.evaluated = 0
        self.threads: list[int] = []  # the prompt threads of each evaluation
        evaluate = self.llama.eval

        def counted(tokens: Any) -> None:
            if gate is not None:
                assert gate.wait(WAIT), "the follower never lined up"
            self.evaluated += len(tokens)
            self.threads.append(lib.llama_n_threads_batch(self.llama.ctx))
            evaluate(tokens)

        self.llama.eval = counted  # type: ignore[method-assign]

    def reply(self, messages: list[dict[str, str]]) -> str:
        completion: Any = self.llama.create_chat_completion(messages=messages,  # type: ignore[arg-type]
                                                            temperature=0, max_tokens=24)
        return str(completion["choices"][0]["message"]["content"])


def _until(condition: Callable[[], bool], thread: threading.Thread) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert thread.is_alive()
        assert time.monotonic() < deadline
        time.sleep(0.005)


@pytest.mark.parametrize("cores", [2, 1])
def test_a_follower_copies_the_prefix_its_leader_evaluates(
        cores: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a core to spare, the leader evaluates on the waiting follower's too; never on
    more threads than the process has cores."""
    monkeypatch.setattr(_prefix, "usable_cores", lambda: cores)
    prefixes = SharedPrefixes()
    lined_up = threading.Event()
    leader, follower = Counted(lined_up), Counted()
    solar = prefixes._tokens(leader.llama, SOLAR)
    wind = prefixes._tokens(follower.llama, WIND)
    assert solar is not None
    assert wind is not None
    shared = next(i for i, (a, b) in enumerate(zip(solar, wind, strict=False)) if a != b)
    assert shared > 300  # the three pages

    lead = threading.Thread(target=prefixes.prefill, args=(leader.llama, SOLAR),
                            kwargs={"alone": False})
    lead.start()
    follow = threading.Thread(target=prefixes.prefill, args=(follower.llama, WIND),
                              kwargs={"alone": False})
    try:
        _until(lambda: bool(prefixes._leads), lead)  # on the board, held at its first chunk
        follow.start()
        _until(lambda: bool(prefixes._leads[0].wanted), follow)  # waiting for its share
    finally:
        lined_up.set()
        lead.join(WAIT)
        follow.join(WAIT)
    assert not lead.is_alive()
    assert not follow.is_alive()
    assert not prefixes._leads  # both left the board

    assert leader.evaluated == len(solar) - TAIL
    # The pages came copied; the few tokens after them are left to the completion.
    assert follower.evaluated == 0
    assert follower.llama.n_tokens == shared
    # While the follower waited, its core was the leader's: two threads, then its own one.
    assert leader.threads[0] == 1
    assert max(leader.threads) == cores
    assert lib.llama_n_threads_batch(leader.llama.ctx) == 1
    # The copied cells are the real thing: the same replies as contexts that evaluated
    # every token themselves.
    fresh = Counted()
    expected_wind = fresh.reply(WIND)
    fresh.llama.reset()
    assert follower.reply(WIND) == expected_wind
    assert leader.reply(SOLAR) == fresh.reply(SOLAR)


def test_a_prompt_the_context_already_holds_is_left_to_the_completion() -> None:
    prefixes = SharedPrefixes()
    instance = Counted()
    instance.reply(WIND)  # the context now holds the prompt and the reply
    evaluated, held = instance.evaluated, instance.llama.n_tokens
    prefixes.prefill(instance.llama, WIND, alone=False)
    assert (instance.evaluated, instance.llama.n_tokens) == (evaluated, held)
    assert not prefixes._leads


def test_a_request_alone_is_left_to_the_completion() -> None:
    """With no other request of the model about, nobody can share: the prompt is
    evaluated by the completion as it would be without sharing, in one piece."""
    prefixes = SharedPrefixes()
    instance = Counted()
    prefixes.prefill(instance.llama, WIND, alone=True)
    assert (instance.evaluated, instance.llama.n_tokens) == (0, 0)
    assert not prefixes._leads


async def test_concurrent_requests_evaluate_their_shared_pages_once() -> None:
    """Two answers over the same pages at once, through the provider: the pages are
    evaluated by one instance and copied to the other, and both replies are whole."""
    instances: list[Counted] = []

    def load(_path: Any) -> Llama:
        instances.append(Counted())
        return instances[-1].llama

    provider = plait_local.LocalProvider(load, parallel=2)
    replies: list[plait.ModelResponse] = []

    async def ask(messages: list[dict[str, str]]) -> None:
        request = plait.ModelRequest(
            model="smollm2", messages=tuple(plait.Message(m["role"], m["content"])
                                            for m in messages),
            temperature=0, max_tokens=8, timeout=WAIT)
        replies.append(await provider.complete(request))

    async def together(*prompts: list[dict[str, str]]) -> None:
        with anyio.fail_after(2 * WAIT):
            async with anyio.create_task_group() as tg:
                for messages in prompts:
                    tg.start_soon(ask, messages)

    hello = [{"role": "user", "content": "Hi"}]
    await together(hello, hello)  # both instances loaded: the answers arrive together
    assert len(instances) == 2
    for instance in instances:
        instance.evaluated = 0
    replies.clear()
    await together(SOLAR, WIND)
    assert len(replies) == 2
    assert all(r.text.strip() for r in replies)
    generated = sum(r.usage.output_tokens for r in replies)
    prompts = sum(r.usage.input_tokens for r in replies)
    solar = SharedPrefixes()._tokens(instances[0].llama, SOLAR)
    wind = SharedPrefixes()._tokens(instances[0].llama, WIND)
    assert solar is not None
    assert wind is not None
    shared = next(i for i, (a, b) in enumerate(zip(solar, wind, strict=False)) if a != b)
    # Unshared, every prompt token and every generated one but the last is evaluated
    # (less the few the warm-up left in common); shared, the pages are evaluated once.
    assert sum(i.evaluated for i in instances) <= prompts + generated - shared
