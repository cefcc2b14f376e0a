"""``llm plait run``: added to llm's CLI through its entry point, run with click's CliRunner."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import llm.cli
import pytest
from click.testing import CliRunner

MODULE = '''
import plait

writer = plait.Agent("openai:gpt-4o-mini", system="Write it.")

@plait.step
async def shout(ctx):
    return ctx.input("text").upper()

@plait.step
async def count(ctx):
    return {"words": len(ctx.input("text").split())}

greet = plait.Pipeline("greet", steps={"write": writer.as_step("Greet {name}")})
number = 42
'''


@pytest.fixture
def flows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "flows.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "flows", raising=False)
    yield tmp_path
    sys.modules.pop("flows", None)


def invoke(*args: str):
    return CliRunner().invoke(llm.cli.cli, ["plait", "run", *args])


def test_the_entry_point_adds_the_command_to_llm():
    assert "run" in llm.cli.cli.commands["plait"].commands


def test_a_step_runs_and_prints_its_output(flows):
    result = invoke("flows:shout", "-i", "text=hello")
    assert result.exit_code == 0, result.output
    assert result.output == "HELLO\n"


def test_a_structured_output_prints_as_json(flows):
    result = invoke("flows:count", "-i", "text=one two three")
    assert result.exit_code == 0, result.output
    assert result.output == '{\n  "words": 3\n}\n'


def test_model_runs_every_agent_on_an_llm_model(flows, fake_echo):
    fake_echo.replies.append("Bonjour, Ada.")
    result = invoke("flows:greet", "-i", "name=Ada", "-m", "fake-echo")
    assert result.exit_code == 0, result.output
    assert result.output == "Bonjour, Ada.\n"
    assert fake_echo.prompts[0].prompt == "Greet Ada"
    assert fake_echo.prompts[0].system == "Write it."


def test_a_failed_run_is_an_llm_error(flows, fake_echo):
    result = invoke("flows:greet", "-i", "name=Ada", "-m", "no-such-model")
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert "no-such-model" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["flows:number"], "is an int, not a plait.Pipeline or plait.Step"),
    (["flows"], "is not MODULE:OBJECT"),
    (["flows:shout", "-i", "text"], "'text' is not KEY=VALUE"),
    (["nowhere:thing"], "no module named 'nowhere'"),
])
def test_command_line_mistakes_are_usage_errors(flows, args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
