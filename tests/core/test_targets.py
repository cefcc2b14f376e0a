"""plait.load_target: the MODULE:OBJECT loader shared by `plait run` and plugin commands."""

from __future__ import annotations

import pathlib

import click
import plait
import pytest


@pytest.fixture
def flows(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "flows_for_targets.py").write_text(
        "import plait\n"
        "@plait.step\n"
        "def shout(ctx):\n"
        "    return ctx.input('text').upper()\n"
        "pipe = plait.Pipeline('p', steps={'s': shout})\n"
        "class Box:\n"
        "    inner = pipe\n"
        "number = 3\n")
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("flows")
def test_loads_pipelines_steps_and_dotted_objects() -> None:
    assert plait.load_target("flows_for_targets:pipe").name == "p"
    assert plait.load_target("flows_for_targets:Box.inner").name == "p"
    wrapped = plait.load_target("flows_for_targets:shout")
    assert isinstance(wrapped, plait.Pipeline)
    assert list(wrapped.steps) == ["shout"]
    assert plait.run_sync(wrapped, {"text": "hi"}).output == "HI"
    assert plait.load_target("flows_for_targets:number", as_pipeline=False) == 3


@pytest.mark.usefixtures("flows")
@pytest.mark.parametrize(("spec", "error", "message"), [
    ("flows_for_targets", click.BadParameter, "is not MODULE:OBJECT"),
    ("nowhere_at_all:x", click.UsageError, "no module named 'nowhere_at_all'"),
    ("flows_for_targets:missing", click.UsageError, "has no attribute 'missing'"),
    ("flows_for_targets:number", click.UsageError, "is an int, not a plait.Pipeline"),
])
def test_mistakes_are_one_line_usage_errors(spec: str, error: type[Exception],
                                            message: str) -> None:
    with pytest.raises(error) as info:
        plait.load_target(spec)
    assert message in str(info.value.format_message())  # type: ignore[attr-defined]
