"""The Runtime: entry-point discovery, guarded loading, switches, per-runtime isolation."""

from __future__ import annotations

import pathlib
import textwrap
from typing import Any

import plait
import pytest


def _install_fake_distribution(tmp: pathlib.Path, monkeypatch: pytest.MonkeyPatch, name: str,
                               module_source: str) -> None:
    """A real distribution on sys.path: dist-info with an entry point in group `plait`."""
    module = f"plait_{name}_test_plugin"
    (tmp / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = tmp / f"plait_{name}_test-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: plait-{name}-test\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[plait]\n{name} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp))


GOOD = """
import plait

class Echo:
    async def complete(self, request):
        return plait.ModelResponse(request.messages[-1].content)

@plait.hookimpl
def plait_register_providers(register):
    register("goodecho", lambda env: Echo())
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in ("PLAIT_LOAD_PLUGINS", "PLAIT_DISABLE_PLUGIN_AUTOLOAD", "PLAIT_STRICT_PLUGINS",
                "PLAIT_TRACE_HOOKS"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


async def test_discovers_plugins_through_installed_entry_points(
        tmp_path: pathlib.Path, clean_env: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path, clean_env, "good", GOOD)
    async with plait.Runtime() as runtime:
        reply = await plait.Agent("goodecho:any").ask("ping", runtime=runtime)
        assert reply.text == "ping"
        info = {i.name: i for i in runtime.plugin_infos()}
        assert info["good"].distribution == "plait-good-test"
        assert info["good"].version == "0.3"
        assert info["good"].registered == {"provider": ("goodecho",)}
        assert info["good"].hooks == ("plait_register_providers",)
        # the repo's own plait-testing is installed in the dev environment too
        assert "fake" in runtime.registry.providers


def test_a_broken_plugin_is_recorded_and_skipped(tmp_path: pathlib.Path,
                                                 clean_env: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path, clean_env, "broken", "raise ImportError('no numpy')\n")
    _install_fake_distribution(tmp_path, clean_env, "good", GOOD)
    runtime = plait.Runtime()
    with pytest.warns(plait.PluginWarning, match="'broken'.*no numpy"):
        runtime.load()
    assert "goodecho" in runtime.registry.providers  # the others still load
    broken = [i for i in runtime.plugin_infos() if i.error]
    assert [(b.name, b.distribution) for b in broken] == [("broken", "plait-broken-test")]
    assert "ImportError: no numpy" in (broken[0].error or "")


def test_strict_plugins_makes_a_broken_plugin_fatal(tmp_path: pathlib.Path,
                                                    clean_env: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path, clean_env, "broken", "raise ImportError('nope')\n")
    clean_env.setenv("PLAIT_STRICT_PLUGINS", "1")
    with pytest.raises(plait.PluginError, match=r"'broken'.*failed to load"):
        plait.Runtime().load()


def test_misspelled_hook_fails_loudly(tmp_path: pathlib.Path,
                                      clean_env: pytest.MonkeyPatch) -> None:
    class Typo:
        @plait.hookimpl
        def plait_register_provider(self, register: Any) -> None:  # missing the final "s"
            pass

    with pytest.raises(plait.PluginError, match="plait_register_provider"):
        plait.Runtime(entry_points=False).register(Typo())
    _install_fake_distribution(tmp_path, clean_env, "typo", """
        import plait
        @plait.hookimpl
        def plait_wrap_stepp(ctx):
            yield
    """)
    runtime = plait.Runtime()
    with pytest.warns(plait.PluginWarning, match="plait_wrap_stepp"):
        runtime.load()
    assert not runtime.pm.has_plugin("typo")


def test_load_plugins_allow_list_and_autoload_switch(tmp_path: pathlib.Path,
                                                     clean_env: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path, clean_env, "good", GOOD)
    clean_env.setenv("PLAIT_LOAD_PLUGINS", "")
    assert plait.Runtime().registry.providers == {}
    clean_env.setenv("PLAIT_LOAD_PLUGINS", "plait-good-test")
    assert list(plait.Runtime().registry.providers) == ["goodecho"]
    clean_env.delenv("PLAIT_LOAD_PLUGINS")
    clean_env.setenv("PLAIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert plait.Runtime().registry.providers == {}
    assert "goodecho" in plait.Runtime(entry_points=True).registry.providers


def test_trace_hooks_prints_each_hook_call(clean_env: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setenv("PLAIT_TRACE_HOOKS", "1")
    runtime = plait.Runtime(entry_points=False)
    plait.run_sync(plait.Pipeline("p", {"s": lambda ctx: 1}), runtime=runtime)
    err = capsys.readouterr().err
    assert "plait_run_step" in err


def test_runtimes_are_isolated_and_plugins_can_be_scoped() -> None:
    class P:
        @plait.hookimpl
        def plait_register_validators(self, register: Any) -> None:
            register("always", lambda v: True)

    a = plait.Runtime(entry_points=False)
    b = plait.Runtime(entry_points=False)
    with a.plugin(P()):
        assert "always" in a.registry.validators
        assert "always" not in b.registry.validators
    assert "always" not in a.registry.validators
    assert a.converter is not b.converter


async def test_unknown_provider_names_the_distribution(plait_runtime: plait.Runtime) -> None:
    with pytest.raises(plait.UnknownPlugin) as info:
        await plait.Agent("openai:gpt-4o-mini").ask("hi", runtime=plait_runtime)
    assert "plait-openai" in str(info.value)
    assert info.value.distribution == "plait-openai"
    with pytest.raises(plait.UnknownPlugin, match="install") as other:
        await plait.Agent("mystery:x").ask("hi", runtime=plait_runtime)
    assert other.value.distribution is None


def test_prices_fall_back_only_to_a_dated_snapshot_base() -> None:
    o3, gpt = plait.Price.per_million("2", "8"), plait.Price.per_million("2.5", "10")

    class P:
        @plait.hookimpl
        def plait_register_providers(self, register: Any) -> None:
            register("x", lambda env: None, prices={"o3": o3, "gpt-4o": gpt})

    override = plait.Price.per_million("1", "1")
    runtime = plait.Runtime(entry_points=False, plugins=[P()], prices={"x:o3": override})
    assert runtime.price("x", "gpt-4o-2024-08-06") == gpt
    assert runtime.price("x", "gpt-4o-latest") == gpt
    assert runtime.price("x", "gpt-4o-preview") == gpt
    assert runtime.price("x", "gpt-4o-preview-09-2025") == gpt
    assert runtime.price("x", "o3-pro") is None  # a pricier variant is never priced as o3
    assert runtime.price("x", "o3") == override  # the user's table wins


def test_provider_settings_never_show_in_a_repr() -> None:
    env = plait.ProviderEnv("openai", {"api_key": "sk-very-secret"}, http=lambda: None)
    assert "sk-very-secret" not in repr(env)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"limits": {"openai": plait.Limits(concurrency=2), "openai:gpt-4o": 3}}, TypeError,
     r"Runtime\(limits=...\)\['openai:gpt-4o'\] must be a plait.Limits, got int"),
    ({"settings": {"vllm": "my-lab-gpu-passphrase-2026"}}, TypeError,
     r"Runtime\(settings=...\)\['vllm'\] must be a mapping of settings, got str"),
    ({"settings": ["openai"]}, TypeError, r"Runtime\(settings=...\) must be a mapping"),
    ({"prices": {"openai:gpt-4o": "0.15"}}, TypeError, r"\['openai:gpt-4o'\] must be a plait"),
    ({"prices": {"gpt-4o": plait.Price.per_million("1", "2")}}, ValueError,
     "model must be '<provider>:<model>'"),
    ({"tracers": "otel"}, TypeError, r"Runtime\(tracers=...\) must be a list of names"),
    ({"transport": object()}, TypeError, "must be an httpx.AsyncBaseTransport"),
    ({"model_override": "gpt-4o"}, ValueError, "model must be '<provider>:<model>'"),
])
def test_bad_settings_fail_when_the_runtime_is_built(kwargs: dict[str, Any], error: type,
                                                     message: str) -> None:
    with pytest.raises(error, match=message) as info:
        plait.Runtime(entry_points=False, **kwargs)
    assert "passphrase" not in str(info.value)  # a setting's value is never echoed


def test_bad_limits_fail_when_they_are_built() -> None:
    with pytest.raises(ValueError, match=r"Limits\.concurrency must be an int >= 1"):
        plait.Runtime(entry_points=False, limits={"openai": plait.Limits(concurrency=0)})


REGISTRATION_HOOKS = ["plait_register_providers", "plait_register_aggregators",
                      "plait_register_validators", "plait_register_tracers",
                      "plait_register_commands", "plait_register_converter_hooks"]


def _raising(hook: str) -> str:
    return f"""
import plait

@plait.hookimpl
def plait_register_validators(register):
    register("fine", lambda value: True)  # registered before it raises: must not stay

@plait.hookimpl
def {hook}(register):
    raise RuntimeError("boom")
"""


@pytest.mark.parametrize("hook", REGISTRATION_HOOKS)
async def test_a_plugin_whose_registration_raises_is_set_aside(
        hook: str, tmp_path: pathlib.Path, clean_env: pytest.MonkeyPatch) -> None:
    name = f"boom{hook.removeprefix('plait_register_')}"  # a module of its own per case
    _install_fake_distribution(tmp_path, clean_env, name, _raising(hook))
    _install_fake_distribution(tmp_path, clean_env, "good", GOOD)
    clean_env.setenv("PLAIT_LOAD_PLUGINS", f"plait-{name}-test,plait-good-test")
    runtime = plait.Runtime()
    with pytest.warns(plait.PluginWarning, match=f"'{name}'.*failed in {hook}.*RuntimeError"):
        reply = await plait.Agent("goodecho:x").ask("still works", runtime=runtime)
    assert reply.text == "still works"  # every other plugin keeps working
    assert "fine" not in runtime.registry.validators  # nothing of the broken plugin stays
    [broken] = [i for i in runtime.plugin_infos() if i.error]
    assert (broken.name, broken.distribution) == (name, f"plait-{name}-test")
    assert broken.error == f"{hook} raised RuntimeError: boom"


@pytest.mark.parametrize("hook", REGISTRATION_HOOKS)
def test_strict_plugins_makes_a_raising_registration_fatal(
        hook: str, tmp_path: pathlib.Path, clean_env: pytest.MonkeyPatch) -> None:
    name = f"strict{hook.removeprefix('plait_register_')}"
    _install_fake_distribution(tmp_path, clean_env, name, _raising(hook))
    clean_env.setenv("PLAIT_LOAD_PLUGINS", f"plait-{name}-test")
    clean_env.setenv("PLAIT_STRICT_PLUGINS", "1")
    with pytest.raises(plait.PluginError, match=f"'{name}'.*failed in {hook}"):
        _ = plait.Runtime().registry


def test_the_applications_own_plugin_that_raises_is_a_plugin_error() -> None:
    class Mine:
        @plait.hookimpl
        def plait_register_providers(self, register: Any) -> None:
            raise RuntimeError("my bug")

    runtime = plait.Runtime(entry_points=False, plugins=[Mine()])
    with pytest.raises(plait.PluginError, match=r"failed in plait_register_providers.*my bug"):
        _ = runtime.registry
