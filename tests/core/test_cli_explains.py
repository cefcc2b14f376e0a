"""The CLI explains: declared input names, what a module holds, `plait plugins` at any width,
money as money."""

from __future__ import annotations

import pathlib
import sys
import uuid
from decimal import Decimal

import plait
import pytest
from click.testing import CliRunner, Result
from plait._cli import cli
from plait._money import format_usd

FLOWS = """
from typing import Literal

import plait


@plait.step
async def greet(ctx) -> str:
    return f"{ctx.input('text')} ({ctx.input('lang')})"


greeting = plait.Pipeline("greeting", steps={"greet": greet},
                          inputs={"text": str, "lang": Literal["en", "de"]})
"""


@pytest.fixture
def flows(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of pipelines in the current directory; returns its (unique) name."""
    for var in ("PLAIT_LOAD_PLUGINS", "PLAIT_DISABLE_PLUGIN_AUTOLOAD", "PLAIT_STEP_LOG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-testing")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(cli, "_plugin_commands", None)
    name = f"flows_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(FLOWS)
    monkeypatch.chdir(tmp_path)
    return name


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="plait")


def test_run_with_the_declared_inputs(flows: str) -> None:
    result = invoke("run", f"{flows}:greeting", "-i", "text=hi", "-i", "lang=en")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hi (en)\n"


def test_run_refuses_an_undeclared_input_name_before_running(flows: str) -> None:
    result = invoke("run", f"{flows}:greeting", "-i", "text=hi", "-i", "lnag=en")
    assert result.exit_code == 2, result.output
    assert ("Error: Invalid value for '--input': pipeline 'greeting' takes no input 'lnag' "
            "(inputs: text, lang); did you mean 'lang'?") in result.stderr


def test_run_names_a_missing_declared_input(flows: str) -> None:
    result = invoke("run", f"{flows}:greeting", "-i", "text=hi")
    assert result.exit_code == 1
    assert "Error: missing input 'lang' (inputs given: text)" in result.stderr


def test_an_unknown_object_lists_the_modules_pipelines_and_steps(flows: str) -> None:
    result = invoke("run", f"{flows}:greetin")
    assert result.exit_code == 2
    assert (f"Error: module '{flows}' has no attribute 'greetin'; pipelines: greeting; "
            "steps: greet; did you mean 'greeting'?") in result.stderr


# -- plait plugins at any width --------------------------------------------------------------

# -- money ---------------------------------------------------------------------------------


def test_money_prints_as_money() -> None:
    error = plait.BudgetExceeded(Decimal(0), Decimal("2E-7"), plait.usd("1E-7"))
    assert str(error).startswith("run budget of $0.0000001 exceeded: $0 spent, $0.0000002 "
                                 "reserved")
    shown = [format_usd(Decimal(a)) for a in ("0", "2", "2.00", "0.1", "1.5", "0.0000140", "3E-8")]
    assert shown == ["$0", "$2", "$2", "$0.10", "$1.50", "$0.000014", "$0.00000003"]


# -- plait run --traceback / -v --------------------------------------------------------------

BROKEN = """
import plait


def helper():
    return {}["missing key"]


@plait.step
async def boom(ctx):
    return helper()


pipe = plait.Pipeline("bad", steps={"boom": boom})
"""


@pytest.mark.parametrize("flag", ["--traceback", "-v"])
def test_run_traceback_shows_where_the_step_broke(flows: str, tmp_path: pathlib.Path,
                                                  flag: str) -> None:
    (tmp_path / f"{flows}_bad.py").write_text(BROKEN)
    result = invoke("run", f"{flows}_bad:pipe", flag)
    assert result.exit_code == 1
    err = result.stderr
    assert err.index("Traceback (most recent call last)") < err.index("Error: step 'boom'")
    assert f'{flows}_bad.py", line 6, in helper' in err
    assert "KeyError: 'missing key'" in err
    assert "StepFailed" not in err  # the cause, not plait's wrapping of it


def test_run_without_traceback_prints_one_line(flows: str, tmp_path: pathlib.Path) -> None:
    (tmp_path / f"{flows}_bad.py").write_text(BROKEN)
    result = invoke("run", f"{flows}_bad:pipe")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert "Error: step 'boom' failed after 1 attempt: KeyError: 'missing key'" in result.stderr


# -- --set PROVIDER.KEY=VALUE ------------------------------------------------------------------

ECHO = """
import plait

agent = plait.Agent(model="fake:echo")
pipe = plait.Pipeline("asks", steps={"ask": agent.as_step("{text}")})
"""


def test_run_set_gives_a_provider_its_settings(flows: str, tmp_path: pathlib.Path) -> None:
    (tmp_path / f"{flows}_echo.py").write_text(ECHO)
    plain = invoke("run", f"{flows}_echo:pipe", "-i", "text=hi")
    assert plain.stdout == "hi\n"  # the fake echoes
    result = invoke("run", f"{flows}_echo:pipe", "-i", "text=hi",
                    "--set", 'fake.replies=["canned"]', "--set", "fake.latency=0")
    assert result.exit_code == 0, result.output
    assert result.stdout == "canned\n"


@pytest.mark.parametrize(("pair", "message"), [
    ("fake", "'fake' is not PROVIDER.KEY=VALUE"),
    ("fake.replies", "'fake.replies' is not PROVIDER.KEY=VALUE"),
    (".x=1", "'.x=1' is not PROVIDER.KEY=VALUE"),
    ("fkae.latency=0", "unknown provider 'fkae' (installed: fake); did you mean 'fake'?"),
])
def test_run_set_mistakes_are_usage_errors(flows: str, tmp_path: pathlib.Path, pair: str,
                                           message: str) -> None:
    (tmp_path / f"{flows}_echo.py").write_text(ECHO)
    result = invoke("run", f"{flows}_echo:pipe", "-i", "text=hi", "--set", pair)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--set': {message}" in result.stderr


def test_parse_settings_reads_json_values_and_keeps_text() -> None:
    assert plait.parse_settings(["llamacpp.base_url=http://127.0.0.1:8081/v1",
                                 "llamacpp.timeout=30", "openai.organization=org-1",
                                 "fake.replies=[\"a\"]"]) == {
        "llamacpp": {"base_url": "http://127.0.0.1:8081/v1", "timeout": 30},
        "openai": {"organization": "org-1"}, "fake": {"replies": ["a"]}}


def test_demo_set_reaches_the_demos_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait._demos import _session

    seen: list[dict[str, object]] = []
    real = _session.cli_runtime

    def spy(**kwargs: object) -> plait.Runtime:
        seen.append(dict(kwargs["settings"]))  # type: ignore[call-overload]  # a mapping
        return real(**kwargs)  # type: ignore[arg-type]  # the same keywords

    monkeypatch.setattr(_session, "cli_runtime", spy)
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-testing")
    result = invoke("demo", "support", "--model", "fake:demo", "--set", "fake.latency=0")
    assert result.exit_code == 0, result.output
    assert seen[0]["fake"]["latency"] == 0  # type: ignore[index]  # a mapping


# -- plait --help suggests only what can run -------------------------------------------------


def test_help_suggests_no_demo_without_a_model_provider(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With one installed, the help suggests it (tests/plugins/openai, tests/plugins/local)."""
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "")
    monkeypatch.setattr(cli, "_plugin_commands", None)
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    assert "No model provider is installed" in result.output
    assert "plait demo faq" not in result.output


def test_plugins_unknown_hook_says_did_you_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-testing")
    monkeypatch.setattr(cli, "_plugin_commands", None)
    result = invoke("plugins", "--hook", "wrap_stp")
    assert result.exit_code == 2
    assert "did you mean 'plait_wrap_step'?" in result.stderr
