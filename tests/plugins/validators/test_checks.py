"""Each validator on its own: what passes, what is rejected and the reason given."""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any, Literal

import attrs
import pytest
from plait_validators import (
    grounded,
    is_json,
    json_schema,
    length,
    non_empty,
    one_of,
    regex,
    structure,
)


class Intent(enum.Enum):
    BILLING = "billing"
    RETURNS = "returns"


@attrs.frozen
class Person:
    name: str
    age: int
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class Ticket:
    title: str
    priority: Literal["low", "high"]


# -- non_empty -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["x", " x ", [0], {"a": 1}, 0, False, Person("a", 1)])
def test_non_empty_passes(value: Any) -> None:
    assert non_empty()(value) is None


@pytest.mark.parametrize(("value", "reason"), [
    (None, "the output is empty (None)"),
    ("", "the output is empty text"),
    (" \n\t", "the output is only whitespace"),
    ([], "the output is an empty list"),
    ({}, "the output is an empty dict"),
    ((), "the output is an empty tuple"),
])
def test_non_empty_rejects(value: Any, reason: str) -> None:
    assert non_empty()(value) == reason


def test_validators_have_readable_names() -> None:
    assert non_empty().__name__ == "non_empty"
    assert length(min=1, max=3).__name__ == "length(min=1, max=3)"
    assert regex(r"\d+").__name__ == r"regex('\\d+')"
    assert one_of(Intent).__name__ == "one_of('billing', 'returns')"
    assert structure(Person).__name__ == "structure(Person)"
    assert structure(list[int]).__name__ == "structure(list[int])"
    assert json_schema({"title": "Answer", "type": "object"}).__name__ == "json_schema('Answer')"
    assert json_schema({"type": "object"}).__name__ == "json_schema"
    assert grounded(sources=[1], cited="refs").__name__ == "grounded(cited='refs')"
    assert is_json().__name__ == "json"


# -- length ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "reason"), [
    ("ab", "the output has 2 characters, fewer than the minimum of 3"),
    ("a" * 6, "the output has 6 characters, more than the maximum of 5"),
    ([1], "the output has 1 item, fewer than the minimum of 3"),
    ({"a": 1, "b": 2}, "the output has 2 keys, fewer than the minimum of 3"),
    (42, "the output has no length (it is a int)"),
])
def test_length_rejects_with_the_size(value: Any, reason: str) -> None:
    assert length(min=3, max=5)(value) == reason


@pytest.mark.parametrize("value", ["abc", "abcde", [1, 2, 3], {"a", "b", "c", "d"}])
def test_length_passes_within_bounds(value: Any) -> None:
    assert length(min=3, max=5)(value) is None


def test_length_one_bound_is_enough() -> None:
    assert length(max=2)("") is None
    assert length(min=1)("x" * 10_000) is None


@pytest.mark.parametrize("kwargs", [{}, {"min": -1}, {"max": 1.5}, {"min": True},
                                    {"min": 3, "max": 2}])
def test_length_refuses_bad_bounds(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="length"):
        length(**kwargs)


# -- regex -----------------------------------------------------------------------------


def test_regex_searches_by_default_and_full_matches_on_request() -> None:
    assert regex(r"\d{4}")("order 1234 shipped") is None
    assert regex(r"\d{4}", full=True)("order 1234 shipped") == (
        r"'order 1234 shipped' does not match the pattern '\\d{4}'")
    assert regex(r"\d{4}", full=True)("1234") is None
    assert regex(r"^\d{4}$")("12345") == (
        r"'12345' does not contain a match of the pattern '^\\d{4}$'")


def test_regex_flags_and_compiled_patterns() -> None:
    assert regex(r"^yes$", flags=re.IGNORECASE)("YES") is None
    assert regex(re.compile(r"^yes$", re.IGNORECASE))("Yes") is None


def test_regex_rejects_non_text_and_cuts_long_values() -> None:
    assert regex("x")(12) == "expected text, got int"
    reason = regex(r"^\d+$")("word " * 100)
    assert reason is not None
    assert len(reason) < 120
    assert "..." in reason


# -- one_of ----------------------------------------------------------------------------


def test_one_of_labels() -> None:
    check = one_of(["billing", "returns", "status"])
    assert check("billing") is None
    assert check("Billing") == (
        "'Billing' is not one of the allowed labels: 'billing', 'returns', 'status'")
    assert check(None) == (
        "None is not one of the allowed labels: 'billing', 'returns', 'status'")


def test_one_of_ignore_case() -> None:
    check = one_of(["Billing", "Returns"], ignore_case=True)
    assert check("BILLING") is None
    assert check("returns") is None
    assert check("refund") is not None


def test_one_of_enums_compare_by_value_on_both_sides() -> None:
    assert one_of(Intent)(Intent.BILLING) is None
    assert one_of(Intent)("returns") is None
    assert one_of(["billing"])(Intent.BILLING) is None
    assert one_of(Intent, ignore_case=True)("BILLING") is None
    assert one_of([Intent.RETURNS])(Intent.BILLING) == (
        "'billing' is not one of the allowed labels: 'returns'")


def test_one_of_checks_every_label_of_a_multi_label_output() -> None:
    check = one_of(["a", "b", "c"])
    assert check(["a", "c"]) is None
    assert check(("a", "x", "y")) == (
        "'x', 'y' are not one of the allowed labels: 'a', 'b', 'c'")
    assert check(set()) is None  # no labels: use non_empty() or length(min=1) to require one


def test_one_of_lists_many_labels_briefly() -> None:
    reason = one_of([f"l{i}" for i in range(40)])("nope")
    assert reason is not None
    assert reason.endswith("(and 28 more)")


def test_one_of_needs_labels() -> None:
    with pytest.raises(ValueError, match="at least one"):
        one_of([])


# -- json ------------------------------------------------------------------------------


def test_is_json() -> None:
    assert is_json()('{"a": [1, 2]}') is None
    assert is_json()("null") is None
    reason = is_json()('{"a": ')
    assert reason is not None
    assert reason.startswith("the output is not valid JSON: Expecting value")
    assert is_json()({"a": 1}) == "expected JSON text, got dict"


# -- json_schema -----------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "minLength": 1},
                   "age": {"type": "integer", "minimum": 0},
                   "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["name", "age"],
}


def test_json_schema_accepts_plain_data_and_attrs_objects() -> None:
    check = json_schema(PERSON)
    assert check({"name": "Ada", "age": 36}) is None
    assert check(Person("Ada", 36, ("math",))) is None  # a tuple is a JSON array


def test_json_schema_names_each_problem_and_its_path() -> None:
    reason = json_schema(PERSON)({"name": "", "age": -1, "tags": ["ok", 3]})
    assert reason == ("'' should be non-empty at $.name; -1 is less than the minimum of 0 "
                      "at $.age; 3 is not of type 'string' at $.tags[1]")
    reason = json_schema(PERSON)({"name": "a", "age": "x", "tags": [1, 2, 3]})
    assert reason is not None
    assert reason.endswith("(and 1 more problems)")


def test_json_schema_checks_formats() -> None:
    check = json_schema({"type": "string", "format": "date"})
    assert check("2026-11-21") is None
    assert check("21/11/2026") == "'21/11/2026' is not a 'date' at $"


def test_json_schema_refuses_an_invalid_schema() -> None:
    with pytest.raises(ValueError, match="the schema itself is invalid"):
        json_schema({"type": "nonsense"})


def test_json_schema_reports_values_json_cannot_hold() -> None:
    reason = json_schema({})({"when": object()})
    assert reason is not None
    assert reason.startswith("the output cannot be turned into JSON")


# -- structure -------------------------------------------------------------------------


def test_structure_accepts_matching_data_and_instances() -> None:
    assert structure(Person)({"name": "Ada", "age": 36}) is None
    assert structure(Person)(Person("Ada", 36)) is None
    assert structure(Ticket)({"title": "t", "priority": "high"}) is None
    assert structure(list[int])([1, 2]) is None


def test_structure_is_strict_about_scalars() -> None:
    assert structure(Person)({"name": "Ada", "age": "36"}) == (
        "the output is not a valid Person: invalid value for type, expected int @ $.age")
    assert structure(list[float])([1, 2.5]) is None  # an int is a fine float
    assert structure(list[float])([True]) is not None
    assert structure(list[int])([True]) is not None


def test_structure_names_missing_fields_and_bad_literals() -> None:
    reason = structure(Ticket)({"priority": "urgent"})
    assert reason is not None
    assert reason.startswith("the output is not a valid Ticket: ")
    assert "required field missing @ $.title" in reason
    assert "$.priority" in reason


def test_structure_can_forbid_extra_keys() -> None:
    data = {"name": "Ada", "age": 36, "nickname": "A"}
    assert structure(Person)(data) is None
    assert structure(Person, forbid_extra_keys=True)(data) == (
        "the output is not a valid Person: extra fields found (nickname) @ $")


# -- grounded --------------------------------------------------------------------------


@attrs.frozen
class Answer:
    text: str
    citations: tuple[str, ...]


def test_grounded_accepts_cited_sources_among_the_given_ones() -> None:
    check = grounded(sources={"d1", "d2", "d3"}, cited="citations")
    assert check(Answer("...", ("d1", "d3"))) is None
    assert check({"text": "...", "citations": ["d2"]}) is None
    assert check(Answer("...", ())) is None


def test_grounded_rejects_invented_sources() -> None:
    check = grounded(sources=["d1", "d2"], cited="citations")
    assert check(Answer("...", ("d1", "d9", "d7", "d9"))) == (
        "the output cites 'd9', 'd7', which are not among the sources given: 'd1', 'd2'")


def test_grounded_with_an_extracting_function_and_numeric_ids() -> None:
    def brackets(text: str) -> list[str]:
        return re.findall(r"\[(\d+)\]", text)

    check = grounded(sources=[1, 2, 3], cited=brackets)
    assert check("Paris [1] is in France [3].") is None
    assert check("Paris [4].") == (
        "the output cites '4', which is not among the sources given: 1, 2, 3")


def test_grounded_min_cited() -> None:
    check = grounded(sources=["a"], cited="citations", min_cited=1)
    assert check({"citations": []}) == (
        "the output cites 0 sources, fewer than the 1 required; cite from: 'a'")
    assert check({}) is not None  # no citations field: nothing cited
    assert check({"citations": "a"}) is None  # a single id


def test_grounded_sources_from_the_context_need_the_context() -> None:
    check = grounded(sources=lambda ctx: ctx.dep("retrieve"), cited="citations")
    with pytest.raises(TypeError, match="needs the step context"):
        check({"citations": ["a"]})


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"sources": "abc", "cited": "c"}, TypeError),
    ({"sources": 3, "cited": "c"}, TypeError),
    ({"sources": [], "cited": 3}, TypeError),
    ({"sources": [], "cited": "c", "min_cited": -1}, ValueError),
])
def test_grounded_refuses_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match="grounded"):
        grounded(**kwargs)
