"""Text the demos print: model replies trimmed to whole sentences, shown without markup."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plait._results import Reply

__all__ = ["complete_sentences", "escape"]


def complete_sentences(reply: Reply) -> str:
    """A text reply; one that ``max_tokens`` cut off is trimmed back to its last full
    sentence (small models ramble until stopped)."""
    text = str(reply.output).strip()
    end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind(".\n"))
    if reply.finish_reason != "length" or text.endswith((".", "!", "?")) or end < 0:
        return text
    return text[: end + 1]


def escape(text: str) -> str:
    """Text shown as it is, never read as rich markup (model output, step ids, errors)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
