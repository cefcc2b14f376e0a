"""Grounding: every source an output cites must be one of the sources it was given."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

from ._naming import listing, named

if TYPE_CHECKING:
    import plait

__all__ = ["grounded"]

Sources = Collection[Any] | Callable[["plait.StepContext"], Iterable[Any]]


def grounded(*, sources: Sources, cited: str | Callable[[Any], Iterable[Any] | None],
             min_cited: int = 0) -> Callable[..., str | None]:
    """Every id the output cites must be one of ``sources``.

    - ``cited``: a function of the output returning the ids it cites, or the name of an
      attribute / key holding them (``"citations"``).
    - ``sources``: the allowed ids, or a function of the step context returning them
      (``lambda ctx: [doc.id for doc in ctx.dep("retrieve")]``), so the check follows the
      inputs of this very run.
    - ``min_cited``: how many citations the output needs at least (default 0).

    Ids are compared as text, so a model writing ``"3"`` for source ``3`` still matches.
    """
    if isinstance(min_cited, bool) or not isinstance(min_cited, int) or min_cited < 0:
        raise ValueError(f"grounded(min_cited=...) must be an int >= 0, got {min_cited!r}")
    if not (callable(cited) or isinstance(cited, str)):
        raise TypeError(f"grounded(cited=...) takes a function of the output or an attribute "
                        f"name, got {cited!r}")
    if isinstance(sources, str) or not (callable(sources) or isinstance(sources, Collection)):
        raise TypeError(f"grounded(sources=...) takes a collection of ids or a function of the "
                        f"step context, got {sources!r}")
    extract = cited if callable(cited) else _field(cited)

    def check(value: Any, ctx: plait.StepContext | None = None) -> str | None:
        if callable(sources):
            if ctx is None:
                raise TypeError("grounded(sources=<function>) needs the step context; "
                                "call it as check(value, ctx)")
            allowed = list(sources(ctx))
        else:
            allowed = list(sources)
        found = extract(value)
        ids = [] if found is None else [found] if isinstance(found, str | int) else list(found)
        if len(ids) < min_cited:
            return (f"the output cites {len(ids)} sources, fewer than the {min_cited} "
                    f"required; cite from: {listing(allowed)}")
        known = {str(s) for s in allowed}
        unknown = list(dict.fromkeys(str(i) for i in ids if str(i) not in known))
        if unknown:
            return (f"the output cites {listing(unknown)}, which "
                    f"{'is' if len(unknown) == 1 else 'are'} not among the sources given: "
                    f"{listing(allowed) or 'none'}")
        return None

    return named(f"grounded(cited={cited!r})" if isinstance(cited, str) else "grounded", check)


def _field(name: str) -> Callable[[Any], Any]:
    def extract(value: Any) -> Any:
        if isinstance(value, dict):
            return value.get(name)
        return getattr(value, name, None)

    return extract
