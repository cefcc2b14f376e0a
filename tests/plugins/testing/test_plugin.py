"""The `plait` and `pytest11` entry points of plait-testing, checked without a Runtime."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import plait
import plait.hookspecs
import pluggy
import pytest
from plait_testing import PRICES, FakeProvider, provider_plugin
from plait_testing import plugin as testing_plugin


def no_http() -> Any:
    pytest.fail("the fake must not touch the Runtime's HTTP client")


def manager_with(plugin: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("plait")
    pm.add_hookspecs(plait.hookspecs)
    pm.register(plugin)
    pm.check_pending()  # every hookimpl names a real hook with real arguments
    return pm


def registrations(pm: pluggy.PluginManager) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    pm.hook.plait_register_providers(register=lambda *a, **kw: calls.append((a, kw)))
    return calls


def test_entry_points_are_installed() -> None:
    (plait_ep,) = entry_points(group="plait", name="testing")
    assert plait_ep.value == "plait_testing.plugin"
    assert plait_ep.load() is testing_plugin
    (pytest_ep,) = entry_points(group="pytest11", name="plait_testing")
    assert pytest_ep.value == "plait_testing.pytest_plugin"


def test_the_entry_point_registers_fake_with_its_prices() -> None:
    [(args, kwargs)] = registrations(manager_with(testing_plugin))
    assert args == ("fake", testing_plugin.build_fake)
    assert kwargs == {"prices": PRICES}


async def test_the_factory_builds_a_fake_from_settings() -> None:
    env = plait.ProviderEnv(name="fake", settings={"replies": ["configured"], "latency": 0},
                            http=no_http)
    fake = testing_plugin.build_fake(env)
    assert isinstance(fake, FakeProvider)
    request = plait.ModelRequest(model="x", messages=(plait.Message("user", "hi"),))
    assert (await fake.complete(request)).text == "configured"


def test_unknown_settings_are_refused_by_name() -> None:
    env = plait.ProviderEnv(name="fake", settings={"replys": ["typo"]}, http=no_http)
    with pytest.raises(plait.PluginError, match=r"unknown settings for the 'fake' provider: "
                                                r"replys \(it takes replies, latency\)"):
        testing_plugin.build_fake(env)


def test_provider_plugin_registers_the_instance_itself() -> None:
    fake = FakeProvider()
    limits = plait.Limits(concurrency=2)
    plugin = provider_plugin(fake, "mock", prices=PRICES, limits=limits)
    [(args, kwargs)] = registrations(manager_with(plugin))
    name, factory = args
    assert name == "mock"
    assert kwargs == {"prices": PRICES, "limits": limits}
    env = plait.ProviderEnv(name="mock", settings={}, http=no_http)
    assert factory(env) is fake
    assert repr(plugin) == "provider_plugin('mock', FakeProvider(calls=0))"
    windowed = provider_plugin(fake, "mock", context_windows={"m": 100})
    [(_, kwargs)] = registrations(manager_with(windowed))
    assert kwargs == {"prices": None, "limits": None, "context_windows": {"m": 100}}
