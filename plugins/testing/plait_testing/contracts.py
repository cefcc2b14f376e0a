"""Contract suites: one behavioural contract that every plugin of a kind is tested against.

Subclass a contract in your plugin's tests (the class name must start with ``Test``) and
supply its fixtures; every test of the contract then runs against your plugin::

    from plait_testing.contracts import ProviderContract

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        def provider(self):
            self.replies = []  # the test instance is shared with script()

            def api(request):
                return httpx.Response(200, json=my_api_body(self.replies.pop(0), request))

            http = httpx.AsyncClient(transport=httpx.MockTransport(api))
            return MyProvider(api_key="sk-test-123", http=http)

        @pytest.fixture
        def model(self):
            return "my-model"

        @pytest.fixture
        def secret(self):
            return "sk-test-123"

        def script(self, provider, reply):
            self.replies.append(reply)  # the mocked API answers this next

See docs/plugins/testing.md for what each contract checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import attrs
import plait
import pytest

from ._fake import PRICES, FakeProvider, Reply, Responder
from ._registration import provider_plugin

__all__ = ["AggregatorContract", "EnsembleOutcome", "ProviderContract", "RunStoreContract",
           "ScriptedEnsemble"]

_SECRET_SHAPED = re.compile(r"sk-[A-Za-z0-9_-]{6,}|Bearer\s+\S+", re.IGNORECASE)

_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def _user(text: str) -> plait.Message:
    return plait.Message("user", text)


@pytest.mark.anyio
class ProviderContract:
    """What every model provider must do, checked through ``await provider.complete(...)``.

    Fixtures to supply: ``provider`` (the provider object) and ``model`` (a model name,
    without the provider prefix); optionally ``secret`` (the API key the provider holds,
    which must never show in its repr).

    Class attributes: ``supports_structured_output`` (default ``True``): whether a request
    with a ``json_schema`` must come back as JSON; without it the request must still be
    accepted.

    Hook: ``script(provider, reply)`` runs before each request and makes the provider's
    next answer ``reply`` (a text; JSON text for the structured test). Providers behind an
    ``httpx.MockTransport`` queue a canned API response there; the default does nothing,
    for providers that generate on their own (a local model, a real local server).
    """

    supports_structured_output: ClassVar[bool] = True

    @pytest.fixture
    def provider(self) -> Any:
        pytest.fail(f"{type(self).__name__} must define a `provider` fixture")

    @pytest.fixture
    def model(self) -> str:
        pytest.fail(f"{type(self).__name__} must define a `model` fixture")

    @pytest.fixture
    def secret(self) -> str | None:
        return None

    def script(self, provider: Any, reply: str) -> None:
        """Make ``provider`` answer ``reply`` to its next request; by default, nothing."""

    async def _ask(self, provider: Any, reply: str,
                   request: plait.ModelRequest) -> plait.ModelResponse:
        self.script(provider, reply)
        response = await provider.complete(request)
        assert isinstance(response, plait.ModelResponse), (
            f"complete() must return a plait.ModelResponse, got {type(response).__name__}"
        )
        assert isinstance(response.text, str), "ModelResponse.text must be a str"
        return response

    def test_is_a_provider(self, provider: Any) -> None:
        assert isinstance(provider, plait.Provider), "a provider needs `async def complete`"

    async def test_returns_text(self, provider: Any, model: str) -> None:
        response = await self._ask(
            provider, "Hello there.",
            plait.ModelRequest(model=model, messages=(_user("Say hello."),), temperature=0),
        )
        assert response.text.strip(), "the reply to a plain prompt must not be empty"
        assert response.model is None or isinstance(response.model, str)

    async def test_usage_counts_are_non_negative_ints(self, provider: Any, model: str) -> None:
        response = await self._ask(
            provider, "Hello there.",
            plait.ModelRequest(model=model, messages=(_user("Say hello."),)),
        )
        usage = response.usage
        assert isinstance(usage, plait.TokenCount)
        for field in ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens"):
            value = getattr(usage, field)
            assert type(value) is int, f"usage.{field} must be an int, got {value!r}"
            assert value >= 0, f"usage.{field} must be >= 0, got {value}"

    async def test_system_prompt_and_user_message(self, provider: Any, model: str) -> None:
        response = await self._ask(
            provider, "Blue.",
            plait.ModelRequest(
                model=model,
                messages=(plait.Message("system", "Answer in one word."),
                          _user("What colour is a clear sky?")),
            ),
        )
        assert response.text.strip()

    async def test_conversation_history(self, provider: Any, model: str) -> None:
        response = await self._ask(
            provider, "Your name is Ada.",
            plait.ModelRequest(
                model=model,
                messages=(plait.Message("system", "Be brief."), _user("My name is Ada."),
                          plait.Message("assistant", "Hello Ada."), _user("What is my name?")),
            ),
        )
        assert response.text.strip()

    async def test_max_tokens_is_respected(self, provider: Any, model: str) -> None:
        long_reply = " ".join(f"word{i}" for i in range(60))
        response = await self._ask(
            provider, long_reply,
            plait.ModelRequest(model=model, max_tokens=5,
                               messages=(_user("Count from one to sixty in words."),)),
        )
        assert response.finish_reason == "length" or response.usage.output_tokens <= 5, (
            f"max_tokens=5 ignored: finish_reason={response.finish_reason!r}, "
            f"output_tokens={response.usage.output_tokens}"
        )

    async def test_structured_output(self, provider: Any, model: str) -> None:
        response = await self._ask(
            provider, '{"answer": "blue"}',
            plait.ModelRequest(
                model=model, temperature=0, json_schema=_SCHEMA, schema_name="colour",
                messages=(_user('What colour is a clear sky? Reply as JSON: {"answer": "..."}'),),
            ),
        )
        if not self.supports_structured_output:
            return  # the request was accepted; plait parses and re-asks on its own
        value = response.parsed if response.parsed is not None else _json(response.text)
        assert isinstance(value, dict), f"expected a JSON object, got {value!r}"
        assert isinstance(value.get("answer"), str), f"the schema was not followed: {value!r}"

    def test_repr_shows_no_secret(self, provider: Any, secret: str | None) -> None:
        shown = f"{provider!r} {provider!s}"
        if secret:
            assert secret not in shown, "the provider's repr or str shows its secret"
        else:
            assert not _SECRET_SHAPED.search(shown), f"something secret-shaped in {shown!r}"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pytest.fail(f"a structured request must come back as JSON, got {text!r}")


# --------------------------------------------------------------------------- aggregators

# Candidate i of a ScriptedEnsemble runs at _TEMPERATURES[i]: values no judge or
# synthesizer is likely to use, so the aggregator's own calls are never mistaken for one.
_TEMPERATURES = tuple(round(1 + i / 100, 2) for i in range(1, 51))

_WORD = re.compile(r"\S+")


class ScriptedEnsemble:
    """A ``FakeProvider`` responder that scripts an ensemble's candidates by index.

    Candidate ``i`` answers ``replies[i]`` (any fake reply: text, a JSON dict, an
    exception); every other call, the aggregator's own (a judge, a synthesis), is answered
    by ``answer(request)``. Candidates are told apart by temperature, so draw them with
    ``vary=script.vary``::

        script = ScriptedEnsemble(["Paris", " paris", "Lyon"])
        register_plugin(provider_plugin(FakeProvider(script), prices=PRICES))
        result = await ctx.ensemble(agent, "Capital of France?", n=3, vary=script.vary,
                                    aggregate="vote")

    (Concurrent candidates reach the provider in no fixed order, trio shuffles its run
    queue on purpose, so a plain scripted list would hand out replies at random.)
    ``candidate_requests`` and ``other_requests`` record what was asked.
    """

    def __init__(self, replies: Sequence[Reply], answer: Responder | None = None) -> None:
        if len(replies) > len(_TEMPERATURES):
            raise ValueError(f"ScriptedEnsemble scripts at most {len(_TEMPERATURES)} candidates")
        self.replies = list(replies)
        self._answer = answer
        self._by_temperature = dict(zip(_TEMPERATURES, self.replies, strict=False))
        self.candidate_requests: list[plait.ModelRequest] = []
        self.other_requests: list[plait.ModelRequest] = []

    @property
    def vary(self) -> dict[str, list[float]]:
        """The ``vary=`` that makes candidate ``i`` ask at its own temperature."""
        return {"temperature": list(_TEMPERATURES[: len(self.replies)])}

    def __call__(self, request: plait.ModelRequest) -> Reply | Awaitable[Reply]:
        if request.temperature in self._by_temperature:
            self.candidate_requests.append(request)
            return self._by_temperature[request.temperature]
        self.other_requests.append(request)
        if self._answer is None:
            raise AssertionError(
                "the aggregator made a model call of its own and nothing scripts it: pass "
                f"answer= (last message: {request.messages[-1].content[:200]!r})")
        return self._answer(request)


@attrs.frozen
class EnsembleOutcome:
    """One ensemble run by ``AggregatorContract``: its result, the pipeline run around it,
    the script and the fake that answered."""

    result: plait.EnsembleResult
    run: plait.PipelineResult
    script: ScriptedEnsemble
    fake: FakeProvider


@pytest.mark.anyio
class AggregatorContract:
    """What every ensemble aggregator must do, checked through real ensembles on the fake.

    Fixtures to supply: ``aggregator`` (the name it registers) and ``plugin`` (the plugin
    object registering it, usually its module). Optional: ``replies`` (the candidates'
    replies by index; default three answers, two of them equal), ``options`` (keywords
    for every ensemble: include ``seed`` if the aggregator takes one) and ``agent`` (the
    generator; a priced fake model by default).

    Hook: ``answer(request)`` answers the model calls the aggregator makes itself (a
    judge, a synthesis); the default fails the test, for aggregators that make none.

    Every ensemble runs inside a one-step pipeline under a budget, through
    ``run_ensemble(replies=..., **options)``, a fixture the subclass can use in its own
    tests. ``test_winner_is_a_candidate`` holds for aggregators that pick a candidate; one
    that writes a new answer (a synthesis) overrides it with its own check.
    """

    question: ClassVar[str] = "What is the capital of France?"

    @pytest.fixture
    def aggregator(self) -> str:
        pytest.fail(f"{type(self).__name__} must define an `aggregator` fixture (its name)")

    @pytest.fixture
    def plugin(self) -> object:
        pytest.fail(f"{type(self).__name__} must define a `plugin` fixture (the plugin "
                    "object that registers the aggregator)")

    @pytest.fixture
    def replies(self) -> list[Any]:
        return ["Paris", "Lyon", "paris"]

    @pytest.fixture
    def options(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def agent(self) -> plait.Agent:
        return plait.Agent(model="fake:priced", system="Answer in one word.", max_tokens=64)

    def answer(self, request: plait.ModelRequest) -> Reply | Awaitable[Reply]:
        """The reply to a model call the aggregator makes itself; by default, a failure."""
        pytest.fail(f"the aggregator made a model call of its own; override "
                    f"{type(self).__name__}.answer(request) to script it")

    @pytest.fixture
    def run_ensemble(
        self, plait_runtime: plait.Runtime, register_plugin: Callable[..., Any],
        plugin: object, aggregator: str, agent: plait.Agent, replies: list[Any],
        options: dict[str, Any],
    ) -> Callable[..., Awaitable[EnsembleOutcome]]:
        register_plugin(plugin)

        async def run(replies: Sequence[Any] = replies, **extra: Any) -> EnsembleOutcome:
            script = ScriptedEnsemble(replies, answer=self.answer)
            fake = FakeProvider(script)
            results: list[plait.EnsembleResult] = []

            @plait.step
            async def ask(ctx: plait.StepContext) -> None:
                results.append(await ctx.ensemble(
                    agent, self.question, n=len(replies), vary=script.vary,
                    aggregate=aggregator, **{**options, **extra}))

            pipe = plait.Pipeline("contract", steps={"ask": ask},
                                  config=plait.Config(budget=plait.usd("1")))
            with plait_runtime.plugin(provider_plugin(fake, "fake", prices=PRICES)):
                run_result = await pipe.run({}, runtime=plait_runtime)
            return EnsembleOutcome(results[0], run_result, script, fake)

        return run

    async def test_registers_its_name(self, plait_runtime: plait.Runtime,
                                      register_plugin: Callable[..., Any], plugin: object,
                                      aggregator: str) -> None:
        register_plugin(plugin)
        assert callable(plait_runtime.aggregator(aggregator))

    async def test_returns_an_aggregation(self, run_ensemble: Callable[..., Any],
                                          aggregator: str, replies: list[Any]) -> None:
        outcome = await run_ensemble()
        result = outcome.result
        assert isinstance(result.aggregation, plait.Aggregation)
        assert result.aggregator == aggregator
        assert result.winner == result.aggregation.winner
        assert result.winner is not None, "an aggregation must name a winner"
        assert len(result.candidates) + result.aggregation.calls_saved == len(replies), (
            "calls_saved must count exactly the candidates that were never drawn")

    async def test_winner_is_a_candidate(self, run_ensemble: Callable[..., Any]) -> None:
        outcome = await run_ensemble()
        drawn = {c.index: c for c in outcome.result.candidates}
        aggregation = outcome.result.aggregation
        assert aggregation.winner_index in drawn, (
            f"winner_index {aggregation.winner_index!r} names no drawn candidate")
        assert drawn[aggregation.winner_index].output == aggregation.winner, (
            "the winner must be the output of the candidate winner_index names")

    async def test_agreement_scores_and_sources_are_well_formed(
        self, run_ensemble: Callable[..., Any]
    ) -> None:
        outcome = await run_ensemble()
        aggregation = outcome.result.aggregation
        drawn = {c.index for c in outcome.result.candidates}
        if aggregation.agreement is not None:
            assert 0 <= aggregation.agreement <= 1, (
                f"agreement must be in [0, 1], got {aggregation.agreement!r}")
        assert set(aggregation.scores) <= drawn, "scores must be keyed by drawn candidates"
        assert all(isinstance(s, int | float) and not isinstance(s, bool)
                   for s in aggregation.scores.values()), "scores must be numbers"
        assert set(aggregation.sources) <= drawn, "sources must name drawn candidates"
        assert aggregation.rationale is None or isinstance(aggregation.rationale, str)
        assert isinstance(aggregation.flagged, bool)

    async def test_a_failed_candidate_is_left_out(self, run_ensemble: Callable[..., Any],
                                                  replies: list[Any]) -> None:
        failing = 0  # the first is drawn even by an aggregator that stops early
        outcome = await run_ensemble([plait.BadRequest("scripted failure"), *replies])
        result = outcome.result
        assert [f.type for f in result.failures] == ["BadRequest"]
        assert failing not in {c.index for c in result.candidates}
        aggregation = result.aggregation
        assert aggregation.winner_index != failing
        assert failing not in aggregation.scores
        assert failing not in aggregation.sources

    async def test_every_model_call_is_counted(self, run_ensemble: Callable[..., Any]) -> None:
        outcome = await run_ensemble()
        usage = outcome.result.usage
        requests = outcome.fake.requests
        assert usage.calls == len(requests), "every model call must count in result.usage"
        assert usage.input_tokens == sum(
            len(_WORD.findall(m.content)) for r in requests for m in r.messages)
        assert usage.cost > 0
        assert outcome.run.usage == usage, "the run's usage must be the ensemble's, exactly"
        drawn = outcome.result.candidates
        assert sum(c.usage.calls for c in drawn) == len(outcome.script.candidate_requests)

    async def test_is_deterministic_given_its_options(
        self, run_ensemble: Callable[..., Any]
    ) -> None:
        first = await run_ensemble()
        second = await run_ensemble()
        assert first.result.aggregation == second.result.aggregation
        asked = [sorted(_conversation(r) for r in o.script.other_requests)
                 for o in (first, second)]
        assert asked[0] == asked[1], "the aggregator's own calls must not depend on chance"


def _conversation(request: plait.ModelRequest) -> tuple[tuple[str, str], ...]:
    return tuple((m.role, m.content) for m in request.messages)


def _run(run_id: str, **changes: Any) -> plait.RunRow:
    fields: dict[str, Any] = {"pipeline": "p", "status": "running", "started_at": 1000.0,
                              "structure": {"a": (), "b": ("a",)}, "fingerprint": "f1",
                              "inputs": {"text": "héllo", "n": [1, {"k": None}]}}
    fields.update(changes)
    return plait.RunRow(run_id, **fields)


def _step(run_id: str, path: str, output: Any, status: Any = "ok") -> plait.StepRow:
    usage = plait.Usage(3, 4, cost=plait.usd("0.000123"))
    return plait.StepRow(run_id, path, plait.StepRecord(path, status, 1, 1.0, 2.0, 1.0, usage),
                         output)


@pytest.mark.anyio
class RunStoreContract:
    """What every run store must do, checked through the ``plait.RunStore`` methods.

    Fixture to supply: ``store``, a fresh, empty store (yield it; the contract closes it).
    """

    @pytest.fixture
    def store(self) -> Any:
        pytest.fail(f"{type(self).__name__} must define a `store` fixture")

    async def _ready(self, store: Any, *rows: Any) -> None:
        await store.open()
        store.write(list(rows))
        await store.flush()

    async def test_is_a_run_store(self, store: Any) -> None:
        assert isinstance(store, plait.RunStore)
        assert isinstance(store.location, str)
        assert store.location

    async def test_unknown_run_is_none(self, store: Any) -> None:
        await store.open()
        assert await store.load("nope") is None
        assert await store.runs() == []

    async def test_rows_come_back_equal(self, store: Any) -> None:
        run = _run("r1")
        item = plait.ItemRow("r1", "b", 2, 5, {"x": [1, 2]}, None, plait.Usage(1, 1))
        failed = plait.ItemRow("r1", "b", 3, 5, None, plait.ErrorInfo("ValueError", "bad"))
        calls = (plait.CallRow("r1", "c1", "a", "fake:m", 1, 1000.5, 0.25,
                               plait.Usage(5, 7, calls=1, cost=plait.usd("0.0001"))),
                 plait.CallRow("r1", "c2", "b/3", "fake:m", 2, 1000.75, 0.5,
                               error=plait.ErrorInfo("RateLimited", "slow down", 1),
                               prompt=(("system", "Be brief."), ("user", "hi")), reply="yo"))
        await self._ready(store, run, _step("r1", "a", {"deep": ["ü", 1.5, True]}),
                          _step("r1", "b/inner", None, "failed"), item, failed,
                          plait.OnceRow("r1", "charge", {"id": "ch_1"}), *reversed(calls))
        got = await store.load("r1")
        assert got.run == run
        assert got.steps == {"a": _step("r1", "a", {"deep": ["ü", 1.5, True]}),
                             "b/inner": _step("r1", "b/inner", None, "failed")}
        assert got.items == {"b": {2: item, 3: failed}}
        assert got.once == {"charge": {"id": "ch_1"}}
        assert got.calls == calls  # in the order they started
        assert got.steps["a"].record.usage.cost == plait.usd("0.000123")  # exact, not float

    async def test_a_row_replaces_the_one_with_its_key(self, store: Any) -> None:
        await self._ready(store, _run("r1"), _step("r1", "a", 1), _step("r1", "a", 2),
                          _run("r1", status="ok", ended_at=1001.0))
        got = await store.load("r1")
        assert got.run.status == "ok"
        assert got.run.ended_at == 1001.0
        assert got.steps["a"].output == 2
        assert [r.run_id for r in await store.runs()] == ["r1"]

    async def test_runs_filters_newest_first(self, store: Any) -> None:
        await self._ready(store, _run("old", started_at=10.0, status="ok"),
                          _run("mid", started_at=20.0, status="failed", pipeline="q"),
                          _run("new", started_at=30.0, status="ok"))
        assert [r.run_id for r in await store.runs()] == ["new", "mid", "old"]
        assert [r.run_id for r in await store.runs(status="ok")] == ["new", "old"]
        assert [r.run_id for r in await store.runs(pipeline="q")] == ["mid"]
        assert [r.run_id for r in await store.runs(since=20.0)] == ["new", "mid"]
        assert [r.run_id for r in await store.runs(limit=1)] == ["new"]

    async def test_delete_and_prune_remove_every_row(self, store: Any) -> None:
        await self._ready(store, _run("a", started_at=10.0), _step("a", "s", 1),
                          plait.OnceRow("a", "x", 1),
                          plait.ItemRow("a", "s", 0, 1, 5),
                          plait.CallRow("a", "c", "s", "fake:m", 1, 10.0, 0.1),
                          _run("b", started_at=20.0),
                          _run("c", started_at=30.0))
        assert await store.delete(["a", "zzz"]) == 1
        assert await store.load("a") is None
        store.write([_run("a", started_at=10.0)])  # the same id again: nothing left over
        await store.flush()
        again = await store.load("a")
        assert (again.steps, again.items, again.once, again.calls) == ({}, {}, {}, ())
        assert await store.delete(["a"]) == 1
        assert await store.prune(before=25.0) == 1
        assert [r.run_id for r in await store.runs()] == ["c"]

    async def test_concurrent_runs_lose_no_row(self, store: Any) -> None:
        await store.open()

        async def one_run(n: int) -> None:
            store.write([_run(f"r{n}")])
            for i in range(50):
                store.write([plait.ItemRow(f"r{n}", "fan", i, 50, i * n)])
                await anyio.lowlevel.checkpoint()

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for n in range(8):
                    tg.start_soon(one_run, n)
            await store.flush()
        for n in range(8):
            got = await store.load(f"r{n}")
            assert {i: r.value for i, r in got.items["fan"].items()} == {
                i: i * n for i in range(50)}
