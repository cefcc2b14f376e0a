"""Majority vote over ensemble candidates, optionally drawn in rounds that stop early."""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal

import attrs
import plait

__all__ = ["LowAgreement", "Tie", "VoteOptions", "vote"]

_SCALARS = (str, int, float, bool, type(None))


class Tie(plait.AggregationError):
    """Several answers got the most votes and the tie policy is ``"raise"``.

    ``tied`` holds one output per tied answer (the first candidate's), ``votes`` the
    number of candidates that voted.
    """

    def __init__(self, tied: Sequence[Any], count: int, votes: int) -> None:
        self.tied = tuple(tied)
        self.count = count
        self.votes = votes
        shown = ", ".join(repr(t) for t in self.tied)
        super().__init__(f"vote: a tie between {shown} ({count} of {votes} votes each); "
                         "pass tie='first' or tie='random' to break it")


class LowAgreement(plait.AggregationError):
    """The winner's share of the votes is below the quorum.

    ``aggregation`` is the full (flagged) result, so nothing is lost: the caller can
    still read the winner, the counts and the agreement.
    """

    def __init__(self, aggregation: plait.Aggregation, quorum: float) -> None:
        self.aggregation = aggregation
        self.quorum = quorum
        super().__init__(f"vote: agreement {aggregation.agreement:.2f} is below the quorum "
                         f"{quorum:.2f} (winner {aggregation.winner!r}); pass "
                         "on_low_agreement='flag' to get a flagged result instead")


def _check_quorum(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not 0 < value <= 1):
        raise ValueError(f"vote: quorum must be a number in (0, 1] or None, got {value!r}")


def _check_batch(_inst: Any, _attr: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"vote: batch must be an int >= 1, got {value!r}")


def _check_key(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not callable(value):
        raise ValueError(f"vote: key must be a function of the output, got {value!r}")


@attrs.frozen
class VoteOptions:
    """The keywords ``vote`` takes (``ctx.ensemble(..., aggregate="vote", **options)``).

    - ``key``: a function of a candidate's output giving what is compared; by default
      text is compared stripped and casefolded, Enums by value and structured outputs by
      value (through the runtime's converter, text inside normalized the same way).
    - ``tie``: ``"first"`` (the answer seen first wins), ``"random"`` (seeded by
      ``seed``) or ``"raise"`` (``Tie``).
    - ``quorum``: the least share of the votes the winner needs; below it ``LowAgreement``
      is raised, or the result is flagged when ``on_low_agreement="flag"``.
    - ``adaptive``: draw candidates in rounds of at least ``batch`` and stop as soon as
      the remaining ones could not change the outcome.
    """

    key: Callable[[Any], Any] | None = attrs.field(default=None, validator=_check_key)
    tie: Literal["first", "random", "raise"] = attrs.field(
        default="first", validator=attrs.validators.in_(("first", "random", "raise")))
    seed: int | None = None
    quorum: float | None = attrs.field(default=None, validator=_check_quorum)
    on_low_agreement: Literal["raise", "flag"] = attrs.field(
        default="raise", validator=attrs.validators.in_(("raise", "flag")))
    adaptive: bool = False
    batch: int = attrs.field(default=2, validator=_check_batch)


@attrs.frozen
class _Group:
    """The candidates that gave one answer, in index order."""

    key: Hashable
    members: tuple[plait.Candidate, ...]

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def output(self) -> Any:
        return self.members[0].output


async def vote(job: plait.AggregationJob) -> plait.Aggregation:
    """The ``vote`` aggregator: the most common answer wins; agreement is its share."""
    opts = job.options_as(VoteOptions, "vote")
    normalize = _normalizer(opts.key, job.runtime.converter)
    rounds = 0
    if opts.adaptive:
        while job.remaining:
            groups = _tally(job.drawn, normalize)
            if rounds and _settled(groups, job.remaining, len(job.drawn), opts.quorum):
                break
            await job.draw(_round_size(groups, job.remaining, opts.batch))
            rounds += 1
    else:
        await job.candidates()
        rounds = 1
    groups = _tally(job.drawn, normalize)
    return _decide(groups, len(job.drawn), job.remaining, rounds, opts)


def _tally(drawn: Sequence[plait.Candidate],
           normalize: Callable[[Any], Hashable]) -> list[_Group]:
    """Groups of equal answers, most votes first, ties in order of first appearance."""
    members: dict[Hashable, list[plait.Candidate]] = {}
    for cand in sorted(drawn, key=lambda c: c.index):
        members.setdefault(normalize(cand.output), []).append(cand)
    groups = [_Group(k, tuple(v)) for k, v in members.items()]
    return sorted(groups, key=lambda g: (-g.count, g.members[0].index))


def _counts(groups: Sequence[_Group]) -> tuple[int, int]:
    """The leader's and the runner-up's vote counts."""
    return (groups[0].count if groups else 0, groups[1].count if len(groups) > 1 else 0)


def _settled(groups: Sequence[_Group], remaining: int, votes: int,
             quorum: float | None) -> bool:
    """Whether no outcome of the ``remaining`` candidates could change the result."""
    leader, runner_up = _counts(groups)
    if leader <= runner_up + remaining:
        return False
    if quorum is None:
        return True
    total = votes + remaining  # the quorum verdict must not be able to flip either
    return leader / total >= quorum or (leader + remaining) / total < quorum


def _round_size(groups: Sequence[_Group], remaining: int, batch: int) -> int:
    """``batch``, or more when fewer draws could not settle the winner even if every one
    of them agreed with the leader (a unanimous n=7 vote is decided by one round of 4)."""
    leader, runner_up = _counts(groups)
    needed = max(1, (runner_up + remaining - leader) // 2 + 1)
    return min(remaining, max(batch, needed))


def _decide(groups: list[_Group], votes: int, remaining: int, rounds: int,
            opts: VoteOptions) -> plait.Aggregation:
    top = groups[0].count
    tied = [g for g in groups if g.count == top]
    winner = tied[0]
    if len(tied) > 1:
        if opts.tie == "raise":
            raise Tie([g.output for g in tied], top, votes)
        if opts.tie == "random":
            winner = random.Random(opts.seed).choice(tied)
    agreement = top / votes
    rationale = f"{top} of {votes} candidates answered {winner.output!r}"
    if len(tied) > 1:
        rationale += f"; a {len(tied)}-way tie broken by tie={opts.tie!r}"
    details: dict[str, Any] = {
        "counts": [{"answer": g.output, "count": g.count,
                    "candidates": [c.index for c in g.members]} for g in groups],
        "votes": votes,
        "rounds": rounds,
    }
    if len(tied) > 1:
        details["tied"] = [g.output for g in tied]
    result = plait.Aggregation(
        winner.output,
        winner_index=winner.members[0].index,
        agreement=agreement,
        scores={c.index: g.count / votes for g in groups for c in g.members},
        rationale=rationale,
        calls_saved=remaining,
        details=details,
    )
    if opts.quorum is not None and agreement < opts.quorum:
        result = attrs.evolve(result, flagged=True)
        if opts.on_low_agreement == "raise":
            raise LowAgreement(result, opts.quorum)
    return result


def _normalizer(key: Callable[[Any], Any] | None,
                converter: Any) -> Callable[[Any], Hashable]:
    if key is not None:
        return lambda output: _freeze(key(output), fold=False)
    return lambda output: _freeze(_plain(output, converter), fold=True)


def _plain(output: Any, converter: Any) -> Any:
    """The output as plain data: Enums by value, classes through the converter."""
    if isinstance(output, enum.Enum):
        return output.value
    if isinstance(output, _SCALARS):
        return output
    return converter.unstructure(output)


def _freeze(data: Any, *, fold: bool) -> Hashable:
    """A hashable form of plain data; with ``fold``, text is stripped and casefolded."""
    if isinstance(data, str):
        return data.strip().casefold() if fold else data
    if isinstance(data, enum.Enum):
        return _freeze(data.value, fold=fold)
    if isinstance(data, Mapping):
        return frozenset((_freeze(k, fold=fold), _freeze(v, fold=fold))
                         for k, v in data.items())
    if isinstance(data, list | tuple):
        return tuple(_freeze(item, fold=fold) for item in data)
    if isinstance(data, set | frozenset):
        return frozenset(_freeze(item, fold=fold) for item in data)
    if not isinstance(data, Hashable):
        raise TypeError(f"vote: cannot compare answers of type {type(data).__name__}; pass "
                        "key= a function returning something hashable")
    return data
