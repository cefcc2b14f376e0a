"""The CLI explains: declared input names, what a module holds, `plait plugins` at any width,
money as money."""

from __future__ import annotations

import pathlib
import re
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

# what plait-openai and plait-testing register: the longest registration list there is
REGISTERED = ["provider: fake", "groq", "llamacpp", "lmstudio", "ollama", "openai",
              "openrouter", "together", "vllm"]


@pytest.fixture
def listing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-openai,plait-testing")
    monkeypatch.delenv("PLAIT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setattr(cli, "_plugin_commands", None)


@pytest.mark.parametrize("width", [60, 80, 200])
def test_plugins_fits_the_terminal_width(listing: None, monkeypatch: pytest.MonkeyPatch,
                                         width: int) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich writes as to a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # bold stays under NO_COLOR
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    words = text.split()
    for whole in ["openai", "plait-openai", "register_providers", "testing", *REGISTERED]:
        assert whole.split()[-1] in [w.strip("│,;") for w in words], whole  # never cut
    assert ("┃ Plugin" in text) == (width >= 80)  # narrower: a block per plugin


def test_plugins_prints_plain_rows_off_a_terminal(listing: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")  # no terminal: the width does not matter
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[0] for row in rows] == ["openai", "testing"]
    assert rows[0][2] == "register_providers"
    assert rows[0][3] == ("provider: groq, llamacpp, lmstudio, ollama, openai, openrouter, "
                          "together, vllm")
    assert "│" not in result.stdout


# -- money ---------------------------------------------------------------------------------


def test_money_prints_as_money() -> None:
    error = plait.BudgetExceeded(Decimal(0), Decimal("2E-7"), plait.usd("1E-7"))
    assert str(error).startswith("run budget of $0.0000001 exceeded: $0 spent, $0.0000002 "
                                 "reserved")
    shown = [format_usd(Decimal(a)) for a in ("0", "2", "2.00", "0.1", "1.5", "0.0000140", "3E-8")]
    assert shown == ["$0", "$2", "$2", "$0.10", "$1.50", "$0.000014", "$0.00000003"]
