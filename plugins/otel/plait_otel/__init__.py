"""plait-otel: OpenTelemetry spans for plait, with the GenAI semantic conventions.

Installed, it registers the tracer ``"otel"`` (on by default) using the application's
global ``TracerProvider``; with no SDK configured the spans go nowhere. To send spans to a
provider of your own, register a tracer object instead::

    runtime = plait.Runtime(plugins=[OtelTracer(tracer_provider=provider)],
                            tracers=[])  # [] keeps the default "otel" tracer out
"""

from collections.abc import Callable

import plait

from ._tracer import OtelTracer
from ._version import __version__ as __version__

__all__ = ["OtelTracer"]


@plait.hookimpl
def plait_register_tracers(register: Callable[..., None]) -> None:
    register("otel", OtelTracer(), default=True)
