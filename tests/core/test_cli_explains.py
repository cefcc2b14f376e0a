"""`plait run` explains: declared input names checked, an unknown object lists what can run."""

from __future__ import annotations

import pathlib
import sys
import uuid

import pytest
from click.testing import CliRunner, Result
from plait._cli import cli

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
