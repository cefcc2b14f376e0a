"""The distribution's version, apart so the tracer can name its instrumentation scope
without importing the package it belongs to."""

__version__ = "0.1.0"  # the same as pyproject.toml's
