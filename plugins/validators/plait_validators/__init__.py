"""plait-validators: validation gates for plait steps.

Each factory returns a validator for ``@plait.step(validate=[...])``,
``plait.Config(validate=[...])``, ``agent.as_step(..., validate=[...])`` or
``ctx.ask(..., validate=[...])``::

    @plait.step(validate=[non_empty(), length(max=500)])

The ones without parameters are also registered by name (``"non_empty"``, ``"json"``),
so ``plait.Config(validate=["non_empty"])`` works once the plugin is installed.
"""

from collections.abc import Callable

import plait

from ._grounding import grounded
from ._llm import CheckVerdict, llm_check
from ._schema import json_schema, structure
from ._text import is_json, length, non_empty, one_of, regex

__all__ = [
    "CheckVerdict",
    "grounded",
    "is_json",
    "json_schema",
    "length",
    "llm_check",
    "non_empty",
    "one_of",
    "regex",
    "structure",
]

__version__ = "0.1.0"


@plait.hookimpl
def plait_register_validators(register: Callable[..., None]) -> None:
    register("non_empty", non_empty())
    register("json", is_json())
