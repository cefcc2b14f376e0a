"""Model calls: plait's request path against raw httpx, over loopback HTTP and in process.

- **Loopback**: an OpenAI-compatible server in another process answers at once; N
  requests are sent at concurrency 50 and 200, by raw httpx (post JSON, read the reply)
  and by ``plait.Agent("openai:...").ask`` (plait-openai). Target: plait's throughput at
  least 0.95x raw httpx's at both.
- **In process** (``httpx.MockTransport``, no sockets): CPU per call, raw httpx against
  plait-openai through ``agent.ask``; and ``agent.ask`` on a provider that answers at
  once, which is plait's own work per call alone (config, budget, limiter, wrappers,
  pricing, parsing). Target: at most 40 µs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable

import anyio
import httpx
import plait
import plait.hookspecs
from _harness import alternate, header, line, median, parse_args, verdict

REPLY = {"id": "x", "object": "chat.completion", "model": "m",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                      "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}

# A keep-alive HTTP/1.1 server that answers every request with REPLY, as fast as it can.
SERVER = r"""
import asyncio, sys
BODY = sys.argv[1].encode()
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
            % len(BODY)) + BODY

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            size = 0
            for field in head.split(b"\r\n"):
                if field[:15].lower() == b"content-length:":
                    size = int(field[15:])
            if size:
                await reader.readexactly(size)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=2048)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""

PROMPT = "Say ok."


def raw_request(base: str) -> tuple[str, dict[str, object], dict[str, str]]:
    body = {"model": "m", "messages": [{"role": "user", "content": PROMPT}]}
    return f"{base}/chat/completions", body, {"authorization": "Bearer x"}


async def concurrently(n: int, concurrency: int, one: Callable[[], Awaitable[None]]) -> None:
    left = iter(range(n))

    async def worker() -> None:
        for _ in left:
            await one()

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)


async def loopback(rounds: int, n: int) -> None:
    async with await anyio.open_process([sys.executable, "-c", SERVER,
                                         json.dumps(REPLY)]) as server:
        assert server.stdout is not None
        with anyio.fail_after(30):
            port = (await server.stdout.receive()).decode().strip()
        base = f"http://127.0.0.1:{port}/v1"
        header(f"Model calls over loopback HTTP: {n:,} requests (median of {rounds})")
        try:
            for concurrency in (50, 200):
                await loopback_at(base, rounds, n, concurrency)
        finally:
            server.terminate()


async def loopback_at(base: str, rounds: int, n: int, concurrency: int) -> None:
    url, body, headers = raw_request(base)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        async def raw_one() -> None:
            response = await client.post(url, json=body, headers=headers)
            assert response.json()["choices"][0]["message"]["content"] == "ok"

        async with plait.Runtime(settings={"openai": {"base_url": base, "api_key": "x"}},
                                 tracers=[]) as runtime:
            agent = plait.Agent("openai:m")

            async def plait_one() -> None:
                assert (await agent.ask(PROMPT, runtime=runtime)).text == "ok"

            samples = await alternate(
                {"raw": lambda: concurrently(n, concurrency, raw_one),
                 "plait": lambda: concurrently(n, concurrency, plait_one)}, rounds)
    raw, ours = median(samples["raw"]), median(samples["plait"])
    line(f"concurrency {concurrency}: raw httpx", f"{n / raw:,.0f} req/s")
    line(f"concurrency {concurrency}: plait", f"{n / ours:,.0f} req/s")
    ratio = raw / ours
    line(f"concurrency {concurrency}: plait / raw httpx", f"{ratio:.2f}x",
         verdict(ratio >= 0.95, ">= 0.95x"))


async def in_process(rounds: int, n: int) -> None:
    payload = json.dumps(REPLY).encode()
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, content=payload, headers={"content-type": "application/json"}))
    base = "http://test/v1"
    url, body, headers = raw_request(base)
    async with httpx.AsyncClient(transport=transport) as client:
        async def raw() -> None:
            for _ in range(n):
                response = await client.post(url, json=body, headers=headers)
                response.json()

        async with plait.Runtime(settings={"openai": {"base_url": base, "api_key": "x"}},
                                 transport=transport, tracers=[]) as runtime:
            agent = plait.Agent("openai:m")

            async def ours() -> None:
                for _ in range(n):
                    await agent.ask(PROMPT, runtime=runtime)

            samples = await alternate({"raw": raw, "plait": ours}, rounds)
    raw_cpu = median(samples["raw"], 1) / n * 1e6
    plait_cpu = median(samples["plait"], 1) / n * 1e6
    own = await instant_calls(rounds, n)
    header(f"Model calls in process (httpx.MockTransport): CPU per call (median of {rounds})")
    line("raw httpx", f"{raw_cpu:.0f} µs/call")
    line("plait-openai through agent.ask", f"{plait_cpu:.0f} µs/call")
    line("  of which not httpx", f"{plait_cpu - raw_cpu:.0f} µs/call")
    line("agent.ask, a provider that answers at once", f"{own:.0f} µs/call",
         verdict(own <= 40, "<= 40 µs/call"))


class Instant:
    """A provider with nothing to do: what a call costs is plait's own work."""

    answer = plait.ModelResponse("ok", plait.TokenCount(5, 1))

    async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
        return self.answer


@plait.hookimpl
def plait_register_providers(register: plait.hookspecs.RegisterProvider) -> None:
    register("instant", lambda env: Instant(), prices={"*": plait.Price.per_million("1", "2")},
             limits=plait.Limits(concurrency=64))


async def instant_calls(rounds: int, n: int) -> float:
    runtime = plait.Runtime(entry_points=False, plugins=[sys.modules[__name__]])
    agent = plait.Agent("instant:m")

    async def calls() -> None:
        for _ in range(n):
            await agent.ask(PROMPT, runtime=runtime)

    return median((await alternate({"instant": calls}, rounds))["instant"], 1) / n * 1e6


async def main(rounds: int) -> None:
    await in_process(rounds, 2_000)
    await loopback(max(3, rounds // 2), 4_000)


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=7)
    anyio.run(main, args.rounds, backend=args.backend)
