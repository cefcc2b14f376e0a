"""`plait runs`: list with filters, show as a tree, resume, rm, prune (plain text off a
terminal, JSON on request)."""

from __future__ import annotations

import json
import re
import sys
import textwrap
import uuid
from pathlib import Path

import plait
import pytest
from click.testing import CliRunner, Result
from plait._cli import cli

WORKFLOW = textwrap.dedent("""
    import plait

    @plait.step
    async def a(ctx) -> int:
        return 1

    @plait.step
    async def b(ctx):
        if not ctx.input("ok", ""):
            return plait.Stop("need ok", {"missing": ["ok"]})
        return ctx.dep("a") + 1

    async def square(x: int) -> int:
        if x == 3:
            raise ValueError("three is right out")
        return x * x

    @plait.step
    async def fan(ctx) -> list[int]:
        return list(await ctx.map(square, range(6), on_error="collect"))

    pipe = plait.Pipeline("wf", {"a": a, "b": b, "fan": fan}, {"b": ["a"], "fan": ["a", "b"]})
""")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="plait")


@pytest.fixture
def workflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A workflow module on the path and a store of this test's own; the module name is
    fresh so each test imports its own copy."""
    name = f"wf_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(WORKFLOW)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PLAIT_STORE", str(tmp_path / "runs.db"))
    return name


def listed() -> list[dict[str, object]]:
    result = invoke("runs", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_run_stop_show_resume_rm(workflow: str) -> None:
    assert invoke("run", f"{workflow}:pipe").exit_code == 0
    [run] = listed()
    assert (run["pipeline"], run["status"], run["target"]) == ("wf", "stopped",
                                                              f"{workflow}:pipe")
    run_id = str(run["run_id"])

    table = invoke("runs")
    assert table.exit_code == 0
    assert table.output.splitlines()[0].split() == [
        "ID", "PIPELINE", "STATUS", "STARTED", "LATENCY", "CALLS", "TOKENS", "COST"]
    assert table.output.splitlines()[1].split()[:3] == [run_id[:12], "wf", "stopped"]

    shown = invoke("runs", "show", run_id[:6])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith(f"wf · run {run_id}  stopped")
    assert "  stopped: need ok" in lines
    assert any(line.startswith("  b  stopped  1 attempt") for line in lines)
    assert "  fan  not finished" in lines

    resumed = invoke("runs", "resume", run_id[:6], "-i", "ok=yes")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout) == [0, 1, 4, 16, 25]
    shown = invoke("runs", "show", run_id).output.splitlines()
    assert shown[0].startswith(f"wf · run {run_id}  ok")
    assert "attempt 2" in shown[0]
    assert "    fan-out: 5 of 6 items done, 1 failed" in shown
    assert "    item 3: ValueError: three is right out" in shown
    assert [r["status"] for r in listed()] == ["ok"]

    assert invoke("runs", "rm", run_id[:8]).output == "removed 1 run\n"
    assert listed() == []
    missing = invoke("runs", "show", run_id)
    assert missing.exit_code == 1
    assert f"no run {run_id!r}" in missing.output


def test_filters_and_prune(workflow: str) -> None:
    for _ in range(2):
        assert invoke("run", f"{workflow}:pipe", "-i", "ok=1").exit_code == 0
    assert invoke("run", f"{workflow}:pipe").exit_code == 0
    assert [r["status"] for r in listed()] == ["stopped", "ok", "ok"]
    ok = json.loads(invoke("runs", "--status", "ok", "--json").output)
    assert len(ok) == 2
    assert json.loads(invoke("runs", "--pipeline", "other", "--json").output) == []
    assert len(json.loads(invoke("runs", "--since", "1h", "--limit", "1", "--json").output)) == 1
    bad = invoke("runs", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "not a duration such as 30m" in bad.output
    assert invoke("runs", "prune", "--older-than", "1d").output.startswith("removed 0 runs")
    assert invoke("runs", "prune", "--older-than", "0s").output.startswith("removed 3 runs")
    assert listed() == []


def test_recording_off_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_STORE", "off")
    result = invoke("runs")
    assert result.exit_code == 2
    assert "run recording is off" in result.output


def test_the_tree_shows_routes_calls_and_fan_out_calls() -> None:
    from plait._cli.runs import _tree

    usage = plait.Usage(5, 7, calls=1, cost=plait.usd("0.0001"))
    record = plait.StepRecord("route", "ok", 1, 1.0, 2.0, 1.0, usage, route="billing")
    stored = plait.StoredRun(
        plait.RunRow("r", "support", "ok", 1.0, structure={"route": (), "fan": ("route",)},
                     ended_at=3.0, usage=usage + usage),
        {"route": plait.StepRow("r", "route", record, "x"),
         "fan": plait.StepRow("r", "fan", plait.StepRecord("fan", "ok", 1, 2.0, 3.0, 1.0,
                                                            usage))},
        {"fan": {0: plait.ItemRow("r", "fan", 0, 1, "y", usage=usage)}},
        calls=(plait.CallRow("r", "c1", "route", "fake:m", 1, 1.5, 0.25, usage),
               plait.CallRow("r", "c2", "fan/0", "fake:m", 1, 2.5, 0.5, usage)))
    assert [text for _, text in _tree(stored)][1:] == [
        "route  ok  → billing  1 attempt  1.00 s  1 call, 5/7 tokens, $0.0001",
        "call fake:m  0.25 s  5/7 tokens  $0.0001",
        "fan  ok  1 attempt  1.00 s  1 call, 5/7 tokens, $0.0001",
        "fan-out: 1 of 1 items done, 0 failed, 1 model calls, $0.0001",
    ]


def test_the_tree_shows_each_steps_models_cache_hits_and_unknown_costs() -> None:
    from plait._cli.runs import _tree

    priced = plait.Usage(5, 7, calls=1, cost=plait.usd("0.0001"))
    hit = plait.Usage(cache_hits=1)  # answered by a plugin: not sent, so not a call
    unpriced = plait.Usage(1, 2, calls=1, unpriced=1)
    record = plait.StepRecord("ask", "ok", 1, 1.0, 2.0, 1.0, priced + hit + unpriced,
                              models={"fake:a": priced + hit, "fake:b": unpriced})
    stored = plait.StoredRun(
        plait.RunRow("r", "wf", "ok", 1.0, structure={"ask": ()}, ended_at=3.0,
                     usage=record.usage),
        {"ask": plait.StepRow("r", "ask", record, "x")},
        calls=(plait.CallRow("r", "c1", "ask", "fake:a", 1, 1.1, 0.25, priced),
               plait.CallRow("r", "c3", "ask", "fake:b", 1, 1.3, 0.5, unpriced)))
    assert [text for _, text in _tree(stored)][1:] == [
        "ask  ok  1 attempt  1.00 s  2 calls, 1 from cache, 6/9 tokens, $0.0001 + unknown  "
        "fake:a: 1 call, 1 from cache, 5/7 tokens, $0.0001; "
        "fake:b: 1 call, 1/2 tokens, unknown",
        "call fake:a  0.25 s  5/7 tokens  $0.0001",
        "call fake:b  0.50 s  1/2 tokens  unknown",
    ]


def test_the_list_counts_cache_hits_in_calls(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from plait._cli.runs import _row

    usage = plait.Usage(5, 7, calls=3, cache_hits=2, unpriced=1)
    row = _row(plait.RunRow("r" * 16, "wf", "ok", 1.0, ended_at=2.0, usage=usage))
    assert row[5:] == ["3 + 2 cached", "12", "unknown"]
    assert _row(plait.RunRow("r", "wf", "ok", 1.0, usage=plait.Usage(calls=1)))[5] == "1"


AGENT_WORKFLOW = textwrap.dedent("""
    import plait

    ask = plait.Agent(model="fake:echo")

    @plait.step
    async def first(ctx) -> str:
        return (await ctx.ask(ask, "hi")).output

    @plait.step
    async def boom(ctx) -> str:
        raise ValueError("no")

    @plait.step
    async def after(ctx) -> str:
        return ctx.dep("boom")

    pipe = plait.Pipeline("agents", {"first": first, "boom": boom, "after": after},
                          {"boom": ["first"], "after": ["boom"]})
""")


@pytest.fixture
def agent_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The id of a recorded run of AGENT_WORKFLOW: ``first`` ok, ``boom`` failed,
    ``after`` never ran."""
    name = f"ag_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(AGENT_WORKFLOW)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PLAIT_STORE", str(tmp_path / "runs.db"))
    assert invoke("run", f"{name}:pipe").exit_code == 1
    [run] = listed()
    return str(run["run_id"])


def test_show_names_each_steps_models_in_text_and_json(agent_run: str) -> None:
    shown = invoke("runs", "show", agent_run)
    assert shown.exit_code == 0, shown.output
    [first] = [line for line in shown.output.splitlines() if line.strip().startswith("first")]
    assert first.endswith("1 call, 1/1 tokens, unknown  fake:echo: 1 call, 1/1 tokens, "
                          "unknown"), first
    data = json.loads(invoke("runs", "show", agent_run, "--json").output)
    models = data["steps"]["first"]["record"]["models"]
    assert list(models) == ["fake:echo"]
    assert (models["fake:echo"]["calls"], models["fake:echo"]["unpriced"]) == (1, 1)


def test_show_graph_colours_steps_by_status_in_mermaid_and_dot(agent_run: str) -> None:
    mermaid = invoke("runs", "show", agent_run, "--graph")
    assert mermaid.exit_code == 0, mermaid.output
    lines = mermaid.output.splitlines()
    assert lines[:4] == ["---", "title: agents", "---", "flowchart TD"]
    assert "    class first ok" in lines
    assert "    class boom failed" in lines
    assert "    class after not_run" in lines
    assert "    classDef failed fill:#ffe3e3,stroke:#c92a2a" in lines
    dot = invoke("runs", "show", agent_run[:8], "--graph", "--format", "dot")
    assert dot.exit_code == 0, dot.output
    assert '"boom" [label="boom", shape=box, class="failed", color="#c92a2a"' in dot.output
    assert '"after" [label="after", shape=box, class="not_run"' in dot.output


def test_show_graph_says_when_the_pipeline_cannot_be_found(
        agent_run: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [module] = [p for p in tmp_path.glob("ag_*.py")]
    module.unlink()
    monkeypatch.delitem(sys.modules, module.stem, raising=False)
    gone = invoke("runs", "show", agent_run, "--graph")
    assert gone.exit_code == 2
    assert f"no module named {module.stem!r}" in gone.output


def test_show_graph_needs_a_recorded_target(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_STORE", str(tmp_path / "runs.db"))

    async def record() -> None:
        async with plait.Runtime(tracers=[]) as runtime:
            await plait.Pipeline("p", {"a": plait.step(lambda ctx: 1)}).run(runtime=runtime)

    import anyio
    anyio.run(record)
    [run] = listed()
    assert run["target"] is None
    result = invoke("runs", "show", str(run["run_id"]), "--graph")
    assert result.exit_code == 2
    assert "does not say where its pipeline lives" in result.output


@pytest.mark.parametrize("width", [60, 80, 200])
def test_on_a_terminal_list_and_show_fit_the_width_and_name_models(
        agent_run: str, monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich writes as to a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    for args in (["runs"], ["runs", "show", agent_run]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        text = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
        assert max(len(line.rstrip()) for line in text.splitlines()) <= width, text
        assert "…" not in text  # folded, never cut
    shown = re.sub(r"\s*│\s*|\s+", " ", re.sub(r"\x1b\[[0-9;]*m", "", result.output))
    assert "fake:echo: 1 call, 1/1 tokens, unknown" in shown  # wrapped, never cut
    assert "├── first" in result.output  # a rich tree, not indented plain lines
    if width == 200:
        [row] = [line for line in invoke("runs").output.splitlines() if "agents" in line]
        assert [c.strip() for c in row.split("│")][2:4] == ["agents", "failed"]


DOCS = Path(__file__).resolve().parents[2] / "docs" / "guide"


def test_the_docs_show_the_real_graph_and_tree_of_a_recorded_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guide = (DOCS / "graphs.md").read_text().split("## After a run")[1]
    source, graph = re.findall(r"```(?:python|mermaid)\n(.*?)```", guide, re.DOTALL)
    name = f"haiku_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PLAIT_STORE", str(tmp_path / "runs.db"))
    assert invoke("run", f"{name}:pipe").exit_code == 1
    [run] = listed()
    assert invoke("runs", "show", str(run["run_id"]), "--graph").output == graph

    def steps(text: str) -> list[str]:  # the tree below the run's line, latencies aside
        return [re.sub(r"\d+\.\d\d s", "_ s", line) for line in text.splitlines()[1:]]

    tree = (DOCS / "durability.md").read_text().split("$ plait runs show e9d9\n")[1]
    shown = invoke("runs", "show", str(run["run_id"])).output
    assert steps(shown) == steps(tree.split("```")[0])
