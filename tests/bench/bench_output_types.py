"""Typed outputs: parsing a reply into its type, against raw ``json.loads`` plus cattrs.

The same reply parsed N times per round, for three outputs: an attrs class (the path every
typed call took before unions and pydantic models), a list of a tagged union of classes,
and a pydantic model (when pydantic is installed). The baseline decodes the JSON and
structures it with a plain cattrs converter into the attrs class, which is the least any
typed parse can do. Target: the attrs class at most 3x the baseline.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import anyio
import attrs
import cattrs
from _harness import alternate, header, line, median, parse_args, verdict
from plait._serialize import make_converter
from plait._structured import OutputSpec


@attrs.frozen
class Ticket:
    title: str
    priority: Literal["low", "high"]
    minutes: int


@attrs.frozen
class Billing:
    kind: Literal["billing"]
    invoice: str


@attrs.frozen
class Return:
    kind: Literal["return"]
    order: int


TICKET = '{"title": "Refund", "priority": "high", "minutes": 5}'
TASKS = '{"value": [{"kind": "billing", "invoice": "A1"}, {"kind": "return", "order": 3}]}'


async def main(rounds: int, n: int = 2000) -> None:
    conv = make_converter()
    raw_conv = cattrs.Converter()
    ticket, tasks = OutputSpec.of(Ticket), OutputSpec.of(list[Billing | Return])

    def repeat(fn: Any) -> Any:
        async def run() -> None:
            for _ in range(n):
                fn()
        return run

    setups = {
        "raw json.loads + cattrs": repeat(lambda: raw_conv.structure(json.loads(TICKET), Ticket)),
        "attrs class": repeat(lambda: ticket.parse(TICKET, None, conv)),
        "list[Billing | Return]": repeat(lambda: tasks.parse(TASKS, None, conv)),
    }
    try:
        import pydantic
    except ImportError:
        pydantic = None
    if pydantic is not None:
        class Model(pydantic.BaseModel):
            title: str
            priority: Literal["low", "high"]
            minutes: int

        model = OutputSpec.of(Model)
        setups["pydantic model"] = repeat(lambda: model.parse(TICKET, None, conv))
    samples = await alternate(setups, rounds)
    base = median(samples["raw json.loads + cattrs"])
    header(f"parse one reply, {n} per round")
    for name, runs in samples.items():
        per_call = median(runs) / n * 1e6
        ratio = median(runs) / base
        note = verdict(ratio <= 3, "<= 3x") if name == "attrs class" else ""
        line(name, f"{per_call:6.1f} µs/parse  {ratio:4.2f}x", note)


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=15)
    anyio.run(main, args.rounds, backend=args.backend)
