"""Which run store a Runtime records to: ``Runtime(store=...)``, else ``PLAIT_STORE``, else
the embedded SQLite file in the user data directory.

A location is a file path (the SQLite store) or ``<scheme>://...``, built by the store a
plugin registered for that scheme (``plait_register_stores``). ``off`` turns recording off.
"""

from __future__ import annotations

import os
from typing import Any

from ._errors import StoreError
from ._plugins import Registry
from ._store import RunStore

__all__ = ["OFF", "default_location", "open_location", "store_setting"]

OFF = "off"


def default_location() -> str:
    """``runs.db`` in plait's user data directory (``~/.local/share/plait`` on Linux)."""
    import platformdirs  # 9 ms of every `import plait`, for a path asked when a Runtime is built

    return os.path.join(platformdirs.user_data_dir("plait", appauthor=False), "runs.db")


def store_setting(value: Any) -> RunStore | str:
    """``Runtime(store=...)`` checked: a ``RunStore``, a location, or ``OFF``; ``None``
    reads ``PLAIT_STORE`` (unset: the default location). Nothing is opened here."""
    if value is None:
        value = os.environ.get("PLAIT_STORE") or default_location()
    if value is False:
        return OFF
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        location = value.strip()
        return OFF if location.lower() in (OFF, "none", "0", "false", "") else location
    if isinstance(value, RunStore):
        return value
    raise TypeError(f"Runtime(store=...) must be a path, a location, 'off' or a "
                    f"plait.RunStore, got {type(value).__name__}")


def open_location(location: str, registry: Registry) -> RunStore:
    """The store for ``location``, built by the factory registered for its scheme."""
    scheme, sep, rest = location.partition("://")
    if not sep:
        scheme, rest = "sqlite", location
    factory = registry.stores.get(scheme)
    if factory is None:
        raise StoreError(location, f"no run store is registered for {scheme!r} "
                         f"(registered: {', '.join(sorted(registry.stores)) or 'none'})")
    store = factory(rest if scheme == "sqlite" else location)
    if not isinstance(store, RunStore):
        raise StoreError(location, f"the {scheme!r} store factory returned {store!r}, "
                         "which is not a plait.RunStore")
    return store
