"""plait-testing: test plait workflows and plugins without a model or a network.

- ``FakeProvider``: a deterministic provider for ``fake:<anything>`` models.
- ``provider_plugin``: register any provider object on a Runtime (for one test).
- ``plait_testing.contracts``: contract suites a plugin's tests subclass.
- pytest fixtures (loaded automatically): ``plait_runtime``, ``fake_provider``,
  ``register_plugin``, ``no_network``, ``span_exporter``, ``tracer_provider``.
"""

from ._fake import HANG, PRICES, FakeProvider, Reply, Responder, ScriptExhausted
from ._registration import provider_plugin

__all__ = [
    "HANG",
    "PRICES",
    "FakeProvider",
    "Reply",
    "Responder",
    "ScriptExhausted",
    "provider_plugin",
]

__version__ = "0.1.0"
