"""The worst-case input-token estimate a budget holds, against SmolLM2's real tokenizer.

plait-local reports llama.cpp's ``prompt_tokens``: the request rendered through the model's
own chat template, then tokenized (``Llama.tokenize``), exactly as it is sent.
"""

import plait
import plait_local
import pytest
from plait._calls import estimate_input_tokens

pytestmark = pytest.mark.local_model

# SmolLM2's template adds its own system prompt (~21 tokens) when the request has none, and
# the assistant's opening (3): the estimate's allowance for what a template adds covers them.
CHINESE = "请用一句话介绍一下你自己，并告诉我今天的天气怎么样。"  # noqa: RUF001  # Chinese punctuation on purpose


@pytest.mark.parametrize(
    "messages",
    [
        [("user", "Say hello in one short sentence.")],
        [("system", "Be brief."), ("user", "hi")],
        # 104 characters but 312 bytes: counting characters falls short of the real count
        [("user", CHINESE * 4)],
        [("system", "回答要简短 🙂"), ("user", "Ünïcödé façade — naïve café ☕ 東京")],
        [("user", "hi")],  # the template's own system prompt is most of this one
        # many short turns: without the per-message allowance the estimate falls short
        [("user", "a"), ("assistant", "b")] * 8 + [("user", "c")],
        [("user", "🎉🚀🌍🔥😀🙏🏽👨‍👩‍👧‍👦")],
    ],
    ids=["ascii", "system-and-user", "chinese", "mixed-non-ascii", "tiny", "many-short",
         "emoji"],
)
async def test_the_estimate_is_an_upper_bound_on_real_prompt_tokens(
    smollm2: plait_local.LocalProvider, messages: list[tuple[str, str]]
) -> None:
    request = plait.ModelRequest(
        model="smollm2", messages=tuple(plait.Message(r, c) for r, c in messages),
        max_tokens=1, temperature=0,
    )
    real = (await smollm2.complete(request)).usage.input_tokens
    assert 0 < real <= estimate_input_tokens(request)
