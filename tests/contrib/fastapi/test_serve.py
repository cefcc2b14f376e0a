"""``plait serve``: registered through plait_register_commands, served with uvicorn.

uvicorn.run is replaced by a recorder, and the app it was handed is then driven with
FastAPI's TestClient: what would have been served is exactly what is tested.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import fastapi
import plait
import plait_fastapi.plugin
import pytest
import uvicorn
from click.testing import CliRunner
from fastapi.testclient import TestClient

MODULE = '''
import fastapi
import plait

@plait.step
async def shout(ctx):
    return ctx.input("text").upper()

@plait.step
async def whisper(ctx):
    return ctx.input("text").lower()

loud = plait.Pipeline("loud", steps={"shout": shout})
pipelines = {"loud": loud, "quiet": plait.Pipeline("quiet", steps={"whisper": whisper})}
app = fastapi.FastAPI()
number = 42

@app.get("/hello")
async def hello():
    return "hello"
'''


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    """Run the command in a directory holding ``flows.py``; record what uvicorn got."""
    (tmp_path / "flows.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "flows", raising=False)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    yield calls
    sys.modules.pop("flows", None)


def serve(*args: str) -> Any:
    return CliRunner().invoke(plait_fastapi.plugin.serve, list(args))


def test_the_plugin_registers_the_serve_command() -> None:
    runtime = plait.Runtime(entry_points=False, plugins=[plait_fastapi.plugin])
    [info] = [i for i in runtime.plugin_infos() if i.registered.get("command")]
    assert info.registered["command"] == ("serve",)
    assert "plait_register_commands" in info.hooks
    assert isinstance(plait_fastapi.plugin.serve, click.Command)


def test_serving_a_mapping_of_pipelines(served: list[dict[str, Any]]) -> None:
    outcome = serve("flows:pipelines", "--port", "9001")
    assert outcome.exit_code == 0, outcome.output
    [call] = served
    assert (call["host"], call["port"]) == ("127.0.0.1", 9001)
    with TestClient(call["app"]) as client:
        loud = client.post("/loud/runs", json={"text": "Hi"}).json()
        quiet = client.post("/quiet/runs", json={"text": "Hi"}).json()
    assert (loud["output"], quiet["output"]) == ("HI", "hi")


def test_serving_one_pipeline_under_its_name(served: list[dict[str, Any]]) -> None:
    assert serve("flows:loud", "--host", "0.0.0.0").exit_code == 0
    [call] = served
    assert call["host"] == "0.0.0.0"
    with TestClient(call["app"]) as client:
        assert client.post("/loud/runs", json={"text": "a"}).json()["output"] == "A"
        assert client.post("/quiet/runs", json={}).status_code == 404


def test_an_app_is_served_as_it_is(served: list[dict[str, Any]]) -> None:
    assert serve("flows:app").exit_code == 0
    app = served[0]["app"]
    assert isinstance(app, fastapi.FastAPI)
    assert TestClient(app).get("/hello").json() == "hello"


def test_model_sets_the_runtime_model_override(served: list[dict[str, Any]]) -> None:
    assert serve("flows:loud", "--model", "fake:other").exit_code == 0
    app = served[0]["app"]
    with TestClient(app) as client:
        client.post("/loud/runs", json={"text": "a"})
        runtime = client.app_state["plait_runtime"]
    assert runtime.model_override == "fake:other"


@pytest.mark.parametrize(("args", "message"), [
    (["flows"], "is not MODULE:OBJECT"),
    (["nowhere:thing"], "no module named 'nowhere'"),
    (["flows:missing"], "module 'flows' has no attribute 'missing'"),
    (["flows:number"], "expected a plait.Pipeline, a mapping of name -> Pipeline or an ASGI app"),
    (["flows:app", "--model", "fake:x"], "--model applies to pipelines"),
    (["flows:loud", "--model", "nocolon"], "model must be '<provider>:<model>'"),
])
def test_mistakes_are_usage_errors(served: list[dict[str, Any]], args: list[str],
                                   message: str) -> None:
    outcome = serve(*args)
    assert outcome.exit_code == 2
    assert message in outcome.output
    assert served == []


def test_the_plugin_module_imports_neither_fastapi_nor_uvicorn() -> None:
    # Registration must stay light: plait imports this module whenever it loads plugins.
    code = ("import sys, plait_fastapi.plugin, plait_fastapi; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_plait_cli_lists_serve() -> None:
    plait_cli = Path(sys.executable).with_name("plait")
    out = subprocess.run([str(plait_cli), "serve", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "Usage: plait serve [OPTIONS] MODULE:OBJECT" in out


def test_set_gives_the_served_runtime_provider_settings(served: list[dict[str, Any]]) -> None:
    outcome = serve("flows:loud", "--set", "fake.latency=0", "--set", "openai.base_url=http://x/v1")
    assert outcome.exit_code == 0, outcome.output
    with TestClient(served[0]["app"]) as client:
        runtime = client.app_state["plait_runtime"]
    assert runtime.settings == {"fake": {"latency": 0}, "openai": {"base_url": "http://x/v1"}}
    assert serve("flows:app", "--set", "fake.latency=0").exit_code == 2  # an app of your own
