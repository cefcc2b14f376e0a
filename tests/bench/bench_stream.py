"""Streaming: ``ctx.stream`` against raw httpx streaming, from a loopback SSE server.

An OpenAI-compatible server in another process answers every request at once with a
Chat Completions stream (Server-Sent Events, one ``chat.completion.chunk`` per event, the
usage last, then ``[DONE]``), as fast as it can write. Raw httpx reads it the way a client
written by hand would: ``client.stream``, ``httpx_sse`` to split the events, ``json.loads``
on each, the delta's text out. plait reads it through ``agent.stream`` (plait-openai, the
engine's budget, limiter and wrappers path, a ``StreamChunk`` per event). Both reuse one
keep-alive connection.

- **Time to first token**: short streams (20 events) one after another; the time from
  starting the call to holding its first text, median over the requests. Target: plait's
  at most 1.10x raw httpx's.
- **Chunks per second**: long streams (5,000 events) read to the end. Target: plait's
  throughput at least 0.90x raw httpx's.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import anyio
import httpx
import httpx_sse
import plait
from _harness import alternate, header, line, median, parse_args, verdict

SHORT, LONG = 20, 5_000  # events per stream

# A keep-alive HTTP/1.1 server answering each POST with a chunked SSE body of N events,
# N from the request's "n" field. Each event goes out as its own chunk, written at once.
SERVER = r"""
import asyncio, json

def event(data):
    block = ("data: " + data + "\n\n").encode()
    return b"%x\r\n%s\r\n" % (len(block), block)

def chunk(text):
    return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                       "model": "m", "choices": [{"index": 0, "delta": {"content": text},
                                                  "finish_reason": None}]})

USAGE = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1,
                                             "total_tokens": 6}})
HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\n\r\n")
BODIES = {}

def body(n):
    if n not in BODIES:
        BODIES[n] = (b"".join(event(chunk("tok ")) for _ in range(n)) + event(USAGE)
                     + event("[DONE]") + b"0\r\n\r\n")
    return BODIES[n]

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            size = 0
            for field in head.split(b"\r\n"):
                if field[:15].lower() == b"content-length:":
                    size = int(field[15:])
            n = json.loads(await reader.readexactly(size))["n"]
            writer.write(HEAD + body(n))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


class Clients:
    """The two ways of reading a stream, each returning (seconds to first text, texts)."""

    def __init__(self, base: str, client: httpx.AsyncClient, runtime: plait.Runtime) -> None:
        self.url = f"{base}/chat/completions"
        self.client = client
        self.runtime = runtime
        self.agent = plait.Agent("openai:m")

    async def raw(self, n: int) -> tuple[float, int]:
        body = {"model": "m", "messages": [{"role": "user", "content": "go"}], "stream": True,
                "stream_options": {"include_usage": True}, "n": n}
        t0 = time.perf_counter()
        first, texts = 0.0, 0
        async with self.client.stream("POST", self.url, json=body,
                                      headers={"authorization": "Bearer x"}) as response:
            async for event in httpx_sse.EventSource(response).aiter_sse():
                if event.data == "[DONE]":
                    continue
                choices = json.loads(event.data)["choices"]
                if choices and choices[0]["delta"].get("content"):
                    texts += 1
                    if texts == 1:
                        first = time.perf_counter() - t0
        return first, texts

    async def plait(self, n: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        first, texts = 0.0, 0
        async with self.agent.stream("go", runtime=self.runtime, extra={"n": n}) as stream:
            async for _ in stream:
                texts += 1
                if texts == 1:
                    first = time.perf_counter() - t0
        return first, texts


async def time_to_first_token(clients: Clients, rounds: int, requests: int) -> None:
    firsts: dict[str, list[float]] = {"raw": [], "plait": []}
    for _ in range(rounds * requests):  # one of each in turn: load elsewhere hits both
        for name, times in firsts.items():
            first, texts = await getattr(clients, name)(SHORT)
            assert texts == SHORT
            times.append(first)
    raw, ours = statistics.median(firsts["raw"]), statistics.median(firsts["plait"])
    header(f"Time to first token: {requests} streams of {SHORT} events x {rounds} rounds "
           "(median)")
    line("raw httpx + httpx-sse", f"{raw * 1e6:,.0f} µs")
    line("plait agent.stream (plait-openai)", f"{ours * 1e6:,.0f} µs")
    ratio = ours / raw
    line("plait / raw httpx", f"{ratio:.2f}x", verdict(ratio <= 1.10, "<= 1.10x"))


async def chunks_per_second(clients: Clients, rounds: int, streams: int) -> None:
    async def many(read: str) -> None:
        for _ in range(streams):
            _, texts = await getattr(clients, read)(LONG)
            assert texts == LONG

    samples = await alternate({"raw": lambda: many("raw"), "plait": lambda: many("plait")},
                              rounds)
    total = streams * LONG
    raw, ours = median(samples["raw"]), median(samples["plait"])
    header(f"Chunks per second: {streams} streams of {LONG:,} events (median of {rounds})")
    line("raw httpx + httpx-sse", f"{total / raw:,.0f} chunks/s")
    line("plait agent.stream (plait-openai)", f"{total / ours:,.0f} chunks/s")
    ratio = raw / ours
    line("plait / raw httpx", f"{ratio:.2f}x", verdict(ratio >= 0.90, ">= 0.90x"))
    raw_cpu, our_cpu = median(samples["raw"], 1), median(samples["plait"], 1)
    line("CPU per chunk: raw httpx", f"{raw_cpu / total * 1e6:.1f} µs")
    line("CPU per chunk: plait", f"{our_cpu / total * 1e6:.1f} µs")


async def main(rounds: int) -> None:
    async with await anyio.open_process([sys.executable, "-c", SERVER]) as server:
        assert server.stdout is not None
        with anyio.fail_after(30):
            port = (await server.stdout.receive()).decode().strip()
        base = f"http://127.0.0.1:{port}/v1"
        try:
            async with httpx.AsyncClient() as client, plait.Runtime(
                    settings={"openai": {"base_url": base, "api_key": "x"}},
                    tracers=[]) as runtime:
                clients = Clients(base, client, runtime)
                await time_to_first_token(clients, rounds, 200)
                await chunks_per_second(clients, rounds, 10)
        finally:
            server.terminate()


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=5)
    anyio.run(main, args.rounds, backend=args.backend)
