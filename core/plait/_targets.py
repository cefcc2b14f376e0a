"""What a command runs: ``MODULE:OBJECT`` targets and their ``KEY=VALUE`` inputs, for
``plait run`` and plugins' own commands."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import IO, Any

from ._errors import did_you_mean
from ._pipeline import Pipeline
from ._step import Step

__all__ = ["load_target", "parse_inputs", "parse_settings"]


def load_target(spec: str, *, as_pipeline: bool = True) -> Any:
    """Import ``module:object`` (``object`` may be dotted; the working directory is on the
    path, as for ``python -m``).

    With ``as_pipeline`` (the default) the object must be a ``plait.Pipeline`` or a step,
    and a bare step comes back wrapped in a one-step pipeline named after it. Every mistake
    is a one-line ``click.UsageError`` (or ``click.BadParameter`` for a malformed spec), so
    a command that uses this exits with code 2 and a clear message.
    """
    import click

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise click.BadParameter(f"{spec!r} is not MODULE:OBJECT (e.g. flows:pipeline)",
                                 param_hint="'MODULE:OBJECT'")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name
                                     or module_name.startswith(exc.name + ".")):
            raise click.UsageError(f"no module named {module_name!r} (looked in {cwd} and on "
                                   "the Python path)") from None
        raise click.UsageError(f"importing {module_name!r} failed: {_one_line(exc)}") from None
    except Exception as exc:
        raise click.UsageError(f"importing {module_name!r} failed: {_one_line(exc)}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise click.UsageError(f"module {module_name!r} has no attribute {attr!r}"
                                   f"{_runnable_names(obj, part)}") from None
    return _as_pipeline(obj, spec, attr) if as_pipeline else obj


def parse_inputs(pairs: Iterable[str], input_json: IO[str] | None = None) -> dict[str, Any]:
    """Run inputs from a command line: the JSON object read from ``input_json`` (a file, as
    ``--input-json`` gives), then each ``KEY=VALUE`` of ``pairs`` (``--input``) over it.

    Values from ``pairs`` are strings. A malformed pair or a file that is not a JSON object
    is a ``click.BadParameter`` naming the option, so a command exits with code 2.
    """
    import click

    inputs: dict[str, Any] = {}
    if input_json is not None:
        name = getattr(input_json, "name", "-")
        try:
            data = json.load(input_json)
        except ValueError as exc:
            raise click.BadParameter(f"{name}: not valid JSON ({exc})",
                                     param_hint="'--input-json'") from None
        if not isinstance(data, Mapping):
            raise click.BadParameter(f"{name}: expected a JSON object of input name -> value, "
                                     f"got {type(data).__name__}", param_hint="'--input-json'")
        inputs.update(data)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="'--input'")
        inputs[key.strip()] = value
    return inputs


def parse_settings(pairs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Provider settings from a command line, for ``Runtime(settings=...)``: each
    ``PROVIDER.KEY=VALUE`` of ``pairs`` (``--set openai.base_url=http://...``).

    A value that reads as JSON (``30``, ``1.5``, ``true``, ``null``) is that value, anything
    else is the text as written. A malformed pair is a ``click.BadParameter`` naming
    ``--set``, so a command exits with code 2.
    """
    import click

    settings: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        target, sep, text = pair.partition("=")
        provider, dot, key = target.strip().partition(".")
        if not sep or not dot or not provider or not key:
            raise click.BadParameter(f"{pair!r} is not PROVIDER.KEY=VALUE "
                                     "(e.g. llamacpp.base_url=http://127.0.0.1:8081/v1)",
                                     param_hint="'--set'")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        settings.setdefault(provider, {})[key] = value
    return settings


def _as_pipeline(obj: Any, spec: str, attr: str) -> Any:
    if isinstance(obj, Pipeline):
        return obj
    if isinstance(obj, Step):
        name = attr.rsplit(".", 1)[-1]
        return Pipeline(name, steps={name: obj})
    import click

    kind = type(obj).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    raise click.UsageError(f"{spec} is {article} {kind}, not a plait.Pipeline or plait.Step "
                           "(decorate a function with @plait.step, or build a plait.Pipeline)")


def _runnable_names(module: Any, missing: str) -> str:
    """"; pipelines: a, b; did you mean 'a'?" for what ``module`` holds that could run."""
    names = [n for n, v in getattr(module, "__dict__", {}).items()
             if isinstance(v, Pipeline) and not n.startswith("_")]
    steps = [n for n, v in getattr(module, "__dict__", {}).items() if isinstance(v, Step)
             and not isinstance(v, Pipeline) and not n.startswith("_")]
    if not names and not steps:
        return "; it has no pipelines or steps"
    shown = "".join(f"; {kind}: {', '.join(found)}" for kind, found in
                    (("pipelines", names), ("steps", steps)) if found)
    return shown + did_you_mean(missing, [*names, *steps])


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
