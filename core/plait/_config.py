"""Execution settings and how they resolve: most specific wins, and "not given" is a value.

pipeline ``config`` < the step's own (decorator / class) < ``step_config[id]`` < per call.
Because every field defaults to ``NOTSET`` rather than to a number, an explicit
``retries=0`` or ``timeout=None`` at a more specific level overrides a less specific one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final, TypeAlias, TypeVar

import attrs

__all__ = ["NOTSET", "Config", "ResolvedConfig"]


class _NotSet(enum.Enum):
    NOTSET = "NOTSET"

    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Final = _NotSet.NOTSET
"""Sentinel for "not given at this level"; distinct from ``None`` (which means "no limit")."""

T = TypeVar("T")
Maybe: TypeAlias = T | _NotSet

Validator = Callable[[Any], Any] | str


def _check_nonneg(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value is NOTSET or value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise TypeError(f"Config.{name} must be a number, got {type(value).__name__}")
        if value < 0:
            raise ValueError(f"Config.{name} must be >= 0, got {value!r}")

    return check


def _check_retries(_inst: Any, _attr: Any, value: Any) -> None:
    if value is NOTSET:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Config.retries must be an int >= 0, got {value!r}")


def _check_concurrency(_inst: Any, _attr: Any, value: Any) -> None:
    if value is NOTSET or value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Config.max_concurrency must be an int >= 1 or None, got {value!r}")


def _check_budget(_inst: Any, _attr: Any, value: Any) -> None:
    if value is NOTSET or value is None:
        return
    if not isinstance(value, Decimal):
        raise TypeError(f"Config.budget must be a Decimal such as plait.usd('0.10'), "
                        f"got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"Config.budget must be >= 0, got {value}")


def _as_exc_tuple(value: Any) -> Any:
    if value is NOTSET:
        return value
    types = (value,) if isinstance(value, type) else tuple(value)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"Config.retry_on takes exception types, got {t!r}")
    return types


def _as_validators(value: Any) -> Any:
    if value is NOTSET:
        return value
    items = [value] if callable(value) or isinstance(value, str) else list(value)
    for v in items:
        if not (callable(v) or isinstance(v, str)):
            raise TypeError(f"Config.validate takes callables or registered names, got {v!r}")
    return tuple(items)


@attrs.frozen
class Config:
    """Execution settings for a run, a step or a single call.

    - ``timeout``: seconds for each attempt of the whole step (``None``: no limit).
    - ``retries``: further attempts after a failure; model calls also use it to re-ask
      after a malformed reply and to retry transient provider errors.
    - ``retry_delay`` / ``retry_max_delay``: exponential backoff base and cap
      (equal jitter: each delay is between half and all of its cap).
    - ``retry_on``: exception types worth a retry.
    - ``budget``: USD limit (``plait.usd``) on model spend, hard, also under concurrency.
    - ``max_concurrency``: steps of one run running at once (``None``: unbounded).
    - ``validate``: validation gates for the step's output (callables or registered names).
    """

    timeout: Maybe[float | None] = attrs.field(default=NOTSET, validator=_check_nonneg("timeout"))
    retries: Maybe[int] = attrs.field(default=NOTSET, validator=_check_retries)
    retry_delay: Maybe[float] = attrs.field(default=NOTSET,
                                            validator=_check_nonneg("retry_delay"))
    retry_max_delay: Maybe[float] = attrs.field(default=NOTSET,
                                                validator=_check_nonneg("retry_max_delay"))
    retry_on: Maybe[tuple[type[BaseException], ...]] = attrs.field(default=NOTSET,
                                                                   converter=_as_exc_tuple)
    budget: Maybe[Decimal | None] = attrs.field(default=NOTSET, validator=_check_budget)
    max_concurrency: Maybe[int | None] = attrs.field(default=NOTSET,
                                                     validator=_check_concurrency)
    validate: Maybe[tuple[Validator, ...]] = attrs.field(default=NOTSET,
                                                         converter=_as_validators)

    def merge(self, override: Config | None) -> Config:
        """This config with every field ``override`` gives replaced."""
        if override is None:
            return self
        changes = {
            a.name: getattr(override, a.name)
            for a in attrs.fields(Config)
            if getattr(override, a.name) is not NOTSET
        }
        return attrs.evolve(self, **changes) if changes else self

    @classmethod
    def layered(cls, *levels: Config | None) -> Config:
        """Merge from least to most specific."""
        out = cls()
        for level in levels:
            out = out.merge(level)
        return out

    def resolve(self) -> ResolvedConfig:
        """Fill what no level gave with the defaults."""
        return ResolvedConfig(
            timeout=_given(self.timeout, None),
            retries=_given(self.retries, 0),
            retries_given=self.retries is not NOTSET,
            retry_delay=_given(self.retry_delay, 0.5),
            retry_max_delay=_given(self.retry_max_delay, 30.0),
            retry_on=_given(self.retry_on, (Exception,)),
            budget=_given(self.budget, None),
            max_concurrency=_given(self.max_concurrency, None),
            validate=_given(self.validate, ()),
        )


def _given(value: Maybe[T], default: T) -> T:
    return default if value is NOTSET else value


@attrs.frozen
class ResolvedConfig:
    """A config with every field decided; what a step attempt actually runs with."""

    timeout: float | None
    retries: int
    retries_given: bool  # model calls default to 2 retries when nothing said otherwise
    retry_delay: float
    retry_max_delay: float
    retry_on: tuple[type[BaseException], ...]
    budget: Decimal | None
    max_concurrency: int | None
    validate: Sequence[Validator]
