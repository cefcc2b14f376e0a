"""plait's CLI with plait-openai installed: `plait plugins` at any terminal width (its
registrations are the longest list there is) and `plait --help` suggesting the demo."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner, Result
from plait._cli import cli


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="plait")


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


def test_help_suggests_the_demo_on_an_installed_provider(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-openai")
    monkeypatch.setattr(cli, "_plugin_commands", None)
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    assert "plait demo faq --model PROVIDER:MODEL" in result.output
    assert "SmolLM2" not in result.output
