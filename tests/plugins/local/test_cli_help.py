"""plait's CLI with plait-local installed: `plait --help` offers the in-process demo."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from plait._cli import cli


def test_help_suggests_the_demo_on_the_in_process_model(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-local")
    monkeypatch.setattr(cli, "_plugin_commands", None)
    result = CliRunner().invoke(cli, ["--help"], prog_name="plait")
    assert result.exit_code == 0, result.output
    assert "Try it on the in-process SmolLM2 model" in result.output
    assert "No model provider" not in result.output
