"""The plait command: plugin commands loaded lazily, `plait plugins`, `plait run` and its errors."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable

import plait
import pytest
from click.testing import CliRunner, Result
from plait._cli import cli

PLUGIN = """
import click
import plait


@click.command("{command}")
@click.option("--name", default="world")
def hello(name):
    \"\"\"Say hello (a plugin command).\"\"\"
    click.echo(f"hello {{name}}")


@plait.hookimpl
def plait_register_commands(register):
    register(hello)


@plait.hookimpl
def plait_register_validators(register):
    register("{command}_nonempty", lambda value: bool(value))
"""

FLOWS = """
import plait

echo = plait.Agent(model="fake:echo")


@plait.step
async def shout(ctx):
    return ctx.input("text").upper()


@plait.step
async def ask(ctx):
    return (await ctx.ask(echo, "echo: " + ctx.dep("shout"))).output


@plait.step
async def boom(ctx):
    raise ValueError("the step broke")


@plait.step
async def structured(ctx):
    return {"text": ctx.input("text"), "words": len(ctx.input("text").split())}


@plait.step
async def halt(ctx):
    return plait.Stop("nothing to do", {"seen": ctx.input("text")})


pipe = plait.Pipeline("flow", steps={"shout": shout, "ask": ask}, deps={"ask": ["shout"]})
failing = plait.Pipeline("failing", steps={"shout": shout, "boom": boom, "ask": ask},
                         deps={"ask": ["shout"]}, output="ask")
numbers = [1, 2, 3]
streamed = plait.Pipeline("streamed", steps={"shout": shout,
                                              "say": echo.as_step("echo: {shout}", stream=True)},
                          deps={"say": ["shout"]})


@plait.step
async def narrate(ctx):
    async with ctx.stream(echo, "once upon a time") as stream:
        async for _ in stream:
            pass
    return len(stream.reply.text)


narrated = plait.Pipeline("narrated", steps={"narrate": narrate})
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugin switches off, sys.path restored, and the CLI's plugin-command cache reset."""
    for var in ("PLAIT_LOAD_PLUGINS", "PLAIT_DISABLE_PLUGIN_AUTOLOAD", "PLAIT_STRICT_PLUGINS",
                "PLAIT_TRACE_HOOKS", "PLAIT_STEP_LOG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(cli, "_plugin_commands", None)


@pytest.fixture
def install(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``install(source)``: a real distribution on sys.path whose entry point (group
    ``plait``) is a module with ``source``; returns the plugin's (and module's) name."""

    def make(source: str, *, entry: str | None = None) -> str:
        name = f"clitest_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{name}-0.7.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.7\n")
        (info / "entry_points.txt").write_text(f"[plait]\n{name} = {entry or name}\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        return name

    return make


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="plait")


def only(monkeypatch: pytest.MonkeyPatch, *distributions: str) -> None:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", ",".join(distributions))


def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich writes as to a terminal (the table; off one, `plait plugins` prints plain rows)."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("NO_COLOR", "1")


def table_rows(text: str) -> dict[str, list[str]]:
    """A rich table's rows by first cell; wrapped lines joined into their row's cells."""
    rows: dict[str, list[str]] = {}
    last: list[str] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells[0]:
            last = rows[cells[0]] = cells
        else:
            for i, cell in enumerate(cells):
                last[i] = f"{last[i]} {cell}".strip()
    return rows


# -- the group -----------------------------------------------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"plait, version {plait.__version__}\n"


def test_help_lists_builtin_and_plugin_commands(install: Callable[..., str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    name = install(PLUGIN.format(command="greet"))
    only(monkeypatch, name)
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:")[1]
    assert [line.split()[0] for line in commands.strip().splitlines()] == [
        "demo", "eval", "graph", "greet", "plugins", "run", "runs"]
    assert "Say hello (a plugin command)." in commands


def test_plugin_command_runs(install: Callable[..., str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    only(monkeypatch, install(PLUGIN.format(command="greet")))
    result = invoke("greet", "--name", "plait")
    assert (result.exit_code, result.output) == (0, "hello plait\n")


def test_builtin_commands_do_not_load_plugins(install: Callable[..., str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    name = install(PLUGIN.format(command="greet"))
    only(monkeypatch, name)
    for args in (["run", "--help"], ["demo", "--help"], ["plugins", "--help"]):
        assert invoke(*args).exit_code == 0
    assert name not in sys.modules


def test_help_loads_the_plugins_but_no_engine() -> None:
    """`plait --help` lists every installed plugin's commands, so it loads the plugins:
    their registration, and the built-in plugin's, import nothing of the engine (the
    start-up benchmark is tests/bench/bench_startup.py)."""
    code = ("import contextlib, io, sys\n"
            "from plait._cli import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out, "
            "contextlib.suppress(SystemExit):\n"
            "    cli(['--help'], prog_name='plait')\n"
            "engine = ('plait._runtime', 'plait._pipeline', 'plait._agent', 'plait._context',"
            " 'plait._calls', 'plait._results', 'httpx', 'cattrs', 'rich')\n"
            "print('Commands:' in out.getvalue(), 'plait._plugins' in sys.modules,"
            " [m for m in engine if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PLAIT_STORE": "off"})
    assert done.stdout.strip() == "True True []", done.stderr


def test_unknown_command_names_the_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    only(monkeypatch)  # no plugins
    result = invoke("frobnicate")
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output


def test_a_plugin_command_cannot_shadow_a_builtin(install: Callable[..., str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    only(monkeypatch, install(PLUGIN.format(command="run")))
    result = invoke("--help")
    assert result.exit_code == 0
    assert ("plait: warning: a plugin command is named 'run' like a built-in command; the "
            "built-in wins") in result.stderr
    assert "Run a pipeline or step" in result.stdout


# -- plait plugins -------------------------------------------------------------------------


@pytest.fixture
def two_plugins(install: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    good = install(PLUGIN.format(command="greet"))
    broken = install("raise ImportError('needs numpy')\n")
    only(monkeypatch, good, broken, "plait-testing")
    return good, broken


def test_plugins_table_shows_registrations_and_broken_plugins(
        two_plugins: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    good, broken = two_plugins
    monkeypatch.setenv("COLUMNS", "200")
    terminal(monkeypatch)
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)
    assert set(rows) == {good, broken, "testing"}
    assert rows[good] == [good, f"{good} 0.7", "register_commands register_validators",
                          "command: greet validator: greet_nonempty"]
    assert rows["testing"] == ["testing", "plait-testing 0.1.0", "register_providers",
                               "provider: fake"]
    assert rows[broken] == [broken, f"{broken} 0.7", "broken",
                            "failed to load: ImportError: needs numpy"]
    assert "1 plugin(s) failed to load and were skipped." in result.output


def test_plugins_table_shows_a_plugin_whose_registration_raised(
        install: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    raising = install("""
        import plait

        @plait.hookimpl
        def plait_register_validators(register):
            raise RuntimeError("boom")
    """)
    only(monkeypatch, raising, "plait-testing")
    monkeypatch.setenv("COLUMNS", "200")
    terminal(monkeypatch)
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    rows = table_rows(result.output)
    assert rows[raising][2:] == [
        "broken", "failed to load: plait_register_validators raised RuntimeError: boom"]
    assert rows["testing"][3] == "provider: fake"  # the others still load


def test_help_reports_a_broken_plugin_in_one_line(two_plugins: tuple[str, str]) -> None:
    _, broken = two_plugins
    result = invoke("--help")
    assert result.exit_code == 0
    assert result.stderr == (f"plait: PluginWarning: plait plugin {broken!r} ({broken} 0.7) "
                             "failed to load and was skipped: ImportError: needs numpy\n")
    assert "greet" in result.stdout


def test_the_command_reports_a_broken_plugin_in_one_line(tmp_path: pathlib.Path) -> None:
    """Through the console script, as a user runs it: one line on stderr, no traceback."""
    (tmp_path / "broken_mod.py").write_text("raise ImportError('needs numpy')\n")
    info = tmp_path / "plait_broken-0.7.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plait-broken\nVersion: 0.7\n")
    (info / "entry_points.txt").write_text("[plait]\nbroken = broken_mod\n")
    (tmp_path / "hello_flow.py").write_text(
        "import plait\n\n@plait.step\ndef hello(ctx):\n    return 'hello'\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PLAIT_LOAD_PLUGINS": "plait-broken"}
    env.pop("PYTHONWARNINGS", None)
    done = subprocess.run([sys.executable, "-c", "from plait._cli import main; main()", "run",
                           "hello_flow:hello"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "hello\n")
    assert done.stderr.splitlines()[0] == (
        "plait: PluginWarning: plait plugin 'broken' (plait-broken 0.7) failed to load and "
        "was skipped: ImportError: needs numpy")
    assert "Traceback" not in done.stderr


def test_plugins_json(two_plugins: tuple[str, str]) -> None:
    good, broken = two_plugins
    result = invoke("plugins", "--json")
    assert result.exit_code == 0, result.output
    listed = {p["name"]: p for p in json.loads(result.output)}
    assert set(listed) == {good, broken, "testing"}
    assert listed[good] == {
        "name": good, "distribution": good, "version": "0.7",
        "hooks": ["plait_register_commands", "plait_register_validators"],
        "registered": {"command": ["greet"], "validator": ["greet_nonempty"]},
        "error": None,
    }
    assert listed[broken]["error"] == "ImportError: needs numpy"
    assert listed[broken]["distribution"] == broken


def test_plugins_all_includes_the_builtins(two_plugins: tuple[str, str]) -> None:
    listed = {p["name"]: p for p in json.loads(invoke("plugins", "--all", "--json").output)}
    assert "plait_run_step" in listed["plait.builtins"]["hooks"]
    assert listed["plait.builtins"]["registered"]["tracer"] == ["progress", "steplog"]


@pytest.mark.parametrize(("hook", "expected"), [
    ("register_commands", ["good"]),
    ("plait_register_providers", ["testing"]),
    ("plait_wrap_model_call", []),
])
def test_plugins_hook_filter(two_plugins: tuple[str, str], hook: str,
                             expected: list[str]) -> None:
    good, _ = two_plugins
    result = invoke("plugins", "--hook", hook, "--json")
    assert result.exit_code == 0, result.output
    names = [p["name"] for p in json.loads(result.output)]
    assert names == [good if n == "good" else n for n in expected]


def test_plugins_hook_filter_with_nothing_to_show(two_plugins: tuple[str, str]) -> None:
    result = invoke("plugins", "--hook", "wrap_model_call")
    assert (result.exit_code, result.output) == (
        0, "No plugins implementing plait_wrap_model_call installed.\n")


def test_plugins_unknown_hook(two_plugins: tuple[str, str]) -> None:
    result = invoke("plugins", "--hook", "register_everything")
    assert result.exit_code == 2
    assert "no hook named 'register_everything'; hooks: plait_register_providers," in \
        result.output


# -- plait run -----------------------------------------------------------------------------


@pytest.fixture
def flows(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of pipelines in the current directory; returns its (unique) name."""
    name = f"flows_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(FLOWS)
    monkeypatch.chdir(tmp_path)
    only(monkeypatch, "plait-testing")
    return name


def test_run_prints_output_and_step_table(flows: str) -> None:
    result = invoke("run", f"{flows}:pipe", "--input", "text=hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "echo: HI\n"
    rows = table_rows(result.stderr)
    assert [row[:3] + row[4:] for row in rows.values()] == [
        ["shout", "ok", "1", "-", "0/0", "$0"],
        ["ask", "ok", "1", "fake:echo", "2/2", "unknown"],  # the fake model has no price: not $0
    ]
    assert all(row[3].endswith(" s") for row in rows.values())
    assert "1 model call, 2 tokens in, 2 out, cost unknown (1 unpriced)" in result.stderr


def test_run_stream_prints_the_output_steps_text_as_it_arrives(flows: str) -> None:
    result = invoke("run", f"{flows}:streamed", "--input", "text=hi there", "--stream")
    assert result.exit_code == 0, result.output
    assert result.stdout == "echo: HI THERE\n"  # streamed in pieces, not printed again
    assert list(table_rows(result.stderr)) == ["shout", "say"]


def test_run_stream_prints_the_text_then_an_output_that_differs(flows: str) -> None:
    assert invoke("run", f"{flows}:narrated").stdout == "16\n"
    result = invoke("run", f"{flows}:narrated", "--stream")
    assert result.exit_code == 0, result.output
    assert result.stdout == "once upon a time\n16\n"


def test_run_stream_of_an_output_that_does_not_stream_prints_it_at_the_end(
        flows: str) -> None:
    result = invoke("run", f"{flows}:pipe", "--input", "text=hi", "--stream")
    assert result.exit_code == 0, result.output
    assert result.stdout == "echo: HI\n"


def test_run_json(flows: str) -> None:
    result = invoke("run", f"{flows}:pipe", "-i", "text=hi", "--json")
    assert result.exit_code == 0, result.output
    back = plait.PipelineResult.from_json(result.stdout)
    assert back.output == "echo: HI"
    assert back.steps["ask"].status == "ok"
    assert back.steps["ask"].models == {"fake:echo": back.steps["ask"].usage}
    assert back.usage.calls == 1
    usage = json.loads(result.stdout)["usage"]  # an unpriced call: the cost is unknown
    assert (usage["cost"], usage["priced_cost"], usage["unpriced"]) == (None, "0", 1)
    assert not back.usage.cost_known


def test_run_wraps_a_bare_step(flows: str) -> None:
    result = invoke("run", f"{flows}:shout", "-i", "text=quiet", "--json")
    assert result.exit_code == 0, result.output
    back = plait.PipelineResult.from_json(result.stdout)
    assert (back.pipeline, back.output, list(back.steps)) == ("shout", "QUIET", ["shout"])


def test_run_inputs_from_json_file_with_input_overriding(flows: str,
                                                         tmp_path: pathlib.Path) -> None:
    (tmp_path / "in.json").write_text('{"text": "from file", "unused": [1, 2]}')
    assert invoke("run", f"{flows}:shout", "--input-json", "in.json").stdout == "FROM FILE\n"
    result = invoke("run", f"{flows}:shout", "--input-json", "in.json", "-i", "text=flag")
    assert result.stdout == "FLAG\n"


def test_run_model_override_reaches_every_agent(flows: str) -> None:
    result = invoke("run", f"{flows}:pipe", "-i", "text=hi", "--model", "fake:priced", "--json")
    assert result.exit_code == 0, result.output
    back = plait.PipelineResult.from_json(result.stdout)
    # fake:priced costs $1/$2 per million tokens; the agent's own fake:echo has no price
    assert back.usage.cost == plait.Price.per_million("1", "2").cost(plait.TokenCount(2, 2))


def test_run_prints_structured_output_as_json(flows: str) -> None:
    result = invoke("run", f"{flows}:structured", "-i", "text=two words")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"text": "two words", "words": 2}


def test_run_stopped_early_says_why(flows: str) -> None:
    result = invoke("run", f"{flows}:halt", "-i", "text=x")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "stopped early: nothing to do" in result.stderr
    assert table_rows(result.stderr)["halt"][1] == "stopped"


def test_run_step_failure_names_the_step_and_shows_the_partial_table(flows: str) -> None:
    result = invoke("run", f"{flows}:failing", "-i", "text=hi")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert ("Error: step 'boom' failed after 1 attempt: ValueError: the step broke"
            in result.stderr)
    statuses = {sid: row[1] for sid, row in table_rows(result.stderr).items()}
    assert statuses == {"shout": "ok", "boom": "failed", "ask": "ok"}


def test_run_step_failure_json_keeps_the_partial_result(flows: str) -> None:
    result = invoke("run", f"{flows}:failing", "-i", "text=hi", "--json")
    assert result.exit_code == 1
    partial = plait.PipelineResult.from_json(result.stdout)
    assert partial.outputs == {"shout": "HI", "ask": "echo: HI"}
    assert "step 'boom' failed" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["nosuchmodule_zz:pipe"], "no module named 'nosuchmodule_zz'"),
    (["{flows}:nothing"], "module '{flows}' has no attribute 'nothing'"),
    (["{flows}:numbers"], "{flows}:numbers is a list, not a plait.Pipeline or plait.Step"),
    (["{flows}"], "Invalid value for 'MODULE:OBJECT': '{flows}' is not MODULE:OBJECT"),
    (["{flows}:pipe", "--input", "text"], "Invalid value for '--input': 'text' is not KEY=VALUE"),
    (["{flows}:pipe", "--input", "=x"], "Invalid value for '--input': '=x' is not KEY=VALUE"),
    (["{flows}:pipe", "--input-json", "missing.json"],
     "Invalid value for '--input-json': 'missing.json': No such file or directory"),
    (["{flows}:pipe", "--input-json", "bad.json"],
     "Invalid value for '--input-json': bad.json: not valid JSON"),
    (["{flows}:pipe", "--input-json", "list.json"],
     "Invalid value for '--input-json': list.json: expected a JSON object of input name -> "
     "value, got list"),
    (["{flows}:pipe", "--model", "smollm2"],
     "Invalid value for '--model': model must be '<provider>:<model>'"),
    (["{flows}:pipe", "--model", "openai:gpt-4o"],
     "Invalid value for '--model': unknown provider 'openai' (installed: fake); install "
     "plait-openai to add it"),
])
def test_run_usage_errors(flows: str, tmp_path: pathlib.Path, args: list[str],
                          message: str) -> None:
    (tmp_path / "bad.json").write_text("{text: 1}")
    (tmp_path / "list.json").write_text("[1]")
    result = invoke("run", *[a.format(flows=flows) for a in args])
    assert result.exit_code == 2, result.output
    assert f"Error: {message.format(flows=flows)}" in result.stderr


def test_run_import_error_inside_the_module(tmp_path: pathlib.Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"broken_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("import not_installed_anywhere\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("run", f"{name}:pipe")
    assert result.exit_code == 2
    assert (f"Error: importing '{name}' failed: ModuleNotFoundError: No module named "
            "'not_installed_anywhere'") in result.stderr


# -- docs/cli.md -----------------------------------------------------------------------------

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _help_blocks() -> list[tuple[str, str]]:
    blocks = re.findall(r"```console\n\$ (plait[^\n]*--help)\n(.*?)```", DOCS.read_text(),
                        re.DOTALL)
    assert len(blocks) == 5, ("docs/cli.md should show the help of plait, plugins, run, eval "
                              "and demo")
    return blocks


@pytest.mark.parametrize(("command", "shown"), _help_blocks())
def test_docs_show_the_current_help(command: str, shown: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    only(monkeypatch)  # the docs list the built-in commands only
    # as an 80-column terminal shows it (click keeps two columns free; CliRunner would not)
    result = CliRunner().invoke(cli, command.split()[1:], prog_name="plait", terminal_width=78)
    assert result.exit_code == 0
    assert result.output == shown
