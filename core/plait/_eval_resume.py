"""A resumable eval: each finished case is recorded in the run store, so an eval that was
interrupted (Ctrl-C, a crash, a budget that ran out) continues without paying again.

The eval is a run row of its own (pipeline ``plait eval``, id the eval's id) whose inputs
are its manifest: the cases (id and a hash of inputs and expected), the variants, the
targets' structure fingerprints and the metrics. Each finished case is a ``once`` row of
that run holding its ``CaseResult``. Each case's run has a deterministic id from (eval id,
variant, case id), so a case that failed or never finished is continued through
``pipe.resume`` (its recorded steps are not paid again) or started under that id.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ._durable import fingerprint, structure_of
from ._errors import ResumeError
from ._eval_report import CaseResult, EvalCase
from ._money import Usage
from ._pipeline import Pipeline
from ._serialize import from_json, to_json
from ._store import OnceRow, RunRow, RunStatus, RunStore

__all__ = ["EVAL_PIPELINE", "EvalLog", "case_run_id", "manifest"]

EVAL_PIPELINE = "plait eval"  # the pipeline name of an eval's own run row


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def case_run_id(eval_id: str, variant: str, case_id: str) -> str:
    """The run id of ``case_id`` in ``variant``: the same in every attempt of the eval."""
    return f"{eval_id}-{_digest([variant, case_id])}"


def manifest(cases: Sequence[EvalCase], variants: Sequence[tuple[str, Pipeline, Mapping[str, Any]]],
             metrics: Sequence[str]) -> dict[str, Any]:
    """What a resumed eval must match: cases, variants, targets and metrics."""
    return {
        "cases": {str(c.id): _digest([c.inputs, c.expected]) for c in cases},
        "variants": {name: _digest(settings) for name, _, settings in variants},
        "targets": {name: f"{pipe.label} {fingerprint(structure_of(pipe))}"
                    for name, pipe, _ in variants},
        "metrics": list(metrics),
    }


def _differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for part, noun in (("cases", "case"), ("variants", "variant"), ("targets", "target")):
        old, new = recorded.get(part, {}), current[part]
        for key in old:
            if key not in new:
                found.append(f"{noun} {key!r} was removed")
            elif old[key] != new[key]:
                found.append(f"{noun} {key!r} changed")
        found.extend(f"{noun} {key!r} was added" for key in new if key not in old)
    if list(recorded.get("metrics", [])) != current["metrics"]:
        found.append(f"metrics are [{', '.join(current['metrics'])}] now, "
                     f"[{', '.join(recorded.get('metrics', []))}] when it was recorded")
    return found


class EvalLog:
    """One eval's record in the run store: its row and its finished cases."""

    def __init__(self, store: RunStore, eval_id: str, plan: Mapping[str, Any],
                 started_at: float, attempt: int = 1) -> None:
        self.store = store
        self.eval_id = eval_id
        self.plan = dict(plan)
        self.started_at = started_at
        self.attempt = attempt

    @classmethod
    async def begin(cls, store: RunStore | None, eval_id: str, plan: Mapping[str, Any],
                    resume: bool) -> tuple[EvalLog | None, dict[tuple[str, str], CaseResult]]:
        """The eval's log (``None`` without a store) and, when resuming, the recorded
        finished cases by (variant, case id); a refusal is a ``ResumeError``."""
        if store is None:
            if resume:
                raise ResumeError(f"cannot resume eval {eval_id!r}: this Runtime records no "
                                  "runs (PLAIT_STORE=off or Runtime(store='off'))")
            return None, {}
        await store.open()
        if not resume:
            log = cls(store, eval_id, plan, time.time())
            log.mark("running")
            return log, {}
        await store.flush()
        stored = await store.load(eval_id)
        if stored is None or stored.run.pipeline != EVAL_PIPELINE:
            raise ResumeError(f"no eval {eval_id!r} in the run store {store.location}")
        changed = _differences(stored.run.inputs, plan)
        if changed:
            raise ResumeError(f"cannot resume eval {eval_id!r}: {'; '.join(changed)} since it "
                              "was recorded, so its recorded results would not fit")
        done: dict[tuple[str, str], CaseResult] = {}
        for key, text in stored.once.items():
            variant, _, case_id = key.rpartition("\n")
            done[(variant, case_id)] = from_json(text, CaseResult)
        log = cls(store, eval_id, plan, stored.run.started_at, stored.run.attempt + 1)
        log.mark("running")
        return log, done

    def case(self, variant: str, result: CaseResult) -> None:
        """Record a finished case; one that failed is not kept, so it runs again."""
        if result.error is None:
            self.store.write([OnceRow(self.eval_id, f"{variant}\n{result.id}",
                                      to_json(result))])

    def mark(self, status: RunStatus, usage: Usage = Usage()) -> None:
        ended = None if status == "running" else time.time()
        self.store.write([RunRow(self.eval_id, EVAL_PIPELINE, status, self.started_at,
                                 inputs=self.plan, ended_at=ended, usage=usage,
                                 attempt=self.attempt)])
