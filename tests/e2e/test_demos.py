"""`plait demo faq|support|orchestrate` end to end: on the scripted fake, then on SmolLM2.

The fake (plait-testing's provider, scripted by each demo's ``fake_reply``) makes the
mistakes small models make, so these tests check that validation, re-asks, the router's
fallback and the orchestrator's reports catch them and the demo still finishes.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import plait
import pytest
from click.testing import CliRunner, Result
from plait._cli import cli


def demo(name: str, model: str, monkeypatch: pytest.MonkeyPatch, distribution: str,
         *options: str) -> Result:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", distribution)
    monkeypatch.setenv("COLUMNS", "400")  # wide enough that no line of interest wraps
    monkeypatch.delenv("PLAIT_STEP_LOG", raising=False)
    result = CliRunner().invoke(cli, ["demo", name, "--model", model, *options],
                                prog_name="plait")
    assert result.exit_code == 0, result.output
    return result


def caught(output: str) -> list[str]:
    section = output.split("Caught by validation and retries")[1].split("Usage")[0]
    return [line[2:] for line in section.splitlines() if line.startswith("• ")]


def speed_up(output: str) -> float:
    found = re.search(r"speed-up: (\d+\.\d\d)x", output)
    assert found, output
    return float(found.group(1))


def usage(output: str) -> tuple[int, int, int]:
    found = re.search(r"(\d+) model calls?, ([\d,]+) tokens in, ([\d,]+) out, cost \$0\b", output)
    assert found, output
    return tuple(int(g.replace(",", "")) for g in found.groups())  # type: ignore[return-value]


# -- on the fake ---------------------------------------------------------------------------


def test_faq_on_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    out = demo("faq", "fake:demo", monkeypatch, "plait-testing").output
    assert "Run 1: sequential" in out
    assert "Run 2: fan-out (ctx.map)" in out
    assert out.count("│ questions │ ok") == 2
    assert out.count("│ answers   │ ok") == 2
    faq = out.split("─ FAQ ─")[1].split("─ Timings ─")[0]
    assert re.findall(r"Q\d\. (.+)\n +(.+)\n +sources: (.+)", faq) == [
        ("What are the benefits of solar energy?",
         "Solar panels lower electricity bills and cut greenhouse gas emissions.",
         "The Benefits of Solar Energy"),
        ("How do wind turbines generate electricity?",
         "They capture kinetic energy from the wind and convert it into power.",
         "Understanding Wind Turbines"),
        ("Why is energy storage important for renewables?",
         "Solar and wind are intermittent, so storage such as lithium-ion batteries keeps the "
         "grid stable.",
         "Energy Storage Solutions"),
        ("Why can installing solar panels be costly?",
         "The initial installation cost can be high, though incentives and long-term savings "
         "help.",
         "The Benefits of Solar Energy"),
    ]
    # the storage answer was said to use the solar page too: the step keeps it out
    assert ("sources: Energy Storage Solutions\n    not a source (the answer uses nothing "
            "from it): The Benefits of Solar Energy") in faq
    assert "Questions: 4, taking the pages in turn" in out
    assert speed_up(out) > 1  # 50 ms fake calls: the fan-out overlaps them
    assert caught(out) == [
        f"{run} > {where}" for run in ("sequential", "fan-out (ctx.map)") for where in (
            "questions: re-asked: 'Wind turbines generate electricity.' is not a question; "
            "write one ending with '?'",
            "answers: re-asked: the answer uses nothing from 'Understanding Wind Turbines'; "
            "it draws on 'The Benefits of Solar Energy'",
        )
    ]
    # per run: four questions plus one re-ask; an answer and its pages per question plus
    # one re-ask
    assert usage(out)[0] == 2 * ((4 + 1) + (4 * 2 + 1))


def test_faq_asks_as_many_questions_as_told(monkeypatch: pytest.MonkeyPatch) -> None:
    out = demo("faq", "fake:demo", monkeypatch, "plait-testing", "--questions", "2").output
    faq = out.split("─ FAQ ─")[1].split("─ Timings ─")[0]
    assert re.findall(r"Q\d\. (.+)", faq) == ["What are the benefits of solar energy?",
                                            "How do wind turbines generate electricity?"]


def test_questions_is_an_option_of_the_faq_demo_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-testing")
    for args in (["faq", "--questions", "0"], ["faq", "--questions", "10"],
                 ["support", "--questions", "2"]):
        result = CliRunner().invoke(cli, ["demo", *args, "--model", "fake:demo"])
        assert result.exit_code == 2, result.output


def test_faq_reports_an_unanswerable_question_and_keeps_the_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from plait._demos import faq

    scripted = faq.fake_reply

    def never_storage(request: plait.ModelRequest) -> Any:
        prompt = next(m.content for m in request.messages if m.role == "user")
        if "<answer>" in prompt and "Why is energy storage important" in prompt:
            return {"solar_energy": True, "wind_turbines": False, "energy_storage": False}
        return scripted(request)

    monkeypatch.setattr(faq, "fake_reply", never_storage)
    out = demo("faq", "fake:demo", monkeypatch, "plait-testing").output
    faq_section = out.split("─ FAQ ─")[1].split("─ Timings ─")[0]
    assert len(re.findall(r"Q\d\. ", faq_section)) == 3
    assert ("✗ Why is energy storage important for renewables?: ValidationFailed: step "
            "'answers': validator 'pages_used' rejected the output: the answer uses nothing "
            "from 'The Benefits of Solar Energy'; it draws on 'Energy Storage Solutions'"
            ) in faq_section


def test_support_on_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    out = demo("support", "fake:demo", monkeypatch, "plait-testing").output
    assert re.findall(r"  model's label: (.+)", out) == [
        "Technical Support", "Billing Inquiry", "Feature Request",
        "General Question (after 2 attempts)",
        'none accepted in 3 attempts (last: the reply does not match Intent: $: expected one '
        'of "Technical Support" | "Billing Inquiry" | "Feature Request" | "General Question", '
        'got "Tech")',
        "Billing Inquiry (after 2 attempts)",
    ]
    assert re.findall(r"  label: (.+)", out) == [
        "Technical Support ✓", "Billing Inquiry ✓", "Feature Request ✓", "General Question ✓",
        "Technical Support ✓ (decided by the query's words)", "Billing Inquiry ✓"]
    assert re.findall(r"  routed to: (.+)", out) == [
        "Technical Support", "Billing Inquiry", "Feature Request", "general (fallback)",
        "Technical Support", "Billing Inquiry"]
    assert "reply: Thank you for the suggestion! I've passed it to our product team." in out
    assert "6 of 6 queries got the expected label." in out
    assert ("routes taken: Technical Support x2, Billing Inquiry x2, Feature Request x1, "
            "general (fallback) x1 (all four handlers answered)") in out
    assert caught(out)[-1] == ("query 6 > classify: re-asked: 'Technical Support' does not fit "
                               "a query that says 'charged'; that is a Billing Inquiry")
    assert [c.split(" > ")[0] for c in caught(out)] == ["query 4", "query 5", "query 5",
                                                       "query 6"]
    assert usage(out)[0] == 6 + 4 + 6  # classify each, re-asks, a handler each


def test_orchestrate_on_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    out = demo("orchestrate", "fake:demo", monkeypatch, "plait-testing").output
    tasks = out.split("Tasks and workers")[1].split("─ Reply ─")[0]
    assert re.findall(r"task \d (\w+): (\S+)", tasks) == [
        ("billing", "#INV-7890"), ("return", "SuperWidget"), ("status", "#A-12345")]
    assert tasks.count("  ok") == 3
    assert "invoice_number: INV-7890" in tasks
    assert "user_concern: The invoice seems higher than I expected." in tasks
    assert re.search(r"rma_number: RMA-\d{5}", tasks)
    assert "order_id: A-12345" in tasks
    assert "billing, return and status all present" in out
    reply = out.split("─ Reply ─")[1]
    assert reply.lstrip("─ \n").startswith("Dear Customer,")
    assert "Best regards" in reply
    assert caught(out) == ["orchestrate > orchestrate: re-asked: the reply does not match Plan: "
                           "$: invalid value (the status reference '#C-88120' is not in the "
                           "message; use the invoice number, product name or order id it "
                           "gives)"]
    assert usage(out)[0] == 2 + 1 + 1  # plan twice, the billing worker, the synthesizer


def test_a_failing_worker_is_reported_not_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait._demos import orchestrate

    scripted = orchestrate.fake_reply

    def no_order_id(request: plait.ModelRequest) -> Any:
        reply = copy.deepcopy(scripted(request))
        if isinstance(reply, dict):  # in the message, so the plan passes; not an order id
            reply["status"][0]["reference"] = "my order"
        return reply

    monkeypatch.setattr(orchestrate, "fake_reply", no_order_id)
    out = demo("orchestrate", "fake:demo", monkeypatch, "plait-testing").output
    assert "failed: no order id in the task (reference 'my order')" in out
    assert out.split("Tasks and workers")[1].count("  ok") == 2


def test_unknown_demo_model_provider_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-testing")
    result = CliRunner().invoke(cli, ["demo", "faq", "--model", "local:smollm2"])
    assert result.exit_code == 2
    assert ("Invalid value for '--model': unknown provider 'local' (installed: fake); "
            "install plait-local to add it") in result.output


def test_a_model_that_cannot_be_used_stops_the_demo_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-local")
    result = CliRunner().invoke(cli, ["demo", "support", "--model", "local:/nowhere/m.gguf"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: the demo cannot use its model: local:/nowhere/m.gguf:"
                                    " no GGUF file at '/nowhere/m.gguf'")
    assert "Query 1" not in result.output


# -- on the local model (slow; CI runs it) -------------------------------------------------


def finished(out: str, calls: int) -> None:
    """The demo accounted for its calls and printed its summary."""
    made, tokens_in, tokens_out = usage(out)
    assert made >= calls
    assert tokens_in > 0
    assert tokens_out > 0
    assert "Caught by validation and retries" in out


@pytest.mark.local_model
def test_faq_on_smollm2_overlaps_the_fan_out(monkeypatch: pytest.MonkeyPatch) -> None:
    out = demo("faq", "local:smollm2", monkeypatch, "plait-local").output
    finished(out, 2 * (4 + 4 * 2))
    assert out.count("│ questions │ ok") == 2
    assert out.count("│ answers   │ ok") == 2
    faq = out.split("─ FAQ ─")[1].split("─ Timings ─")[0]
    assert re.findall(r"Q\d\. .+\?\n +.+\n +sources: \w", faq), faq
    # The target (1.6x on 2 cores) is the benchmark's; on a box shared with other test
    # runs, the fan-out must still beat the sequential run.
    assert speed_up(out) > 1, out.split("─ Timings ─")[1]
    assert "plait-local ran up to" in out


@pytest.mark.local_model
def test_support_on_smollm2_takes_all_four_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    out = demo("support", "local:smollm2", monkeypatch, "plait-local").output
    finished(out, 2 * 6)
    assert len(re.findall(r"  model's label: ", out)) == 6
    assert re.findall(r"  routed to: (.+)", out) == [
        "Technical Support", "Billing Inquiry", "Feature Request", "general (fallback)",
        "Technical Support", "Billing Inquiry"]
    assert "6 of 6 queries got the expected label." in out
    assert "(all four handlers answered)" in out


@pytest.mark.local_model
def test_orchestrate_on_smollm2_plans_all_three_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    out = demo("orchestrate", "local:smollm2", monkeypatch, "plait-local").output
    finished(out, 3)
    assert "planned 3 task(s); billing, return and status all present" in out
    tasks = out.split("Tasks and workers")[1].split("─ Reply ─")[0]
    assert re.findall(r"task \d (\w+): #?(\S+)", tasks) == [
        ("billing", "INV-7890"), ("return", "SuperWidget"), ("status", "A-12345")]
    assert tasks.count("  ok") == 3
    assert out.split("─ Reply ─")[1].split("─ Caught")[0].strip()


@pytest.mark.local_model
def test_eval_on_smollm2_measures_one_call_against_votes(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Any) -> None:
    curve = tmp_path / "curve.png"
    out = demo("eval", "local:smollm2", monkeypatch, "plait-local", "--plot", str(curve)).output
    finished(out, 1 + 10 * (1 + 3 + 5))
    rows = re.findall(r"│ (n=\d) +│ +(\d+)% │ +(\d+)%-(\d+)% │ +\$0 │ +(\d+) │", out)
    assert [(name, int(calls)) for name, _, _, _, calls in rows] == [
        ("n=1", 10), ("n=3", 30), ("n=5", 50)]
    for _, accuracy, low, high, _ in rows:  # each accuracy sits inside its own interval
        assert int(low) <= int(accuracy) <= int(high)
    assert curve.read_bytes()[:4] == b"\x89PNG"
