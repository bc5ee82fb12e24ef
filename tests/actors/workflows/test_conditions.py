"""actors/workflows/conditions.py: the safe condition language of graph conditional edges.

Parsing refusals are checked by message content (what is wrong, where); evaluation is checked on
examples and, by hypothesis, against a reference evaluator written here directly over generated
expression trees (never Python's `eval`)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.workflows.conditions import (
    Condition,
    ConditionError,
    ConditionSyntaxError,
    parse_condition,
)


def holds(source: str, state: dict[str, Any] | None = None) -> bool:
    return parse_condition(source).evaluate(state or {})


# --- the spec's example --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quality_score", "expected"), [(8.5, True), (7, True), (6.99, False), (0, False)]
)
def test_quality_score_against_threshold(quality_score: float, expected: bool) -> None:
    condition = parse_condition("quality_score >= threshold")
    assert condition.source == "quality_score >= threshold"
    assert condition.evaluate({"quality_score": quality_score, "threshold": 7}) is expected
    assert condition.keys == frozenset({"quality_score", "threshold"})


def test_a_condition_is_frozen() -> None:
    condition = parse_condition("x == 1")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        condition.source = "x == 2"  # type: ignore[misc]  # frozen: that is what it checks


# --- the language --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # not binds tighter than and, which binds tighter than or
        ("true or true and false", True),  # (true or true) and false would be False
        ("false and false or true", True),  # false and (false or true) would be False
        ("not false and false", False),  # not (false and false) would be True
        ("not 1 == 2", True),  # (not 1) == 2 would be False
        ("not not true", True),
        # parentheses override precedence
        ("(true or true) and false", False),
        ("not (false and false)", True),
        ("((1 < 2))", True),
        # Python-style chaining: every link must hold
        ("1 < 2 < 3", True),
        ("1 < 3 < 2", False),
        ("3 > 2 >= 2 == 2.0 != 5", True),
        ("1 < 2 > 1", True),
        # numbers
        ("-1 < 0", True),
        ("- -3 == 3", True),
        ("-2.5 == -2.50", True),
        (".5 == 0.5", True),
        ("1e3 == 1000", True),
        ("2.5E-1 == .25", True),
        ("1 == 1.0", True),
        # booleans are not numbers; null has its two spellings
        ("true != 1", True),
        ("false == 0", False),
        ("True == true and False == false", True),
        ("null == None", True),
        ("null == false", False),
        # strings
        ("'abc' < 'abd'", True),
        ("'a' == \"a\"", True),
        ("'1' == 1", False),
    ],
)
def test_literals_precedence_and_chaining(source: str, expected: bool) -> None:
    assert holds(source) is expected


@pytest.mark.parametrize(
    ("source", "value"),
    [
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'back\\slash'", "back\\slash"),
        (r"'\"'", '"'),
        ("'and or not (x) == 1'", "and or not (x) == 1"),
        ("''", ""),
    ],
)
def test_strings_with_escapes(source: str, value: str) -> None:
    assert holds(f"text == {source}", {"text": value})
    assert not holds(f"text != {source}", {"text": value})


def test_negated_keys() -> None:
    assert holds("-x < 0", {"x": 2})
    assert holds("-x == 2.5", {"x": -2.5})
    assert holds("-(x) > -3", {"x": 2})


def test_dotted_keys_read_nested_dicts() -> None:
    state = {"review": {"score": 8, "author": {"name": "ada"}}, "threshold": 7}
    assert holds("review.score >= threshold", state)
    assert holds("review.author.name == 'ada'", state)
    condition = parse_condition("review.author.name == 'ada' and threshold > 1")
    assert condition.keys == frozenset({"review", "threshold"})


def test_and_or_not_judge_values_by_truthiness_and_yield_booleans() -> None:
    state = {"empty": "", "items": [1], "none": None, "zero": 0}
    assert holds("items", state) is True
    assert holds("empty or zero or none", state) is False
    assert holds("not empty and items", state) is True
    assert holds("(zero or items) == true", state) is True  # `or` yields a boolean, not [1]


def test_short_circuits_skip_the_keys_they_do_not_need() -> None:
    assert holds("has_x and x > 1", {"has_x": False}) is False
    assert holds("ready or x > 1", {"ready": True}) is True
    assert holds("x > 5 < missing", {"x": 1}) is False  # a false link ends the chain


def test_equality_between_any_values() -> None:
    state = {"items": [1, 2], "flags": [True], "ones": [1], "meta": {"a": 1}}
    assert holds("items == items and meta == meta", state)
    assert holds("items != 1 and meta != 'a' and null != meta", state)
    assert holds("flags != ones", state)  # a boolean never equals a number, even nested


def test_keys_are_the_top_level_keys_read() -> None:
    condition = parse_condition("a.b > c and not d or e == 'f' or -g < 0")
    assert condition.keys == frozenset({"a", "c", "d", "e", "g"})
    assert parse_condition("true and None == null or not False").keys == frozenset()


def test_keys_may_use_any_identifier_that_is_not_a_keyword() -> None:
    state = {"_x": 1, "Trueish": 2, "nota": 3, "andy": 4, "données": 5}
    assert holds("_x < Trueish < nota < andy < données", state)


# --- refusals at parse time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "fragments"),
    [
        ("score >= ", ["'score >= '", "expected a value at position 9", "found end of input"]),
        ("__import__('os').system('echo hi')", ["function calls are not allowed", "__import__"]),
        ("len(code) > 3", ["function calls are not allowed", "'len'", "position 0"]),
        ("open('f').read()", ["function calls are not allowed", "'open'"]),
        ("x > 1 and a.b(1)", ["function calls are not allowed", "'a.b'", "position 10"]),
        ("x[0] == 1", ["unexpected '['", "position 1", "subscripts are not supported"]),
        ("lambda: 1", ["unexpected ':'", "position 6"]),
        ("a = 1", ["unexpected '='", "position 2", "'=='"]),
        ("a + 1 > 2", ["unexpected '+'", "position 2", "arithmetic"]),
        ("a - 1 > 2", ["unexpected '-'", "position 2", "arithmetic"]),
        ("a * 2", ["unexpected '*'", "position 2"]),
        ("a; b", ["unexpected ';'", "position 1"]),
        ("a @ b", ["unexpected '@'", "position 2"]),
        ("a && b", ["unexpected '&'", "'and'"]),
        ("!a", ["unexpected '!'", "'not'"]),
        ("a b", ["unexpected 'b'", "position 2"]),
        ("a == 1)", ["unexpected ')'", "position 6"]),
        ("(a == 1", ["expected ')' at position 7", "'(' at position 0", "end of input"]),
        ("a ==", ["expected a value at position 4"]),
        ("a and", ["expected a value at position 5"]),
        ("or a", ["expected a value at position 0", "'or'"]),
        ("not", ["expected a value at position 3"]),
        ("a < < b", ["expected a value at position 4", "'<'"]),
        ("'abc", ["unterminated string starting at position 0"]),
        ("x == 'a\\", ["unterminated string starting at position 5"]),
        (r"x == 'a\n'", ["unknown escape", "position 7"]),
        ("1abc > 0", ["malformed number '1abc' at position 0"]),
        ("x > 1.", ["malformed number '1.'", "position 4"]),
        ("x > 1.2.3", ["malformed number '1.2.3'"]),
        ("a.", ["unexpected '.'", "position 1"]),
        ("true.x", ["'true' is a keyword"]),
        ("a.not == 1", ["'not' is a keyword"]),
        ("- 'a' == 1", ["'-' at position 0 needs a number", "'a' (string)"]),
        ("-true", ["needs a number", "true (boolean)"]),
        ("-(a < b)", ["needs a number, not a condition"]),
    ],
)
def test_refusals_say_what_is_wrong_and_where(source: str, fragments: list[str]) -> None:
    with pytest.raises(ConditionSyntaxError) as raised:
        parse_condition(source)
    message = str(raised.value)
    assert message.startswith(f"condition {source!r}")
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("source", ["", "   ", "\n\t"])
def test_an_empty_condition_is_refused(source: str) -> None:
    with pytest.raises(ConditionSyntaxError, match="is empty"):
        parse_condition(source)


def test_a_condition_must_be_a_string() -> None:
    with pytest.raises(ConditionSyntaxError, match="must be a string, not int"):
        parse_condition(7)  # type: ignore[arg-type]  # a wrong type on purpose


def test_source_length_is_limited() -> None:
    at_limit = "x == " + "1" * 995
    assert parse_condition(at_limit).evaluate({"x": int("1" * 995)})
    with pytest.raises(ConditionSyntaxError, match="too long: 1001 characters"):
        parse_condition(at_limit + "1")


def test_ten_thousand_parentheses_are_a_syntax_error_not_a_recursion_error() -> None:
    with pytest.raises(ConditionSyntaxError, match="too long"):
        parse_condition("(" * 10_000 + "x" + ")" * 10_000)


@pytest.mark.parametrize(
    ("opening", "closing"), [("(", ")"), ("not ", ""), ("-", ""), ("not (", ")")]
)
def test_nesting_depth_is_limited(opening: str, closing: str) -> None:
    levels = 32 // len(opening.split())  # "not (" nests twice per repetition
    deep = opening * levels + "x" + closing * levels
    assert isinstance(parse_condition(deep).evaluate({"x": 1}), bool)
    too_deep = opening * (levels + 1) + "x" + closing * (levels + 1)
    with pytest.raises(ConditionSyntaxError, match="nested too deeply at position"):
        parse_condition(too_deep)


def test_nesting_within_the_length_limit_is_a_syntax_error_not_a_recursion_error() -> None:
    with pytest.raises(ConditionSyntaxError, match="nested too deeply"):
        parse_condition("(" * 499 + "x" + ")" * 499)


@pytest.mark.parametrize("source", ["-" * 999 + "x", "not " * 249 + "x", "+" * 999 + "x"])
def test_chains_deeper_than_python_s_own_parser_takes_are_a_syntax_error(source: str) -> None:
    with pytest.raises(ConditionSyntaxError):
        parse_condition(source)


# --- where Python's expressions and the grammar part ---------------------------------------------
# Python's parser reads conditions: what it reads otherwise than the grammar, or refuses, is pinned.


@pytest.mark.parametrize(
    ("source", "state"),
    [
        ("a ==\n  1 and\r\nb", {"a": 1, "b": True}),  # line breaks are whitespace
        ("\t a == 1", {"a": 1}),  # so is an indent
        ("pass and not from.in", {"pass": True, "from": {"in": False}}),  # Python's keywords
        ("x == 007 and y == 00", {"x": 7, "y": 0}),  # leading zeros
        ("ｘ == 1", {"ｘ": 1}),  # a name as written: Python would read it as x
        ("x == 'é\n\x00'", {"x": "é\n\x00"}),  # any character in a string
    ],
)
def test_python_s_refusals_and_readings_that_are_not_ours(
    source: str, state: dict[str, Any]
) -> None:
    assert holds(source, state) is True


@pytest.mark.parametrize(
    ("source", "fragments"),
    [
        ("a in b", ["unexpected 'in' at position 2"]),
        ("a is not None", ["unexpected 'is' at position 2"]),
        ("x if y else z", ["unexpected 'if' at position 2"]),
        ("x == 1 # note", ["unexpected '#' at position 7"]),
        ("x == \\\n 1", ["unexpected '\\\\' at position 5"]),
        ("x == 0x1F", ["malformed number '0x1F' at position 5"]),
        ("x == 1_000", ["malformed number '1_000'"]),
        ("x == 1j", ["malformed number '1j'"]),
        ("x == 1and y", ["malformed number '1and'"]),
        ("x == r'a'", ["string prefixes are not supported", "position 5"]),
        ("x == f'{y}'", ["string prefixes are not supported"]),
        ("x == '''a'''", ["unexpected \"'a'\" at position 7"]),
        ("x == 'a' 'b'", ["unexpected \"'b'\" at position 9"]),
        ("x == ...", ["unexpected '...' at position 5"]),
        ("a . b == 1", ["unexpected '.' at position 2"]),
        ("(a).b", ["position 3"]),
        ("(a, b)", ["a tuple is not allowed", "position 0"]),
        ("x == [1]", ["a list is not allowed", "position 5"]),
        ("(x := 1)", ["an assignment is not allowed"]),
        ("~a", ["unexpected '~' at position 0"]),
        ("a ** 2", ["unexpected '*' at position 2", "arithmetic"]),
        ("a + b + c", ["unexpected '+' at position 2"]),  # the first operator
        ("a.b.c(1)", ["function calls are not allowed", "'a.b.c'"]),
        ("x x\u00b2", ["unexpected", "position 2"]),
    ],
)
def test_python_syntax_outside_the_grammar_is_refused(source: str, fragments: list[str]) -> None:
    with pytest.raises(ConditionSyntaxError) as raised:
        parse_condition(source)
    message = str(raised.value)
    assert message.startswith(f"condition {source!r}")
    for fragment in fragments:
        assert fragment in message


# --- refusals at evaluation time -----------------------------------------------------------------


def test_a_missing_key_is_an_error_not_false() -> None:
    condition = parse_condition("quality_score >= threshold")
    with pytest.raises(ConditionError) as raised:
        condition.evaluate({"quality_score": 9})
    assert str(raised.value) == (
        "condition 'quality_score >= threshold': state has no key 'threshold'"
    )


def test_a_missing_nested_key_names_the_missing_part() -> None:
    with pytest.raises(ConditionError) as raised:
        holds("review.author.name == 'ada'", {"review": {"score": 3}})
    message = str(raised.value)
    assert "state has no key 'review.author.name'" in message
    assert "'review' has no key 'author'" in message


def test_a_dotted_key_through_a_non_object_says_so() -> None:
    with pytest.raises(ConditionError) as raised:
        holds("review.score.value > 1", {"review": {"score": 3}})
    assert "'review.score' is 3 (number), not an object" in str(raised.value)
    with pytest.raises(ConditionError, match="'text' is 'abc' \\(string\\), not an object"):
        holds("text.upper", {"text": "abc"})  # a dict key, never an attribute


@pytest.mark.parametrize(
    ("source", "state", "fragment"),
    [
        ("x < 3", {"x": "abc"}, "cannot compare 'abc' (string) with 3 (number) using <"),
        ("x >= 1", {"x": True}, "cannot compare true (boolean) with 1 (number) using >="),
        ("x > y", {"x": None, "y": 1}, "cannot compare null (null) with 1 (number) using >"),
        ("x <= 'a'", {"x": [1]}, "cannot compare [1] (list) with 'a' (string) using <="),
        ("1 < 2 < x", {"x": {"a": 1}}, "cannot compare 2 (number) with {'a': 1} (object)"),
        ("-x > 0", {"x": "7"}, "cannot negate '7' (string)"),
    ],
)
def test_incomparable_values_are_an_error(
    source: str, state: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConditionError) as raised:
        holds(source, state)
    assert str(raised.value).startswith(f"condition {source!r}: ")
    assert fragment in str(raised.value)


# --- hypothesis: generated trees against a reference evaluator -----------------------------------

STATE: dict[str, Any] = {
    "score": 7.5,
    "threshold": 7,
    "count": 0,
    "name": "review",
    "empty": "",
    "done": False,
    "ready": True,
    "nothing": None,
    "review": {"score": 9, "label": "ok", "inner": {"depth": -2}},
}
KEYS = [
    "score", "threshold", "count", "name", "empty", "done", "ready", "nothing", "review",
    "review.score", "review.label", "review.inner.depth", "missing", "review.missing",
    "score.missing",
]  # fmt: skip
COMPARISONS = ["==", "!=", "<", "<=", ">", ">="]
OR, AND, NOT, COMPARISON, ATOM = range(1, 6)  # precedence levels, loosest first


@attrs.frozen
class Lit:
    value: Any
    text: str


@attrs.frozen
class KeyRef:
    path: str


@attrs.frozen
class Neg:
    key: KeyRef


@attrs.frozen
class NotT:
    operand: Any


@attrs.frozen
class AndT:
    operands: list[Any]


@attrs.frozen
class OrT:
    operands: list[Any]


@attrs.frozen
class Cmp:
    first: Any
    links: list[tuple[str, Any]]


@attrs.frozen
class Group:
    inner: Any


class Undecidable(Exception):
    """The reference evaluator's verdict: a missing key or an incomparable pair."""


def is_number(value: Any) -> bool:
    return type(value) in (int, float)


def ref_value(node: Any) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, KeyRef):
        value: Any = STATE
        for part in node.path.split("."):
            if not isinstance(value, dict) or part not in value:
                raise Undecidable
            value = value[part]
        return value
    if isinstance(node, Neg):
        number = ref_value(node.key)
        if not is_number(number):
            raise Undecidable
        return -number
    if isinstance(node, NotT):
        return not ref_value(node.operand)
    if isinstance(node, AndT):
        for operand in node.operands:
            if not ref_value(operand):
                return False
        return True
    if isinstance(node, OrT):
        for operand in node.operands:
            if ref_value(operand):
                return True
        return False
    if isinstance(node, Cmp):
        left = ref_value(node.first)
        for comparison, operand in node.links:
            right = ref_value(operand)
            if not ref_compare(comparison, left, right):
                return False
            left = right
        return True
    assert isinstance(node, Group)
    return ref_value(node.inner)


def ref_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


def ref_compare(comparison: str, left: Any, right: Any) -> bool:
    if comparison == "==":
        return ref_equal(left, right)
    if comparison == "!=":
        return not ref_equal(left, right)
    if not (is_number(left) and is_number(right)) and not (
        isinstance(left, str) and isinstance(right, str)
    ):
        raise Undecidable
    if comparison == "<":
        return bool(left < right)
    if comparison == "<=":
        return bool(left <= right)
    if comparison == ">":
        return bool(left > right)
    return bool(left >= right)


def ref_keys(node: Any) -> set[str]:
    if isinstance(node, KeyRef):
        return {node.path.split(".")[0]}
    children: list[Any] = []
    if isinstance(node, Neg):
        children = [node.key]
    elif isinstance(node, NotT):
        children = [node.operand]
    elif isinstance(node, AndT | OrT):
        children = node.operands
    elif isinstance(node, Cmp):
        children = [node.first, *(operand for _, operand in node.links)]
    elif isinstance(node, Group):
        children = [node.inner]
    return set().union(*(ref_keys(child) for child in children))


def render(node: Any) -> tuple[str, int, int]:
    """The condition text of `node`, its precedence level and its nesting depth."""
    if isinstance(node, Lit):
        return node.text, ATOM, 1 if node.text.startswith("-") else 0
    if isinstance(node, KeyRef):
        return node.path, ATOM, 0
    if isinstance(node, Neg):
        return "-" + node.key.path, ATOM, 1
    if isinstance(node, Group):
        text, depth = wrapped(node.inner, OR)
        return f"({text})", ATOM, depth + 1
    if isinstance(node, NotT):
        text, depth = wrapped(node.operand, NOT)
        return f"not {text}", NOT, depth + 1
    if isinstance(node, AndT | OrT):
        level = AND if isinstance(node, AndT) else OR
        parts = [wrapped(operand, level + 1) for operand in node.operands]
        joiner = " and " if level == AND else " or "
        return joiner.join(text for text, _ in parts), level, max(depth for _, depth in parts)
    assert isinstance(node, Cmp)
    parts = [wrapped(node.first, ATOM)]
    texts = [parts[0][0]]
    for comparison, operand in node.links:
        parts.append(wrapped(operand, ATOM))
        texts += [comparison, parts[-1][0]]
    return " ".join(texts), COMPARISON, max(depth for _, depth in parts)


def wrapped(node: Any, minimum: int) -> tuple[str, int]:
    text, level, depth = render(node)
    return (f"({text})", depth + 1) if level < minimum else (text, depth)


def quoted(text: str, quote: str) -> str:
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


def number_literal(value: int | float) -> Lit:
    return Lit(value, repr(value))


literals = st.one_of(
    st.sampled_from(
        [Lit(True, "true"), Lit(True, "True"), Lit(False, "false"), Lit(False, "False")]
        + [Lit(None, "null"), Lit(None, "None")]
    ),
    st.integers(-3, 10).map(number_literal),
    st.integers(-(10**30), 10**30).map(number_literal),
    st.sampled_from([7.5, 9.0, -2.0, 0.5, 0.0, -0.0]).map(number_literal),
    st.floats(allow_nan=False, allow_infinity=False).map(number_literal),
    st.builds(
        lambda text, quote: Lit(text, quoted(text, quote)),
        st.one_of(st.sampled_from(["review", "ok", ""]), st.text("ab '\"\\()", max_size=5)),
        st.sampled_from(["'", '"']),
    ),
)
keys = st.sampled_from(KEYS).map(KeyRef)
atoms = st.one_of(literals, keys, keys.map(Neg))


def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(NotT, children),
        st.builds(AndT, st.lists(children, min_size=2, max_size=3)),
        st.builds(OrT, st.lists(children, min_size=2, max_size=3)),
        st.builds(
            Cmp,
            children,
            st.lists(st.tuples(st.sampled_from(COMPARISONS), children), min_size=1, max_size=3),
        ),
        st.builds(Group, children),
    )


trees = st.recursive(atoms, extend, max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(trees)
def test_evaluation_matches_the_reference_on_generated_trees(tree: Any) -> None:
    text, _, depth = render(tree)
    if depth > 32:
        with pytest.raises(ConditionSyntaxError, match="nested too deeply"):
            parse_condition(text)
        return
    condition = parse_condition(text)
    assert condition.source == text
    assert condition.keys == ref_keys(tree)
    try:
        expected = bool(ref_value(tree))
    except Undecidable:
        with pytest.raises(ConditionError):
            condition.evaluate(STATE)
    else:
        assert condition.evaluate(STATE) is expected


# --- hypothesis: any text parses or is a ConditionSyntaxError ------------------------------------

TOKENS = [
    "a", "b.c", "x", "1", "2.5", ".5", "1e3", "'s'", '"t"', "'", '"', "\\", "(", ")", "<", "<=",
    "==", "!=", ">", ">=", "=", "-", "+", "*", "not", "and", "or", "true", "None", "null", "[",
    "]", "len(", ",", ";", "lambda", ":", ".", "__import__", "@",
]  # fmt: skip
FUZZ_STATE = {"a": 1, "b": {"c": "x"}, "x": -2.5}

texts = st.one_of(
    st.text(alphabet="abx_.019eE()<>=!-+*[]'\"\\ ;:,@\t", max_size=30),
    st.lists(st.sampled_from(TOKENS), max_size=15).map(" ".join),
    st.lists(st.sampled_from(TOKENS), max_size=15).map("".join),
)


PYTHON_TOKENS = [
    *TOKENS, "in", "is", "if", "else", "pass", "from", "#", "\n", "\\\n", "0x1", "1_0", "1j",
    "007", "1.e3", "r'a'", "f'{a}'", "b'a'", "'''", "...", "**", "~", "{", "}", ":=", "é", "ｘ",
    "²", "\x00", "\ud800", "\u00a0", "'é'",
]  # fmt: skip
any_texts = st.one_of(
    st.text(st.characters(blacklist_categories=()), max_size=30),  # surrogates included
    st.lists(st.sampled_from(PYTHON_TOKENS), max_size=15).map(" ".join),
    st.lists(st.sampled_from(PYTHON_TOKENS), max_size=15).map("".join),
)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(texts, any_texts))
def test_any_text_parses_or_is_a_condition_syntax_error(text: str) -> None:
    """Condition-like text and any Unicode text (surrogates included): a condition, or a
    ConditionSyntaxError naming it; a condition evaluates to a bool or a ConditionError."""
    try:
        condition = parse_condition(text)
    except ConditionSyntaxError as error:
        assert str(error).startswith(f"condition {text!r}")
        return
    assert isinstance(condition, Condition) and condition.source == text
    try:
        assert isinstance(condition.evaluate(FUZZ_STATE), bool)
    except ConditionError as error:
        assert str(error).startswith(f"condition {text!r}: ")
