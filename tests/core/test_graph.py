"""Graphs: every workflow shape drawn as such, in Mermaid and DOT; the guide shows real output."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
import sys
import uuid
from typing import Any

import plait
import pytest
from click.testing import CliRunner
from plait._cli import cli

GUIDE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "guide" / "graphs.md"
SHAPES = ["chain", "router", "fanout", "ensemble", "orchestrator", "nested"]


def guide_examples() -> dict[str, tuple[str, str]]:
    """Each python block of the guide page and the mermaid block right after it, by the
    name of the pipeline the block builds."""
    shapes = GUIDE.read_text().split("## After a run")[0]  # a recorded run is drawn apart
    pairs = re.findall(r"```python\n(.*?)```\n\n```mermaid\n(.*?)```", shapes,
                       re.DOTALL)
    found = {}
    for source, graph in pairs:
        name = re.search(r'plait\.Pipeline\(\s*"(\w+)"', source.split("pipe = ")[-1])
        assert name is not None
        found[name.group(1)] = (source, graph)
    return found


def build(shape: str) -> tuple[plait.Pipeline, str]:
    """The guide's pipeline of one shape, and the graph the guide shows for it."""
    source, shown = guide_examples()[shape]
    namespace: dict[str, Any] = {"__name__": f"graph_{shape}"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(source, f"{GUIDE}:{shape}", "exec"), namespace)
    return namespace["pipe"], shown


def test_the_guide_shows_one_graph_per_shape() -> None:
    assert sorted(guide_examples()) == sorted(SHAPES)


@pytest.mark.parametrize("shape", SHAPES)
def test_the_guide_shows_the_real_mermaid_output(shape: str) -> None:
    pipe, shown = build(shape)
    assert pipe.to_mermaid() == shown


def edges(graph: str) -> list[str]:
    return [line.strip() for line in graph.splitlines() if "-->" in line or "-.->" in line]


def test_a_chain_is_its_steps_in_order_with_agents_rounded() -> None:
    pipe, _ = build("chain")
    graph = pipe.to_mermaid()
    assert graph.startswith("---\ntitle: chain\n---\nflowchart TD\n")
    assert '    answer("answer<br>openai:gpt-4o-mini")' in graph  # an agent step: rounded
    assert '    extract["extract"]' in graph
    assert edges(graph) == ["extract --> answer", "answer --> check"]


def test_a_router_draws_a_decision_with_one_edge_per_branch_and_a_dashed_fallback() -> None:
    pipe, _ = build("router")
    graph = pipe.to_mermaid()
    assert 'subgraph answer["answer · router"]' in graph
    assert 'answer_route{"route"}' in graph  # the decision is a diamond
    assert edges(graph) == ['answer_route -->|"technical"| answer_technical',
                            'answer_route -->|"billing"| answer_billing',
                            'answer_route -.->|"other (fallback)"| answer_other']


def test_a_fanout_draws_its_worker_stacked_for_each_item() -> None:
    pipe, _ = build("fanout")
    graph = pipe.to_mermaid()
    assert 'subgraph answers["answers · fan-out over questions, 8 at a time"]' in graph
    assert 'answers_worker[["answer_one<br>for each of questions"]]' in graph
    assert edges(graph) == ["questions --> answers"]  # the dependency joins the whole shape


def test_an_ensemble_draws_n_candidates_into_the_aggregator() -> None:
    pipe, _ = build("ensemble")
    graph = pipe.to_mermaid()
    assert 'sentiment_aggregate{{"aggregate: vote"}}' in graph
    assert edges(graph) == [f"sentiment_candidate_{i} --> sentiment_aggregate"
                            for i in (1, 2, 3)]


def test_an_orchestrator_draws_planner_workers_and_synthesizer() -> None:
    pipe, _ = build("orchestrator")
    graph = pipe.to_mermaid()
    assert 'handle_plan[/"plan<br>openai:gpt-4o"/]' in graph
    assert edges(graph) == ['handle_plan -.->|"refund tasks"| handle_refund',
                            "handle_refund --> handle_synthesize",
                            'handle_plan -.->|"lookup tasks"| handle_lookup',
                            "handle_lookup --> handle_synthesize"]


def test_a_nested_pipeline_is_a_cluster_with_its_own_dag() -> None:
    pipe, _ = build("nested")
    graph = pipe.to_mermaid()
    assert 'subgraph ingest["ingest · pipeline"]' in graph
    assert edges(graph) == ["ingest_fetch --> ingest_clean", "ingest --> report"]


@plait.step
async def noop(ctx: plait.StepContext) -> None:
    return None


def test_ids_are_unique_safe_and_never_mermaid_keywords() -> None:
    inner = plait.Pipeline("inner", steps={"a b": noop})
    pipe = plait.Pipeline("p", steps={"end": noop, "a_b": noop, "x": inner, 'say "hi"': noop},
                          deps={"x": ["end", "a_b"], 'say "hi"': ["x"]})
    graph = pipe.to_mermaid()
    assert '    end_["end"]' in graph
    assert '        x_a_b["a b"]' in graph
    assert 'say__hi_["say #quot;hi#quot;"]' in graph  # quotes escaped in the label
    assert edges(graph) == ["end_ --> x", "a_b --> x", "x --> say__hi_"]


def test_dot_draws_the_same_shapes_with_compound_edges() -> None:
    pipe, _ = build("router")
    dot = plait.Pipeline("outer", steps={"first": noop, "answer": pipe.steps["answer"]},
                         deps={"answer": ["first"]}).to_dot()
    assert dot.startswith('digraph "outer" {\n    compound=true;\n')
    assert 'subgraph "cluster_answer" {\n        label="answer · router";' in dot
    assert '"answer_route" [label="route", shape=diamond];' in dot
    assert '"answer_technical" [label="technical\\nopenai:gpt-4o", shape=box, ' \
           'style="rounded"];' in dot
    assert '"answer_route" -> "answer_other" [label="other (fallback)", style=dashed];' in dot
    # an edge into a shape points at its first node and is clipped at the cluster
    assert '"first" -> "answer_route" [lhead="cluster_answer"];' in dot
    assert dot.endswith("}\n")
    assert dot.count("{") == dot.count("}")


@pytest.mark.parametrize(("fmt", "start"), [("mermaid", "---\ntitle: fanout\n"),
                                           ("dot", 'digraph "fanout" {')])
def test_plait_graph_prints_a_modules_pipeline(tmp_path: pathlib.Path,
                                               monkeypatch: pytest.MonkeyPatch, fmt: str,
                                               start: str) -> None:
    source, _ = guide_examples()["fanout"]
    name = f"graphs_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(source.replace("print(pipe.to_mermaid(), end=\"\")",
                                                        ""))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    result = CliRunner().invoke(cli, ["graph", f"{name}:pipe", "--format", fmt],
                                prog_name="plait")
    assert result.exit_code == 0, result.output
    pipe, _ = build("fanout")
    assert result.stdout.startswith(start)
    assert result.stdout == (pipe.to_mermaid() if fmt == "mermaid" else pipe.to_dot())


def test_plait_graph_refuses_an_unknown_format() -> None:
    result = CliRunner().invoke(cli, ["graph", "x:y", "--format", "png"], prog_name="plait")
    assert result.exit_code == 2
    assert "'png' is not one of 'mermaid', 'dot'" in result.stderr


def test_a_status_map_colours_steps_and_clusters_and_marks_the_rest_not_run() -> None:
    from plait._graph import render

    pipe, _ = build("nested")
    status = {"ingest": "stopped", "ingest/fetch": "ok", "ingest/clean": "stopped"}
    mermaid = render(pipe, "mermaid", status).splitlines()
    assert mermaid[-6:] == ["    classDef ok fill:#d3f9d8,stroke:#2b8a3e",
                            "    classDef stopped fill:#fff3bf,stroke:#e67700",
                            "    classDef not_run fill:#ffffff,stroke:#adb5bd",
                            "    class ingest_fetch ok",
                            "    class ingest_clean,ingest stopped",
                            "    class report not_run"]
    dot = render(pipe, "dot", status)
    assert ('    subgraph "cluster_ingest" {\n        label="ingest · pipeline";\n'
            '        class="stopped"; color="#e67700"; fontcolor="#e67700"; penwidth=2;\n'
            '        "ingest_fetch" [label="fetch", shape=box, class="ok", color="#2b8a3e"') in dot
    assert '"report" [label="report", shape=box, class="not_run"' in dot
    assert render(pipe, "mermaid") == pipe.to_mermaid()  # no map: no colours
    assert "classDef" not in pipe.to_mermaid()
    assert "class=" not in pipe.to_dot()
