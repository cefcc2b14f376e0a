"""Prompt prefixes shared across model instances, with the real SmolLM2 model."""

import threading
import time
from collections.abc import Callable
from typing import Any

import plait_local
import pytest
from llama_cpp import Llama
from plait._demos import faq
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
        evaluate = self.llama.eval

        def counted(tokens: Any) -> None:
            if gate is not None:
                assert gate.wait(WAIT), "the follower never lined up"
            self.evaluated += len(tokens)
            evaluate(tokens)

        self.llama.eval = counted  # type: ignore[method-assign]

    def reply(self, messages: list[dict[str, str]]) -> str:
        completion: Any = self.llama.create_chat_completion(messages=messages,  # type: ignore[arg-type]
                                                            temperature=0, max_tokens=24)
        return str(completion["choices"][0]["message"]["content"])


def _until(condition: Callable[[], bool], thread: threading.Thread) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.005)


def test_a_follower_copies_the_prefix_its_leader_evaluates() -> None:
    prefixes = SharedPrefixes()
    lined_up = threading.Event()
    leader, follower = Counted(lined_up), Counted()
    solar = prefixes._tokens(leader.llama, SOLAR)
    wind = prefixes._tokens(follower.llama, WIND)
    assert solar is not None and wind is not None
    shared = next(i for i, (a, b) in enumerate(zip(solar, wind, strict=False)) if a != b)
    assert shared > 300  # the three pages

    lead = threading.Thread(target=prefixes.prefill, args=(leader.llama, SOLAR))
    lead.start()
    follow = threading.Thread(target=prefixes.prefill, args=(follower.llama, WIND))
    try:
        _until(lambda: bool(prefixes._leads), lead)  # on the board, held at its first chunk
        follow.start()
        _until(lambda: bool(prefixes._leads[0].wanted), follow)  # waiting for its share
    finally:
        lined_up.set()
        lead.join(WAIT)
        follow.join(WAIT)
    assert not lead.is_alive() and not follow.is_alive()
    assert not prefixes._leads  # both left the board

    assert leader.evaluated == len(solar) - TAIL
    assert follower.evaluated == len(wind) - TAIL - shared  # the pages came copied
    assert follower.llama.n_tokens == len(wind) - TAIL
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
    prefixes.prefill(instance.llama, WIND)
    assert (instance.evaluated, instance.llama.n_tokens) == (evaluated, held)
    assert not prefixes._leads
