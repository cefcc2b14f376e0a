"""The provider price tables in docs/plugins/*.md match the plugins' PRICES (no drift)."""

from __future__ import annotations

import importlib
import pathlib
import re
from decimal import Decimal

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["openai", "anthropic", "gemini"])
def test_price_table_matches_the_plugin(name: str) -> None:
    module = importlib.import_module(f"plait_{name}")
    page = (ROOT / "docs" / "plugins" / f"{name}.md").read_text()
    assert module.PRICES_AS_OF in page
    rows = {m[1]: m[0] for m in re.finditer(r"^\| `([^`]+)` \|.*\$.*$", page, re.M)}
    for model, price in module.PRICES.items():
        if model == "*":
            continue
        assert model in rows, f"{model} is priced by plait-{name} but not in its docs page"
        shown = {Decimal(x).normalize() for x in re.findall(r"\$([\d.]+)", rows[model])}
        amounts = (price.input, price.output, price.cached_input, price.cache_write)
        assert shown == {a.normalize() for a in amounts if a is not None}, model
