"""``plait.evaluate``: run labelled cases through one or more variants and score them.

A variant is a target (a pipeline or step) with some settings: run inputs it adds
(``vary={"n": [1, 3, 5]}`` gives each case ``n``) or, for the key ``model``, the model
every agent uses (the Runtime's ``model_override``, as ``plait run --model``). Variants
run one after another, so their latencies compare; the cases of a variant run at most
``limit`` at a time. One ``budget`` covers the whole evaluation: a case that cannot
reserve its calls fails with ``BudgetExceeded`` and no further case starts.
"""

from __future__ import annotations

import inspect
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import anyio
import attrs

from ._budget import Budget
from ._errors import BudgetExceeded, EvalError, PlaitError, UnknownPlugin
from ._eval_report import (
    CaseDiff,
    CaseResult,
    EvalCase,
    EvalReport,
    MetricContext,
    VariantReport,
    percentile,
    wilson_interval,
)
from ._eval_resume import EvalLog, case_run_id, manifest
from ._model import split_model
from ._money import Usage
from ._pipeline import Pipeline
from ._plugins import KNOWN_DISTRIBUTIONS
from ._results import ErrorInfo
from ._resume import resume_run
from ._runtime import Runtime, default_runtime
from ._step import Step

__all__ = ["Progress", "evaluate", "parse_cases"]

Metric = Callable[..., Any]
Progress = Callable[[str, int, int], None]  # (variant, cases done, cases in all)
EVAL_SCOPE = "eval"


async def evaluate(
    target: Pipeline | Step | Mapping[str, Pipeline | Step],
    cases: Iterable[EvalCase | Mapping[str, Any]],
    *,
    metrics: Sequence[str | Metric] = ("exact",),
    runtime: Runtime | None = None,
    vary: Mapping[str, Sequence[Any]] | None = None,
    limit: int = 4,
    budget: Decimal | None = None,
    progress: Progress | None = None,
    resume: str | None = None,
    eval_id: str | None = None,
) -> EvalReport:
    """Run every case through every variant and score each output.

    ``target``: a pipeline or step, or ``{name: pipeline}`` to compare several. ``cases``:
    ``plait.EvalCase`` values or mappings ``{"inputs": {...}, "expected": ..., "id": ...}``.
    ``metrics``: names registered through ``plait_register_metrics`` (built-in: exact,
    contains, one_of, json_match, within) or functions ``(output, expected)``; the first
    one gives the accuracy. ``vary``: ``{key: [values]}``, every combination a variant.
    ``progress(variant, done, total)`` is called as cases finish.

    With a run store each finished case is recorded under the eval's id (``eval_id``,
    or a new one; the report's ``eval_id``): ``resume=EVAL_ID`` restores those and runs
    only the rest, refusing (``ResumeError``) when the cases, variants, targets or
    metrics differ from the recorded ones. The budget counts what restored cases spent.
    """
    runtime = runtime or default_runtime()
    targets = _targets(target)
    case_list = [_case(c, i) for i, c in enumerate(cases)]
    if not case_list:
        raise EvalError("no cases to evaluate")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise EvalError(f"limit must be an int >= 1, got {limit!r}")
    scorers = _metrics(metrics, runtime)
    variants = _variants(targets, vary or {})
    shared = None if budget is None else Budget(budget, EVAL_SCOPE)
    the_id = resume or eval_id or uuid.uuid4().hex[:12]
    log, done = await EvalLog.begin(runtime.store, the_id, manifest(case_list, variants,
                                                                    list(scorers)),
                                    resume is not None)
    if shared is not None:  # what the restored cases spent counts against the budget
        shared.spent += sum((r.usage.cost for r in done.values()), Decimal(0))
    reports: list[VariantReport] = []
    stopped: str | None = None
    try:
        for name, pipe, settings in variants:
            if stopped is not None:
                break
            record = _Record(the_id, log, {cid: r for (v, cid), r in done.items() if v == name},
                             resume is not None)
            results, stopped = await _run_variant(name, pipe, settings, case_list, scorers,
                                                  runtime, limit, shared, progress, record)
            reports.append(_summary(name, settings, results, scorers))
    finally:
        if log is not None:
            with anyio.CancelScope(shield=True):  # an interrupted eval keeps what finished
                if stopped is None and len(reports) == len(variants):
                    log.mark("ok", sum((v.usage for v in reports), Usage()))
                else:
                    log.mark("stopped" if stopped else "running")
                await log.store.flush()
    return EvalReport(tuple(scorers), tuple(reports), _differing(case_list, reports),
                      budget, stopped, the_id, sum(
                          1 for v in reports for r in v.results if (v.name, r.id) in done))


def parse_cases(lines: Iterable[str], source: str = "cases") -> list[EvalCase]:
    """Cases from JSON Lines: one ``{"inputs": {...}, "expected": ..., "id": ...}`` per
    line (blank lines skipped); a malformed line is an ``EvalError`` naming it."""
    out: list[EvalCase] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise EvalError(f"{source}, line {number}: not valid JSON ({exc})") from None
        try:
            out.append(_case(data, len(out)))
        except EvalError as exc:
            raise EvalError(f"{source}, line {number}: {exc}") from None
    return out


# -- running --------------------------------------------------------------------------


@attrs.frozen
class _Record:
    """Where a variant's cases are recorded (``log`` is ``None`` without a store) and the
    ones restored from an earlier attempt, by case id."""

    eval_id: str
    log: EvalLog | None
    restored: Mapping[str, CaseResult]
    resuming: bool


async def _run_variant(name: str, pipe: Pipeline, settings: Mapping[str, Any],
                       cases: Sequence[EvalCase], scorers: Mapping[str, Metric],
                       runtime: Runtime, limit: int, shared: Budget | None,
                       progress: Progress | None,
                       record: _Record) -> tuple[list[CaseResult], str | None]:
    extra = {k: v for k, v in settings.items() if k not in ("model", "target")}
    results: list[CaseResult | None] = [None] * len(cases)
    stopped: str | None = None
    done = 0
    limiter = anyio.CapacityLimiter(limit)

    def finished(index: int, result: CaseResult) -> None:
        nonlocal done
        results[index] = result
        done += 1
        if progress is not None:
            progress(name, done, len(cases))

    async def one(index: int, case: EvalCase) -> None:
        nonlocal stopped
        restored = record.restored.get(str(case.id))
        if restored is not None:  # finished in an earlier attempt: kept even if stopped
            finished(index, restored)
            return
        async with limiter:
            if stopped is not None:
                return
            run_id = case_run_id(record.eval_id, name, str(case.id))
            result, exhausted = await _run_case(pipe, case, extra, scorers, runtime,
                                                shared, run_id, record.resuming)
            if record.log is not None:
                record.log.case(name, result)
            if exhausted and shared is not None:
                stopped = f"the eval's budget of ${shared.limit} ran out"
            finished(index, result)

    saved = runtime.model_override
    runtime.model_override = settings.get("model", saved)
    try:
        async with anyio.create_task_group() as tg:
            for index, case in enumerate(cases):
                tg.start_soon(one, index, case)
    finally:
        runtime.model_override = saved
    return [r for r in results if r is not None], stopped


async def _run_case(pipe: Pipeline, case: EvalCase, extra: Mapping[str, Any],
                    scorers: Mapping[str, Metric], runtime: Runtime,
                    shared: Budget | None, run_id: str,
                    resuming: bool) -> tuple[CaseResult, bool]:
    """The case's result, and whether the eval's budget refused it. When resuming, a run
    recorded under ``run_id`` (an earlier attempt failed or was cut short) is resumed, so
    its finished steps are not paid again."""
    inputs = {**case.inputs, **extra}
    started = time.perf_counter()
    try:
        store = runtime.store
        if resuming and store is not None and await store.load(run_id) is not None:
            result = await resume_run(pipe, run_id, inputs, deps=None, runtime=runtime,
                                      force=False, within=shared)
        else:
            result = await pipe._start(inputs, deps=None, runtime=runtime, run_id=run_id,
                                       within=shared)
    except PlaitError as exc:
        usage = exc.partial.usage if exc.partial is not None else Usage()
        exhausted = isinstance(exc, BudgetExceeded) and exc.scope == EVAL_SCOPE
        return CaseResult(str(case.id), None, 0.0, {n: 0.0 for n in scorers},
                          time.perf_counter() - started, usage, ErrorInfo.of(exc)), exhausted
    latency = time.perf_counter() - started
    output = runtime.converter.unstructure(result.stop if result.stopped_early else result.output)
    scores: dict[str, float] = {}
    error: ErrorInfo | None = None
    for metric_name, metric in scorers.items():
        try:
            scores[metric_name] = await _score(metric, output, case, runtime)
        except Exception as exc:  # a metric's own failure is this case's, not the eval's
            scores[metric_name] = 0.0
            error = error or ErrorInfo(type(exc).__name__,
                                       f"metric {metric_name!r}: {exc}")
    first = next(iter(scores.values()))
    return CaseResult(str(case.id), output, first, scores, latency, result.usage, error), False


async def _score(metric: Metric, output: Any, case: EvalCase, runtime: Runtime) -> float:
    args: tuple[Any, ...] = (output, case.expected)
    if _positional(metric) >= 3:
        args = (*args, MetricContext(case.inputs, runtime))
    value = metric(*args)
    if inspect.isawaitable(value):
        value = await value
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and 0 <= value <= 1:
        return float(value)
    raise EvalError(f"a metric must return a bool or a number from 0 to 1, got {value!r}")


def _positional(fn: Metric) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in kinds)


# -- the report -----------------------------------------------------------------------


def _summary(name: str, settings: Mapping[str, Any], results: Sequence[CaseResult],
             scorers: Mapping[str, Metric]) -> VariantReport:
    n = len(results)
    total = sum(r.score for r in results)
    latencies = [r.latency_s for r in results]
    return VariantReport(
        name, dict(settings), total / n if n else 0.0, wilson_interval(total, n),
        {m: (sum(r.scores[m] for r in results) / n if n else 0.0) for m in scorers},
        n, sum(1 for r in results if r.error is not None),
        sum((r.usage for r in results), Usage()),
        percentile(latencies, 50), percentile(latencies, 95), tuple(results))


def _differing(cases: Sequence[EvalCase], reports: Sequence[VariantReport]) -> tuple[CaseDiff, ...]:
    if len(reports) < 2:
        return ()
    by_variant = {v.name: {r.id: r for r in v.results} for v in reports}
    diffs: list[CaseDiff] = []
    for case in cases:
        cid = str(case.id)
        outputs = {name: rs[cid].output for name, rs in by_variant.items() if cid in rs}
        if len({json.dumps(o, sort_keys=True, default=str) for o in outputs.values()}) > 1:
            diffs.append(CaseDiff(cid, case.expected, outputs))
    return tuple(diffs)


# -- checking what was asked for --------------------------------------------------------


def _targets(target: Any) -> dict[str, Pipeline]:
    items: list[tuple[str | None, Any]] = (list(target.items()) if isinstance(target, Mapping)
                                           else [(None, target)])
    out: dict[str, Pipeline] = {}
    for name, obj in items:
        if isinstance(obj, Step) and not isinstance(obj, Pipeline):
            label = name or obj.label
            obj = Pipeline(label, steps={label: obj})
        if not isinstance(obj, Pipeline):
            raise EvalError(f"a target must be a plait.Pipeline or a step, got "
                            f"{type(obj).__name__}" + (f" for {name!r}" if name else ""))
        out[name or obj.label] = obj
    if not out:
        raise EvalError("no target to evaluate")
    return out


def _case(data: Any, index: int) -> EvalCase:
    if isinstance(data, EvalCase):
        case = data
    elif isinstance(data, Mapping):
        unknown = set(data) - {"inputs", "expected", "id"}
        if unknown:
            raise EvalError(f"case {index}: unknown key(s) {', '.join(sorted(unknown))}; "
                            "a case has inputs, expected and id")
        case = EvalCase(data.get("inputs", {}), data.get("expected"), data.get("id"))
    else:
        raise EvalError(f"case {index}: expected a mapping with inputs and expected, "
                        f"got {type(data).__name__}")
    if not isinstance(case.inputs, Mapping):
        raise EvalError(f"case {case.id or index}: inputs must be an object of name -> value, "
                        f"got {type(case.inputs).__name__}")
    return case if case.id is not None else EvalCase(case.inputs, case.expected, str(index))


def _metrics(metrics: Sequence[str | Metric], runtime: Runtime) -> dict[str, Metric]:
    if isinstance(metrics, str):
        metrics = [metrics]
    if not metrics:
        raise EvalError("at least one metric is needed")
    table = runtime.registry.metrics
    out: dict[str, Metric] = {}
    for metric in metrics:
        if isinstance(metric, str):
            if metric not in table:
                raise UnknownPlugin("metric", metric, list(table),
                                    KNOWN_DISTRIBUTIONS["metric"].get(metric))
            out[metric] = table[metric]
        elif callable(metric):
            out[getattr(metric, "__name__", repr(metric))] = metric
        else:
            raise EvalError(f"a metric is a registered name or a function, got {metric!r}")
    return out


def _variants(targets: Mapping[str, Pipeline], vary: Mapping[str, Sequence[Any]]
              ) -> list[tuple[str, Pipeline, dict[str, Any]]]:
    for key, values in vary.items():
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise EvalError(f"vary[{key!r}] must be a non-empty list of values, got {values!r}")
        if key == "target":
            raise EvalError("vary 'target' by passing several targets instead")
        if key == "model":
            for model in values:
                try:
                    split_model(model)
                except ValueError as exc:
                    raise EvalError(f"vary['model']: {exc}") from None
    combos = [dict(zip(vary, values, strict=True))
              for values in itertools.product(*vary.values())]
    out: list[tuple[str, Pipeline, dict[str, Any]]] = []
    for tname, pipe in targets.items():
        for combo in combos:
            settings = {**({"target": tname} if len(targets) > 1 else {}), **combo}
            label = " ".join(f"{k}={v}" for k, v in combo.items())
            name = " ".join(p for p in (tname if len(targets) > 1 else "", label) if p)
            out.append((name or tname, pipe, settings))
    return out

