"""OpenTelemetry context across the cluster, when the application has opentelemetry.

The driver injects its current context (inside the fan-out's span, when plait-otel traces
it) into a W3C ``traceparent`` carrier sent with every chunk; the worker attaches it
around the chunk, so the spans its tracers start (model calls, nested steps) are children
of the fan-out's span. Without opentelemetry installed, nothing is sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["attached", "carrier"]


def carrier() -> dict[str, str] | None:
    try:
        from opentelemetry import propagate
    except ImportError:  # opentelemetry is the application's choice, not a dependency
        return None
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers or None


@contextlib.contextmanager
def attached(headers: dict[str, str] | None) -> Iterator[None]:
    if not headers:
        yield
        return
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract(headers))
    try:
        yield
    finally:
        context.detach(token)
