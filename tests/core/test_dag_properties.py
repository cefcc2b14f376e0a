"""Property tests over random DAGs: every step runs exactly once, after all of its
dependencies, and without waiting for any step it does not depend on."""

from __future__ import annotations

import anyio
import attrs
import plait
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

DEADLOCK = 10  # seconds; only reached when a step waited for a step it does not need


@attrs.frozen
class Dag:
    order: list[str]  # declaration order (not a topological order)
    deps: dict[str, list[str]]
    blocked: str  # the step held back until every step independent of it has finished

    def descendants(self, sid: str) -> set[str]:
        out: set[str] = set()
        frontier = [sid]
        while frontier:
            cur = frontier.pop()
            for s, ds in self.deps.items():
                if cur in ds and s not in out:
                    out.add(s)
                    frontier.append(s)
        return out

    @property
    def sink(self) -> str:
        needed = {d for ds in self.deps.values() for d in ds}
        return next(s for s in reversed(self.order) if s not in needed)


@st.composite
def dags(draw: st.DrawFn) -> Dag:
    n = draw(st.integers(1, 12))
    topo = [f"s{i}" for i in range(n)]
    deps = {
        sid: draw(st.lists(st.sampled_from(topo[:i]), unique=True, max_size=4)) if i else []
        for i, sid in enumerate(topo)
    }
    order = draw(st.permutations(topo))
    blocked = draw(st.sampled_from(topo))
    return Dag(list(order), deps, blocked)


@settings(max_examples=40, deadline=None)
@given(dag=dags())
async def test_random_dags_run_every_step_once_after_its_deps_and_eagerly(
    dag: Dag,
) -> None:
    runs: dict[str, int] = dict.fromkeys(dag.order, 0)
    finished: set[str] = set()
    independent = set(dag.order) - dag.descendants(dag.blocked) - {dag.blocked}
    independent_done = anyio.Event()

    def check_independent() -> None:
        if independent <= finished:
            independent_done.set()

    async def body(ctx: plait.StepContext) -> str:
        sid = ctx.step_id
        runs[sid] += 1
        assert set(dag.deps[sid]) <= finished, f"{sid} started before its dependencies"
        assert set(ctx.dependencies) == set(dag.deps[sid])
        if sid == dag.blocked:
            await independent_done.wait()
        await anyio.lowlevel.checkpoint()
        finished.add(sid)
        check_independent()
        return sid

    check_independent()
    pipe = plait.Pipeline("random", steps=dict.fromkeys(dag.order, body),
                          deps={s: dag.deps[s] for s in dag.order}, output=dag.sink)
    with anyio.fail_after(DEADLOCK):
        result = await pipe.run({}, runtime=plait.Runtime(entry_points=False))
    assert runs == dict.fromkeys(dag.order, 1)
    assert result.outputs == {s: s for s in dag.order}
    assert all(r.status == "ok" and r.attempts == 1 for r in result.steps.values())


@settings(max_examples=40, deadline=None)
@given(dag=dags())
async def test_random_dags_skip_exactly_the_descendants_of_a_failure(dag: Dag) -> None:
    failing = dag.blocked
    skipped = dag.descendants(failing)

    async def body(ctx: plait.StepContext) -> str:
        if ctx.step_id == failing:
            raise ValueError("boom")
        return ctx.step_id

    pipe = plait.Pipeline("random", steps=dict.fromkeys(dag.order, body),
                          deps={s: dag.deps[s] for s in dag.order}, output=dag.sink)
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait.Runtime(entry_points=False))
    assert info.value.step_id == failing
    partial = info.value.partial
    assert partial is not None
    statuses = {sid: r.status for sid, r in partial.steps.items()}
    expected = {sid: "skipped" if sid in skipped else "ok" for sid in dag.order}
    expected[failing] = "failed"
    assert statuses == expected
    assert set(partial.outputs) == set(dag.order) - skipped - {failing}
