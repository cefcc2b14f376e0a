"""The core fan-out suite, tests/core/test_fanout.py, run again with every fan-out on Ray
(conftest's ``plait_runtime`` names the "ray" executor): same order, errors, min_success,
idempotency keys, timeouts and usage as the local executor.

Left out, each for its reason: tests that observe items through memory shared with the
test itself (a counter, an Event, a list the items append to), which a worker process
has its own copy of; plait-ray's own tests prove those properties across processes.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

import cloudpickle
import plait

IN_PROCESS = {
    "test_map_keeps_input_order_whatever_the_finishing_order": "items wait on shared Events",
    "test_on_error_raise_stops_items_in_flight": "counts cancellations in shared variables",
    "test_limit_bounds_items_in_flight": "measures in-flight items in a shared counter",
    "test_per_item_usage_is_counted": "a scripted FakeProvider's queue is copied per chunk",
    "test_a_worker_step_keeps_its_own_timeout_and_retries": "records attempts on the driver",
    "test_an_orchestrator_worker_step_keeps_its_own_timeout_and_retries": "same",
    "test_map_takes_a_timeout_and_retries_per_item": "counts tries in a shared dict",
    "test_a_function_returning_an_awaitable_leaves_the_thread_after_one_item":
        "compares thread ids with the test's",
    "test_an_item_context_shows_what_a_child_context_shows":
        "keeps the item contexts the worker made in a shared list",
    "test_an_unknown_executor_names_the_installed_ones_and_the_distribution":
        "about a missing plait-ray, which is installed here",
}

_path = pathlib.Path(__file__).parents[2] / "core" / "test_fanout.py"
_spec = importlib.util.spec_from_file_location("plait_fanout_suite", _path)
assert _spec is not None
assert _spec.loader is not None
suite = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = suite
_spec.loader.exec_module(suite)
cloudpickle.register_pickle_by_value(suite)  # its workers and exceptions travel by value

for _name, _test in vars(suite).items():
    if _name.startswith("test_") and _name not in IN_PROCESS:
        globals()[_name] = _test


def test_the_left_out_tests_exist() -> None:
    assert set(IN_PROCESS) <= set(vars(suite)), set(IN_PROCESS) - set(vars(suite))


async def test_the_suite_runs_on_ray(plait_runtime: plait.Runtime) -> None:
    async def body(ctx: plait.StepContext) -> list[int]:
        return list(await ctx.map(lambda _: os.getpid(), range(3)))

    assert plait_runtime.default_executor == "ray"
    result = await plait.Pipeline("p", steps={"s": body}).run(runtime=plait_runtime)
    assert os.getpid() not in result.output
