"""plait.load_target and plait.parse_inputs: what `plait run` and plugin commands run, and on
what inputs."""

from __future__ import annotations

import io
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


def test_inputs_are_the_json_object_then_each_pair_over_it() -> None:
    document = io.StringIO('{"text": "from json", "n": 3}')
    inputs = plait.parse_inputs(["text=from pair", " lang =en=GB", "empty="], document)
    assert inputs == {"text": "from pair", "n": 3, "lang": "en=GB", "empty": ""}
    assert plait.parse_inputs(()) == {}


@pytest.mark.parametrize(("pairs", "document", "message"), [
    (["text"], None, "Invalid value for '--input': 'text' is not KEY=VALUE"),
    (["=x"], None, "Invalid value for '--input': '=x' is not KEY=VALUE"),
    ([], "[1, 2]", "Invalid value for '--input-json': -: expected a JSON object of input "
                   "name -> value, got list"),
    ([], "{text", "Invalid value for '--input-json': -: not valid JSON"),
])
def test_malformed_inputs_are_bad_parameters(pairs: list[str], document: str | None,
                                             message: str) -> None:
    with pytest.raises(click.BadParameter) as info:
        plait.parse_inputs(pairs, None if document is None else io.StringIO(document))
    assert info.value.format_message().startswith(message)
