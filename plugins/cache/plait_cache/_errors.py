"""The cache's errors, under ``plait.PlaitError``.

    CacheError       the cache is misconfigured or its file cannot be used
    └── CacheCorrupt the file is not a plait cache (damaged, or another program's)
"""

from __future__ import annotations

import os

import plait

__all__ = ["CacheCorrupt", "CacheError"]


class CacheError(plait.PlaitError):
    """The cache is misconfigured, or its file cannot be opened or written."""


class CacheCorrupt(CacheError):
    """The cache file is damaged or is not a plait cache; ``path`` names it. Nothing is
    deleted for you: ``plait cache clear --path PATH`` removes it."""

    def __init__(self, path: str | os.PathLike[str], detail: str) -> None:
        self.path = os.fspath(path)
        super().__init__(f"the plait cache file {self.path} is corrupt ({detail}); remove it "
                         f"with `plait cache clear --path {self.path}` or delete it")
