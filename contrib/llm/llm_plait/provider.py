"""The ``plait`` entry point: the provider ``llm``, any model llm knows as ``llm:<id>``.

plait imports this module whenever a Runtime loads plugins, so llm (and through it every
llm plugin) is imported on the first call to a model, never at registration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import plait

if TYPE_CHECKING:
    import llm

__all__ = ["LLMProvider", "plait_register_providers"]

# plait's request fields -> the names llm plugins give those options, first match wins.
OPTION_NAMES: Mapping[str, tuple[str, ...]] = {
    "temperature": ("temperature",),
    "max_tokens": ("max_tokens", "max_output_tokens"),
    "seed": ("seed",),
}

# A vendor exception's HTTP status -> plait's error for it.
STATUS_ERRORS: Mapping[int, type[plait.ProviderError]] = {
    400: plait.BadRequest, 401: plait.AuthenticationError, 403: plait.AuthenticationError,
    404: plait.ModelNotFound, 422: plait.BadRequest,
}


@plait.hookimpl
def plait_register_providers(register: Callable[..., None]) -> None:
    # No prices: llm does not know them. Budgets need Runtime(prices={...}).
    register("llm", LLMProvider)


class LLMProvider:
    """Built once per Runtime, on the first ``llm:`` call; asks llm's async model API."""

    def __init__(self, env: plait.ProviderEnv) -> None:
        self._name = env.name
        self._models: dict[str, llm.AsyncModel | llm.AsyncKeyModel] = {}

    def __repr__(self) -> str:
        return f"LLMProvider(name={self._name!r})"

    async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
        model = self._model(request.model)
        kwargs = self._prompt_arguments(model, request)
        schema = request.json_schema is not None and model.supports_schema
        if schema:
            kwargs["schema"] = dict(request.json_schema or {})
        try:
            with anyio.fail_after(request.timeout):
                response = model.prompt(**kwargs, options=self._options(model, request))
                text = await response.text()
                usage = await response.usage()
        except TimeoutError:
            raise plait.ProviderUnavailable(f"no reply within {request.timeout}s",
                                            provider=self._name, model=request.model) from None
        except Exception as exc:
            raise self._translate(exc, request.model) from None
        return plait.ModelResponse(
            text=text,
            usage=plait.TokenCount(plait.token_count(usage.input),
                                   plait.token_count(usage.output)),
            parsed=plait.json_or_none(text) if schema else None,
            model=response.resolved_model or model.model_id,
            raw=response,
        )

    def _model(self, model_id: str) -> llm.AsyncModel | llm.AsyncKeyModel:
        if model_id not in self._models:
            import llm

            try:
                self._models[model_id] = llm.get_async_model(model_id)
            except llm.UnknownModelError as exc:
                raise plait.ModelNotFound(f"{exc.args[0]} (see `llm models list`)",
                                          provider=self._name, model=model_id) from None
        return self._models[model_id]

    def _prompt_arguments(self, model: llm.AsyncModel | llm.AsyncKeyModel,
                          request: plait.ModelRequest) -> dict[str, Any]:
        """The system prompt, the last user message as the prompt, earlier turns as
        llm messages (or, for a single-turn model, a transcript in the prompt)."""
        import llm

        turns = [m for m in request.messages if m.role != "system"]
        if not turns or turns[-1].role != "user":
            raise plait.BadRequest("the last message must be the user's",
                                   provider=self._name, model=request.model)
        *history, last = turns
        system = request.system
        if not history:
            return {"prompt": last.content, "system": system}
        if not model.supports_conversation:
            transcript = "\n\n".join(f"{m.role.capitalize()}: {m.content}" for m in turns)
            return {"prompt": f"{transcript}\n\nAssistant:", "system": system}
        messages = [llm.system(system)] if system else []
        messages += [llm.user(m.content) if m.role == "user" else llm.assistant(m.content)
                     for m in history]
        # system= too, for plugins that read prompt.system rather than prompt.messages.
        return {"prompt": last.content, "system": system, "messages": messages}

    def _options(self, model: llm.AsyncModel | llm.AsyncKeyModel,
                 request: plait.ModelRequest) -> dict[str, Any]:
        """plait's sampling fields, under the names this model's Options accept, and
        ``request.extra`` as llm options (``-o`` on llm's command line)."""
        accepted = model.Options.model_fields
        options: dict[str, Any] = {}
        for field, names in OPTION_NAMES.items():
            value = getattr(request, field)
            name = next((n for n in names if n in accepted), None)
            if value is not None and name is not None:
                options[name] = value
        return {**options, **request.extra}

    def _translate(self, exc: Exception, model: str) -> plait.ProviderError:
        """llm's and its plugins' exceptions as plait's errors, with the vendor's message
        (llm's own messages name where to put a key, never the key)."""
        import llm

        if isinstance(exc, plait.ProviderError):
            return exc
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        status = getattr(exc, "status_code", None)
        if not isinstance(status, int):
            status = None
        if isinstance(exc, llm.NeedsKeyException):
            kind: type[plait.ProviderError] = plait.AuthenticationError
        elif isinstance(exc, llm.UnknownModelError):
            kind = plait.ModelNotFound
        elif isinstance(exc, ValueError) and "validation error" in message:  # pydantic Options
            kind = plait.BadRequest
        elif status == 429:
            kind = plait.RateLimited
        elif status is not None and status >= 500:
            kind = plait.ProviderUnavailable
        else:
            kind = STATUS_ERRORS.get(status or 0, plait.ProviderError)
        return kind(message, provider=self._name, model=model, status=status)
