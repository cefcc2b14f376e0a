"""plait-prices: models priced from genai-prices' data through the plait_price hook, ahead
of the provider's own table, which still answers for what the data does not know."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import plait
import plait_prices
from plait_testing import FakeProvider, provider_plugin

STALE = plait.Price.per_million("9", "9")  # a table entry that went out of date


def runtime(fake: FakeProvider,
            prices: dict[str, plait.Price] | None = None) -> plait.Runtime:
    return plait.Runtime(entry_points=False, prices=prices, plugins=[
        plait_prices,
        provider_plugin(fake, "openai", prices={"gpt-4o-mini": STALE, "my-finetune": STALE}),
    ])


def test_the_data_answers_before_the_providers_table() -> None:
    rt = runtime(FakeProvider())
    price = rt.price("openai", "gpt-4o-mini")
    assert price == plait.Price(Decimal("0.15"), Decimal("0.60"), Decimal("0.075"),
                                Decimal("0.15"))
    assert rt.price("openai", "gpt-4o-mini-2024-07-18") == price  # a dated snapshot
    assert rt.price("openai", "my-finetune") == STALE  # unknown to the data: the table's


def test_it_prices_what_the_tables_leave_out_and_no_local_model() -> None:
    assert plait_prices.price_of("openrouter", "openai/gpt-4o-mini") is not None
    assert plait_prices.plait_price("openrouter", "openai/gpt-4o-mini") is not None
    assert plait_prices.plait_price("gemini", "gemini-2.5-flash") == plait_prices.price_of(
        "google", "gemini-2.5-flash")
    assert plait_prices.plait_price("ollama", "llama3") is None  # a local server: free
    assert plait_prices.plait_price("openai", "no-such-model") is None


def test_a_runtime_override_still_wins() -> None:
    mine = plait.Price.per_million("1", "1")
    rt = runtime(FakeProvider(), prices={"openai:gpt-4o-mini": mine})
    assert rt.price("openai", "gpt-4o-mini") == mine


async def test_a_call_is_charged_at_the_datas_price() -> None:
    fake = FakeProvider([plait.ModelResponse("hi", plait.TokenCount(1_000_000, 1_000_000))])
    reply = await plait.Agent("openai:gpt-4o-mini").ask("hello", runtime=runtime(fake))
    assert reply.usage.cost == Decimal("0.75")  # $0.15 in + $0.60 out, per million
    assert reply.usage.cost_known


def test_loading_the_plugin_does_not_import_the_data() -> None:
    code = ("import sys, plait, plait_prices\n"
            "plait.Runtime(plugins=[plait_prices], entry_points=False).load()\n"
            "print('genai_prices' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "False"
