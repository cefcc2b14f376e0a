"""plait-local: GGUF models run in process with llama.cpp, SmolLM2-135M-Instruct bundled.

``Agent(model="local:smollm2")`` or ``"local:/path/model.gguf"``. Importing this module
and registering the provider are cheap: llama_cpp is imported when a model first loads.
"""

from __future__ import annotations

from collections.abc import Callable

import plait

from ._models import BUNDLED_ALIASES, bundled_model_path, resolve_model
from ._provider import ChatModel, LlamaLoader, LocalProvider, default_parallel

__all__ = [
    "BUNDLED_ALIASES",
    "ChatModel",
    "LlamaLoader",
    "LocalProvider",
    "bundled_model_path",
    "default_parallel",
    "plait_register_providers",
    "resolve_model",
]

__version__ = "0.1.0"


@plait.hookimpl
def plait_register_providers(register: Callable[..., None]) -> None:
    # Inference costs nothing per token: every model is priced at zero.
    register("local", LocalProvider.from_env, prices={"*": plait.Price.per_million("0", "0")})
