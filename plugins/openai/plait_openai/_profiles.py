"""Profiles: one per OpenAI-compatible server, each registered as its own model prefix."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ._chat import Profile

__all__ = ["HOSTED", "LOCAL", "OPENAI", "profile"]


def profile(
    name: str,
    *,
    base_url: str,
    api_key_env: str | None = None,
    base_url_env: str | None = None,
    headers: Mapping[str, str] | None = None,
    secret_headers: Iterable[str] = (),
) -> Profile:
    """A provider factory for another OpenAI-compatible server.

    Register it from your own plugin::

        @plait.hookimpl
        def plait_register_providers(register):
            lab = plait_openai.profile("lab", base_url="http://gpu-box:8000/v1",
                                       api_key_env="LAB_API_KEY")
            register(lab.name, lab)

    ``headers`` are sent with every request (OpenRouter's ``HTTP-Referer``, say); name
    those that carry a credential in ``secret_headers`` (``Authorization``, ``api-key``
    and ``x-api-key`` always count), so their values are redacted from error messages.
    """
    return Profile(
        name, base_url, api_key_env, base_url_env, dict(headers or {}), secret_headers
    )


OPENAI = profile(
    "openai",
    base_url="https://api.openai.com/v1",
    api_key_env="OPENAI_API_KEY",
    base_url_env="OPENAI_BASE_URL",
)

# Servers on your own machine: no key needed (settings ``api_key`` is sent if given, for a
# server started with one), and no per-token price.
# Each has its own ``<NAME>_BASE_URL`` variable, for a server on another host or port.
LOCAL = (
    profile("ollama", base_url="http://localhost:11434/v1", base_url_env="OLLAMA_BASE_URL"),
    profile("lmstudio", base_url="http://localhost:1234/v1", base_url_env="LMSTUDIO_BASE_URL"),
    profile("vllm", base_url="http://localhost:8000/v1", base_url_env="VLLM_BASE_URL"),
    profile("llamacpp", base_url="http://127.0.0.1:8080/v1", base_url_env="LLAMACPP_BASE_URL"),
)

# Hosted services that speak the same API. Their catalogues are large and move fast, so no
# price table ships for them: pass your own prices to the Runtime.
HOSTED = (
    profile("openrouter", base_url="https://openrouter.ai/api/v1",
            api_key_env="OPENROUTER_API_KEY", base_url_env="OPENROUTER_BASE_URL"),
    profile("groq", base_url="https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY",
            base_url_env="GROQ_BASE_URL"),
    profile("together", base_url="https://api.together.xyz/v1",
            api_key_env="TOGETHER_API_KEY", base_url_env="TOGETHER_BASE_URL"),
)
