"""plait-example: a ``non_empty`` validation gate.

A plait plugin is a module of functions marked ``@plait.hookimpl`` and named after hooks
in ``plait.hookspecs``, installed with one entry point in group ``plait`` (see
pyproject.toml). An implementation may take any subset of its hook's arguments.

Registration hooks run once per Runtime and must be pure: no I/O, no network, and no
heavy imports at module level (import heavy libraries inside the functions you register).
"""

from __future__ import annotations

from collections.abc import Callable, Sized

import plait

__all__ = ["non_empty"]


@plait.hookimpl
def plait_register_validators(register: Callable[..., None]) -> None:
    """Register ``non_empty``, used as ``plait.Config(validate=["non_empty"])``."""
    register("non_empty", non_empty)


def non_empty(value: object) -> bool | str:
    """Pass (``True``) unless ``value`` is None, blank text or an empty collection.

    A validator passes by returning ``None`` or ``True`` and rejects by returning ``False``
    or a reason, which plait reports in ``plait.ValidationFailed``.
    """
    if value is None:
        return "the output is None"
    if isinstance(value, str):
        return bool(value.strip()) or "the output is blank"
    if isinstance(value, Sized) and len(value) == 0:
        return f"the output is an empty {type(value).__name__}"
    return True
