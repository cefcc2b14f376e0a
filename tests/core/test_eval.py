"""plait.evaluate and plait eval: scores, variants, the report, budgets, the curve."""

from __future__ import annotations

import json
import pathlib
import sys
from decimal import Decimal
from typing import Any

import anyio
import plait
import pytest
from click.testing import CliRunner
from plait._builtin.metrics import contains, exact, json_match, one_of, within
from plait._calls import estimate_input_tokens
from plait._cli import cli
from plait._console import usage_line
from plait._eval import parse_cases
from plait._eval_report import percentile, wilson_interval

AGENT = plait.Agent("fake:priced", max_tokens=10)


def doubling() -> plait.Pipeline:
    return plait.Pipeline("double", steps={"d": plait.step(lambda ctx: ctx.input("x") * 2)})


CASES = [{"inputs": {"x": 1}, "expected": 2, "id": "one"},
         {"inputs": {"x": 2}, "expected": 4, "id": "two"},
         {"inputs": {"x": 3}, "expected": 7, "id": "three"}]


def test_the_built_in_metrics() -> None:
    assert exact(" yes\n", "yes")
    assert not exact(2, "2")
    assert contains("The answer is PARIS.", "paris")
    assert contains({"city": "Paris"}, "Paris")
    assert one_of("b", ["a", "b"])
    assert not one_of("c", ["a", "b"])
    with pytest.raises(TypeError, match="list of accepted answers"):
        one_of("a", "abc")
    assert json_match('{"a": 1, "b": [1, {"c": 2, "d": 3}]}', {"b": [1, {"c": 2}]})
    assert not json_match('{"a": 1}', {"a": 2})
    assert not json_match("not json", {"a": 1})
    assert not json_match({"b": [1, 2]}, {"b": [1]})
    assert within("3.0000000001", 3)
    assert within(3.4, {"value": 3, "tolerance": 0.5})
    assert not within(3.6, {"value": 3, "tolerance": 0.5})
    assert not within("three", 3)


def test_wilson_interval_and_percentiles() -> None:
    low, high = wilson_interval(10, 10)
    assert high == 1.0
    assert 0.69 < low < 0.73  # 10 of 10 does not prove 100%
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert 0.27 < high < 0.31
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3)
    assert high == pytest.approx(0.5962, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 21)], 95) == 19.0
    assert percentile([], 50) == 0.0


async def test_evaluate_scores_every_case_and_reports_the_variant(
        plait_runtime: plait.Runtime) -> None:
    report = await plait.evaluate(doubling(), CASES, runtime=plait_runtime)
    (v,) = report.variants
    assert [r.id for r in v.results] == ["one", "two", "three"]
    assert [r.score for r in v.results] == [1.0, 1.0, 0.0]
    assert v.accuracy == pytest.approx(2 / 3)
    assert v.interval == wilson_interval(2, 3)
    assert v.cases == 3
    assert v.failures == 0
    assert report.differing == ()
    again = plait.EvalReport.from_json(report.to_json())
    assert again == report


async def test_variants_side_by_side_and_the_outputs_that_differed(
        plait_runtime: plait.Runtime) -> None:
    @plait.step
    def times(ctx: plait.StepContext) -> int:
        return int(ctx.input("x") * ctx.input("k"))

    report = await plait.evaluate(times, CASES, runtime=plait_runtime, vary={"k": [2, 3]})
    assert [v.name for v in report.variants] == ["k=2", "k=3"]
    assert [v.settings for v in report.variants] == [{"k": 2}, {"k": 3}]
    assert [v.accuracy for v in report.variants] == [pytest.approx(2 / 3), 0.0]
    assert [(d.id, dict(d.outputs)) for d in report.differing] == [
        ("one", {"k=2": 2, "k=3": 3}), ("two", {"k=2": 4, "k=3": 6}),
        ("three", {"k=2": 6, "k=3": 9})]
    both = await plait.evaluate({"double": doubling(), "same": times}, CASES[:1],
                                runtime=plait_runtime, vary={"k": [1]})
    assert [v.name for v in both.variants] == ["double k=1", "same k=1"]
    assert both.variants[1].settings == {"target": "same", "k": 1}


async def test_a_user_metric_with_partial_credit_and_one_that_fails(
        plait_runtime: plait.Runtime) -> None:
    def closeness(output: int, expected: int) -> float:
        return 1 - min(abs(output - expected) / expected, 1)

    async def broken(output: Any, expected: Any, mctx: plait.MetricContext) -> bool:
        assert mctx.runtime is plait_runtime
        if mctx.inputs["x"] == 2:
            raise RuntimeError("no opinion")
        return True

    report = await plait.evaluate(doubling(), CASES, metrics=[closeness, broken],
                                  runtime=plait_runtime)
    v = report.variants[0]
    assert report.metrics == ("closeness", "broken")
    assert v.results[2].score == pytest.approx(6 / 7)
    assert v.metrics["broken"] == pytest.approx(2 / 3)
    assert v.failures == 1
    error = v.results[1].error
    assert error is not None
    assert error.message == "metric 'broken': no opinion"


async def test_a_failed_run_is_a_failure_with_its_error_and_the_eval_goes_on(
        plait_runtime: plait.Runtime) -> None:
    @plait.step(retries=0)
    def picky(ctx: plait.StepContext) -> int:
        if ctx.input("x") == 2:
            raise ValueError("two is not allowed")
        return int(ctx.input("x") * 2)

    report = await plait.evaluate(picky, CASES, runtime=plait_runtime)
    v = report.variants[0]
    assert v.failures == 1
    assert v.results[1].output is None
    assert v.results[1].error is not None
    assert "two is not allowed" in v.results[1].error.message
    assert [r.score for r in v.results] == [1.0, 0.0, 0.0]


async def test_bad_input_is_a_typed_error(plait_runtime: plait.Runtime) -> None:
    for cases, match in (([], "no cases"), ([{"input": {}}], "unknown key.*input"),
                         ([{"inputs": [1]}], "inputs must be an object"), ([3], "mapping")):
        with pytest.raises(plait.EvalError, match=match):
            await plait.evaluate(doubling(), cases, runtime=plait_runtime)
    with pytest.raises(plait.UnknownPlugin, match=r"unknown metric 'judge'.*plait-judge"):
        await plait.evaluate(doubling(), CASES, metrics=["judge"], runtime=plait_runtime)
    for vary, match in (({"n": []}, "non-empty"), ({"model": ["gpt-4o"]}, "provider"),
                        ({"n": "135"}, "list")):
        with pytest.raises(plait.EvalError, match=match):
            await plait.evaluate(doubling(), CASES, vary=vary, runtime=plait_runtime)
    with pytest.raises(plait.EvalError, match="limit"):
        await plait.evaluate(doubling(), CASES, limit=0, runtime=plait_runtime)
    with pytest.raises(plait.EvalError, match="line 2: not valid JSON"):
        parse_cases(['{"inputs": {}}', "{oops"])


async def test_cases_run_at_most_limit_at_a_time(plait_runtime: plait.Runtime) -> None:
    running = peak = 0

    @plait.step
    async def slow(ctx: plait.StepContext) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01)
        running -= 1
        return 0

    with anyio.fail_after(10):
        await plait.evaluate(slow, [{"inputs": {}}] * 9, runtime=plait_runtime, limit=3)
    assert peak == 3


async def test_one_budget_covers_the_whole_eval(plait_runtime: plait.Runtime,
                                                fake_provider: Any) -> None:
    @plait.step(retries=0)
    async def ask(ctx: plait.StepContext) -> str:
        return str((await ctx.ask(AGENT, "hi")).output)

    one = await plait.evaluate(ask, [{"inputs": {}, "expected": "hi"}], runtime=plait_runtime)
    cost = one.variants[0].cost
    assert cost > 0
    # a call reserves its worst case, far above what it costs: this budget lets calls in
    # until 5 calls have been paid for, then exactly one more
    worst = plait.Price.per_million("1", "2").worst_case(
        estimate_input_tokens(fake_provider.requests[0]), 10)
    budget = worst + cost * 5
    cases = [{"inputs": {}, "expected": "hi"}] * 20
    report = await plait.evaluate(ask, cases, runtime=plait_runtime, budget=budget, limit=1)
    assert report.stopped is not None
    assert "budget" in report.stopped
    assert report.usage.cost <= budget
    ran = report.variants[0]
    refused = [r.error for r in ran.results if r.error is not None]
    assert [e.type for e in refused] == ["BudgetExceeded"]
    assert ran.cases == 7  # 6 fit (the last exactly), the 7th was refused, none after
    assert json.loads(report.to_json())["budget"] == str(budget)


async def test_model_variants_override_every_agent_and_restore_the_runtime(
        plait_runtime: plait.Runtime, fake_provider: Any) -> None:
    @plait.step
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(AGENT, "hi")).model

    report = await plait.evaluate(ask, [{"inputs": {}}], runtime=plait_runtime,
                                  vary={"model": ["fake:a", "fake:b"]})
    assert [v.results[0].output for v in report.variants] == ["a", "b"]
    assert plait_runtime.model_override is None


def test_usage_line_counts_cache_hits() -> None:
    assert usage_line(plait.Usage(calls=1, cache_hits=2)).endswith(", 2 from cache")
    assert "cache" not in usage_line(plait.Usage(calls=1))


# -- the command line -----------------------------------------------------------------------

FLOW = '''
import plait

@plait.step
def double(ctx):
    return ctx.input("x") * ctx.input("k", 2)

@plait.step
def square(ctx):
    return ctx.input("x") ** 2
'''


@pytest.fixture
def project(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    name = f"evalflow_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(FLOW)
    (tmp_path / "cases.jsonl").write_text(
        "\n".join(json.dumps(c) for c in CASES) + "\n\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "")
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / name


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), prog_name="plait")


def test_plait_eval_prints_the_table_and_the_json_report(project: pathlib.Path) -> None:
    mod = project.name
    result = invoke("eval", f"{mod}:double", "--data", "cases.jsonl", "--vary", "k=2,3")
    assert result.exit_code == 0, result.output
    assert "k=2" in result.stdout
    assert "67%" in result.stdout
    assert "3 case(s) where the outputs differed" in result.stdout
    result = invoke("eval", "--target", f"{mod}:double", "--target", f"{mod}:square",
                    "--data", "cases.jsonl", "--json")
    assert result.exit_code == 0, result.output
    report = plait.EvalReport.from_json(result.stdout)
    assert [v.name for v in report.variants] == [f"{mod}:double", f"{mod}:square"]
    assert [v.accuracy for v in report.variants] == [pytest.approx(2 / 3), pytest.approx(1 / 3)]


def test_plait_eval_refuses_bad_options(project: pathlib.Path) -> None:
    mod = project.name
    (project.parent / "bad.jsonl").write_text('{"inputs": {}}\nnope\n')
    for args, message in (
            (["--vary", "k"], "'k' is not KEY=VALUE"),
            (["--vary", "k=1", "--vary", "k=2"], "varied twice"),
            (["--budget", "lots"], "not a USD amount"),
            (["--metric", "nope"], "unknown metric 'nope'"),
            (["--data", "bad.jsonl"], "bad.jsonl, line 2: not valid JSON")):
        data = [] if "--data" in args else ["--data", "cases.jsonl"]
        result = invoke("eval", f"{mod}:double", *data, *args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    result = invoke("eval", "--data", "cases.jsonl")
    assert result.exit_code == 2
    assert "name what to evaluate" in result.output


def test_plait_eval_draws_the_curve(project: pathlib.Path) -> None:
    result = invoke("eval", f"{project.name}:double", "--data", "cases.jsonl",
                    "--vary", "k=1,2", "--plot", "curve.png")
    assert result.exit_code == 0, result.output
    assert (project.parent / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plait_eval_names_the_extra_when_matplotlib_is_missing(
        project: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    result = invoke("eval", f"{project.name}:double", "--data", "cases.jsonl",
                    "--plot", "curve.png")
    assert result.exit_code == 1
    assert "drawing a plot needs matplotlib: pip install 'plait[plot]'" in result.output
    assert not (project.parent / "curve.png").exists()


def test_the_demo_compares_one_call_with_votes(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-testing")
    monkeypatch.setenv("COLUMNS", "200")
    curve = tmp_path / "curve.png"
    result = invoke("demo", "eval", "--model", "fake:m", "--plot", str(curve))
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines()
            if line.startswith("│ n=")}
    assert set(rows) == {"n=1", "n=3", "n=5"}
    assert "70%" in rows["n=1"]
    assert "100%" in rows["n=3"]
    assert "n=3: +30% accuracy over one call for 3.0x the calls" in result.output
    assert curve.read_bytes()[:4] == b"\x89PNG"
    assert invoke("demo", "faq", "--plot", "x.png").exit_code == 2


def test_the_labelled_set_ships_in_the_package() -> None:
    from plait._demos.eval import cases

    labelled = cases()
    assert len(labelled) == 10
    assert {c.expected for c in labelled} == {"positive", "negative"}


def test_eval_report_costs_are_exact_decimals() -> None:
    report = plait.EvalReport(("exact",), ())
    assert report.usage.cost == Decimal(0)
    with pytest.raises(KeyError, match="no variant 'x'"):
        report.variant("x")
