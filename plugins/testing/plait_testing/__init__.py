"""plait-testing: test plait workflows and plugins without a model or a network.

- ``FakeProvider``: a deterministic provider for ``fake:<anything>`` models (it streams
  too; ``Chunks`` scripts a stream piece by piece).
- ``provider_plugin``: register any provider object on a Runtime (for one test).
- ``run_step``: unit-test one step with its inputs, dependencies' outputs, application
  deps and config, as a real run gives them (``StepRun``: its output and record).
- ``MockVendor``: a vendor's HTTP API behind ``httpx.MockTransport``, for a provider's tests,
  with ``registered_providers``, ``registration_imports``, ``assert_no_secret`` and
  ``cut_to_max_tokens``.
- ``plait_testing.contracts``: contract suites a plugin's tests subclass.
- pytest fixtures (loaded automatically): ``plait_runtime``, ``fake_provider``,
  ``register_plugin``, ``no_network``, ``span_exporter``, ``tracer_provider``.
"""

from ._fake import (
    HANG,
    PRICES,
    Chunks,
    FakeProvider,
    Reply,
    Responder,
    ScriptExhausted,
    cut_to_max_tokens,
)
from ._registration import provider_plugin
from ._steps import StepRun, run_step
from ._vendor import MockVendor, assert_no_secret, registered_providers, registration_imports

__all__ = [
    "HANG",
    "PRICES",
    "Chunks",
    "FakeProvider",
    "MockVendor",
    "Reply",
    "Responder",
    "ScriptExhausted",
    "StepRun",
    "assert_no_secret",
    "cut_to_max_tokens",
    "provider_plugin",
    "registered_providers",
    "registration_imports",
    "run_step",
]

__version__ = "0.1.0"
