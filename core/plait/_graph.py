"""A pipeline drawn as a graph: ``pipe.to_mermaid()``, ``pipe.to_dot()``, ``plait graph``.

The pipeline is first described as a small tree of nodes, clusters and edges, then written
as Mermaid (a ``flowchart``) or Graphviz DOT. Each workflow shape is drawn as what it is:
a router is a decision with one labelled edge per branch (the fallback's dashed), a fan-out
a stacked worker "for each item", an ensemble its n candidates feeding the aggregator, an
orchestrator a planner with an edge per task type to its worker and on to the synthesizer,
and a nested pipeline a cluster holding its own DAG. Edges between steps join whole shapes.

Pipelines, routers and orchestrators are recognized by their shape (``steps`` and
``dependencies``; ``branches``; ``planner`` and ``workers``), since the Pipeline class
draws through this module and a router or an orchestrator can run as a one-step pipeline:
importing them here would close a circle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from ._agent import AgentStep
from ._ensemble import Ensemble
from ._fanout import FanOut
from ._step import Step

__all__ = ["STATUSES", "Format", "render"]

Format = Literal["mermaid", "dot"]
Shape = Literal["step", "agent", "decision", "aggregate", "stack", "plan"]


@runtime_checkable
class _DAG(Protocol):
    @property
    def name(self) -> str | None: ...

    @property
    def steps(self) -> Mapping[str, Step]: ...

    @property
    def dependencies(self) -> Mapping[str, tuple[str, ...]]: ...


@runtime_checkable
class _Routing(Protocol):  # a plait.Router
    branches: Mapping[Any, Step]
    fallback: Any


@runtime_checkable
class _Planning(Protocol):  # a plait.Orchestrator
    planner: Any
    workers: Mapping[Any, Any]
    synthesizer: Any


@attrs.frozen
class _Node:
    id: str
    label: str
    shape: Shape = "step"


@attrs.frozen
class _Cluster:
    id: str
    label: str
    items: tuple[_Node | _Cluster, ...]


@attrs.frozen
class _Edge:
    src: _Node | _Cluster
    dst: _Node | _Cluster
    label: str = ""
    dashed: bool = False


_RESERVED = {"end", "graph", "subgraph", "flowchart", "direction", "style", "class",
             "classdef", "click", "linkstyle", "default"}


class _Builder:
    """Walks a pipeline once, giving every node a unique, readable id."""

    def __init__(self) -> None:
        self.edges: list[_Edge] = []
        self.paths: dict[str, str] = {}  # a step's path in the run -> its node or cluster id
        self._ids: set[str] = set()

    def id(self, path: str) -> str:
        base = re.sub(r"\W", "_", path, flags=re.ASCII) or "step"
        if base.casefold() in _RESERVED:  # words Mermaid reads as its own syntax
            base += "_"
        found, n = base, 1
        while found in self._ids:
            n += 1
            found = f"{base}_{n}"
        self._ids.add(found)
        return found

    def dag(self, pipe: _DAG, path: str) -> tuple[_Node | _Cluster, ...]:
        items = {sid: self.step(sid, st, f"{path}/{sid}" if path else sid)
                 for sid, st in pipe.steps.items()}
        for sid, it in items.items():
            self.paths[f"{path}/{sid}" if path else sid] = it.id
        for sid, deps in pipe.dependencies.items():
            for dep in deps:
                self.edges.append(_Edge(items[dep], items[sid]))
        return tuple(items.values())

    def step(self, label: str, step: Any, path: str) -> _Node | _Cluster:
        if isinstance(step, _DAG):
            named = "" if step.name == label else f" {step.name}"
            return _Cluster(self.id(path), f"{label} · pipeline{named}", self.dag(step, path))
        if isinstance(step, FanOut):
            return self._fanout(label, step, path)
        if isinstance(step, Ensemble):
            return self._ensemble(label, step, path)
        if isinstance(step, _Routing):
            return self._router(label, step, path)
        if isinstance(step, _Planning):
            return self._orchestrator(label, step, path)
        if isinstance(step, AgentStep):
            return _Node(self.id(path), f"{label}\n{step.agent.model}", "agent")
        return _Node(self.id(path), label)

    def _router(self, label: str, router: _Routing, path: str) -> _Cluster:
        decide = _Node(self.id(f"{path}/route"), "route", "decision")
        items: list[_Node | _Cluster] = [decide]
        for key, branch in router.branches.items():
            name = str(getattr(key, "value", key))
            target = self.step(_label(branch, name), branch, f"{path}/{name}")
            items.append(target)
            fallback = key == router.fallback
            self.edges.append(_Edge(decide, target, f"{name} (fallback)" if fallback else name,
                                    dashed=fallback))
        return _Cluster(self.id(path), f"{label} · router", tuple(items))

    def _fanout(self, label: str, fanout: FanOut, path: str) -> _Cluster:
        over = fanout.over if isinstance(fanout.over, str) else "items"
        worker = fanout.worker
        name = _label(worker, getattr(worker, "__name__", "worker"))
        inner = (self.step(name, worker, f"{path}/worker") if isinstance(worker, Step)
                 else _Node(self.id(f"{path}/worker"), name))
        if isinstance(inner, _Node):
            inner = attrs.evolve(inner, label=f"{inner.label}\nfor each of {over}",
                                 shape="stack")
        limit = f", {fanout.limit} at a time" if fanout.limit else ""
        return _Cluster(self.id(path), f"{label} · fan-out over {over}{limit}", (inner,))

    def _ensemble(self, label: str, ensemble: Ensemble, path: str) -> _Cluster:
        aggregate = _Node(self.id(f"{path}/aggregate"), f"aggregate: {ensemble.aggregate}",
                          "aggregate")
        candidates = []
        for i in range(ensemble.n):
            node = _Node(self.id(f"{path}/candidate_{i + 1}"),
                         f"candidate {i + 1}\n{ensemble.agent.model}", "agent")
            candidates.append(node)
            self.edges.append(_Edge(node, aggregate))
        return _Cluster(self.id(path), f"{label} · ensemble of {ensemble.n}",
                        (*candidates, aggregate))

    def _orchestrator(self, label: str, orch: _Planning, path: str) -> _Cluster:
        plan = _Node(self.id(f"{path}/plan"), f"plan\n{orch.planner.model}", "plan")
        items: list[_Node | _Cluster] = [plan]
        synth = orch.synthesizer
        end = None if synth is None else _Node(
            self.id(f"{path}/synthesize"),
            f"synthesize\n{synth.model}" if hasattr(synth, "model")
            else _label(synth, getattr(synth, "__name__", "synthesize")), "agent")
        for key, worker in orch.workers.items():
            kind = key.__name__ if isinstance(key, type) else str(getattr(key, "value", key))
            name = _label(worker, getattr(worker, "__name__", "worker"))
            target = (self.step(name, worker, f"{path}/{kind}") if isinstance(worker, Step)
                      else _Node(self.id(f"{path}/{kind}"), name))
            items.append(target)
            self.edges.append(_Edge(plan, target, f"{kind} tasks", dashed=True))
            if end is not None:
                self.edges.append(_Edge(target, end))
        if end is not None:
            items.append(end)
        return _Cluster(self.id(path), f"{label} · orchestrator", tuple(items))


# A step's recorded status, and the colour it is drawn in (fill, stroke).
STATUSES: dict[str, tuple[str, str]] = {
    "ok": ("#d3f9d8", "#2b8a3e"), "failed": ("#ffe3e3", "#c92a2a"),
    "stopped": ("#fff3bf", "#e67700"), "skipped": ("#f1f3f5", "#868e96"),
    "cancelled": ("#ffe8cc", "#d9480f"), "not_run": ("#ffffff", "#adb5bd"),
}


def render(pipe: _DAG, fmt: Format, status: Mapping[str, str] | None = None) -> str:
    """``pipe`` as a Mermaid flowchart or a Graphviz digraph. With ``status`` (a step's
    path, ``a`` or ``outer/inner``, to its recorded status), every step is coloured by it
    and a step missing from it is drawn as ``not_run``."""
    builder = _Builder()
    items = builder.dag(pipe, "")
    classes = None if status is None else {
        node: status.get(path, "not_run") for path, node in builder.paths.items()}
    if fmt == "mermaid":
        return _mermaid(pipe.name or "pipeline", items, builder.edges, classes)
    if fmt == "dot":
        return _dot(pipe.name or "pipeline", items, builder.edges, classes)
    raise ValueError(f"unknown graph format {fmt!r}; formats: mermaid, dot")


def _label(step: Any, default: str) -> str:
    name = getattr(step, "name", None)
    return name if isinstance(name, str) and name else default


# --------------------------------------------------------------------------- Mermaid

_MERMAID_SHAPES: dict[Shape, tuple[str, str]] = {
    "step": ("[", "]"), "agent": ("(", ")"), "decision": ("{", "}"),
    "aggregate": ("{{", "}}"), "stack": ("[[", "]]"), "plan": ("[/", "/]"),
}


def _mermaid_text(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", "<br>") + '"'


def _mermaid(title: str, items: tuple[_Node | _Cluster, ...], edges: list[_Edge],
             classes: Mapping[str, str] | None) -> str:
    lines = ["---", f"title: {title}", "---", "flowchart TD"]

    def item(it: _Node | _Cluster, indent: str) -> None:
        if isinstance(it, _Node):
            opening, closing = _MERMAID_SHAPES[it.shape]
            lines.append(f"{indent}{it.id}{opening}{_mermaid_text(it.label)}{closing}")
            return
        lines.append(f"{indent}subgraph {it.id}[{_mermaid_text(it.label)}]")
        for child in it.items:
            item(child, indent + "    ")
        lines.append(f"{indent}end")

    for it in items:
        item(it, "    ")
    for e in edges:
        arrow = "-.->" if e.dashed else "-->"
        label = f"|{_mermaid_text(e.label)}|" if e.label else ""
        lines.append(f"    {e.src.id} {arrow}{label} {e.dst.id}")
    if classes is not None:
        used = dict.fromkeys(classes.values())
        for name in used:
            fill, stroke = STATUSES.get(name, STATUSES["not_run"])
            lines.append(f"    classDef {name} fill:{fill},stroke:{stroke}")
        for name in used:
            lines.append(f"    class {','.join(n for n, c in classes.items() if c == name)} "
                         f"{name}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- DOT

_DOT_SHAPES: dict[Shape, str] = {
    "step": "shape=box", "agent": 'shape=box, style="rounded"', "decision": "shape=diamond",
    "aggregate": "shape=hexagon", "stack": "shape=box3d", "plan": "shape=parallelogram",
}


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _first_node(it: _Node | _Cluster) -> _Node:
    while isinstance(it, _Cluster):
        it = it.items[0]
    return it


def _dot_status(name: str | None) -> str:
    """The attributes drawing a step's status: its class and an outline in its colour (the
    outline leaves a shape's own style, rounded or not, as it is)."""
    if name is None:
        return ""
    _, stroke = STATUSES.get(name, STATUSES["not_run"])
    return f'class="{name}", color="{stroke}", fontcolor="{stroke}", penwidth=2'


def _dot(title: str, items: tuple[_Node | _Cluster, ...], edges: list[_Edge],
         classes: Mapping[str, str] | None) -> str:
    lines = [f"digraph {_dot_text(title)} {{", "    compound=true;",
             f"    label={_dot_text(title)};", "    labelloc=t;"]
    found = classes or {}

    def item(it: _Node | _Cluster, indent: str) -> None:
        drawn = _dot_status(found.get(it.id))
        if isinstance(it, _Node):
            lines.append(f'{indent}"{it.id}" [label={_dot_text(it.label)}, '
                         f"{_DOT_SHAPES[it.shape]}{', ' + drawn if drawn else ''}];")
            return
        lines.append(f'{indent}subgraph "cluster_{it.id}" {{')
        lines.append(f"{indent}    label={_dot_text(it.label)};")
        if drawn:
            lines.append(f"{indent}    {drawn.replace(', ', '; ')};")
        for child in it.items:
            item(child, indent + "    ")
        lines.append(f"{indent}}}")

    for it in items:
        item(it, "    ")
    for e in edges:  # an edge to or from a whole shape joins its cluster (compound=true)
        attributes = []
        if e.label:
            attributes.append(f"label={_dot_text(e.label)}")
        if e.dashed:
            attributes.append("style=dashed")
        if isinstance(e.src, _Cluster):
            attributes.append(f'ltail="cluster_{e.src.id}"')
        if isinstance(e.dst, _Cluster):
            attributes.append(f'lhead="cluster_{e.dst.id}"')
        shown = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f'    "{_first_node(e.src).id}" -> "{_first_node(e.dst).id}"{shown};')
    lines.append("}")
    return "\n".join(lines) + "\n"
