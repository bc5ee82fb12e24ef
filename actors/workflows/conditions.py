"""The condition language of graph conditional edges: parsing and evaluating `score >= threshold`.

A condition is a small, Python-like boolean expression over a run's state dict. It is read by our
own tokenizer and recursive-descent parser, never by Python's `eval`, `compile` or `ast`, so a
condition can only read state keys, compare values and combine the results: it cannot call, index
or compute.

Grammar (case-sensitive)::

    expression := or_expr
    or_expr    := and_expr ('or' and_expr)*
    and_expr   := not_expr ('and' not_expr)*
    not_expr   := 'not' not_expr | comparison
    comparison := operand (COMPARE operand)*        a < b < c means a < b and b < c
    COMPARE    := '==' | '!=' | '<' | '<=' | '>' | '>='
    operand    := NUMBER | STRING | true | false | True | False | null | None
                | KEY | '(' expression ')' | '-' operand
    NUMBER     := 1, 8.5, .5, 1e3, 2.5E-3
    STRING     := '...' or "..." (backslash escapes only a quote or a backslash)
    KEY        := identifier ('.' identifier)*      a.b reads state["a"]["b"] (dict keys only)

The keywords (and, or, not, true, false, True, False, null, None) are not keys.

Semantics: `and`, `or`, `not` and comparisons produce booleans; they judge their operands by
Python truthiness and short-circuit like Python (a false link ends a comparison chain). `==` and
`!=` compare any values, but a boolean never equals a number (`true != 1`) while `1 == 1.0`.
Ordering works number with number (booleans are not numbers here) and string with string only.
A key missing from the state, or an ordering between incomparable values, raises
`ConditionError`: never a silent False. A source is at most 1000 characters and 32 levels of
nesting (parentheses, `not` and unary `-`).
"""
from __future__ import annotations

import enum
import numbers
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

__all__ = ["Condition", "ConditionError", "ConditionSyntaxError", "parse_condition"]

_MAX_SOURCE_LENGTH = 1000
_MAX_DEPTH = 32

_LITERAL_KEYWORDS: dict[str, bool | None] = {
    "true": True,
    "True": True,
    "false": False,
    "False": False,
    "null": None,
    "None": None,
}
_KEYWORDS = frozenset({"and", "or", "not", *_LITERAL_KEYWORDS})
_TWO_CHARACTER_OPERATORS = frozenset({"==", "!=", "<=", ">="})
_ONE_CHARACTER_OPERATORS = frozenset({"<", ">", "(", ")", "-"})
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_DIGITS = "0123456789"
_ESCAPABLE = "\\'\""
_ARITHMETIC = "arithmetic is not supported"
_CHARACTER_HINTS = {
    "=": "use '==' to compare",
    "!": "use 'not' to negate",
    "&": "use 'and'",
    "|": "use 'or'",
    "[": "subscripts are not supported; use a dotted key such as a.b",
    ";": "a condition is a single expression",
    "+": _ARITHMETIC,
    "*": _ARITHMETIC,
    "/": _ARITHMETIC,
    "%": _ARITHMETIC,
}


class ConditionSyntaxError(ValueError):
    """A condition's text is not in the grammar; the message says what is wrong and where."""


class ConditionError(ValueError):
    """A condition cannot be evaluated against a state: a missing key or incomparable values."""


# --- the tree ------------------------------------------------------------------------------------


@attrs.frozen
class _Literal:
    value: int | float | str | bool | None


@attrs.frozen
class _Key:
    parts: tuple[str, ...]


@attrs.frozen
class _Negate:
    operand: _Node


@attrs.frozen
class _Not:
    operand: _Node


@attrs.frozen
class _And:
    operands: tuple[_Node, ...]


@attrs.frozen
class _Or:
    operands: tuple[_Node, ...]


@attrs.frozen
class _Comparison:
    """`first op1 second op2 third ...`: each link compares its neighbours."""

    first: _Node
    links: tuple[tuple[str, _Node], ...]


_Node = _Literal | _Key | _Negate | _Not | _And | _Or | _Comparison
_BOOLEAN_NODES = (_Not, _And, _Or, _Comparison)


@attrs.frozen
class Condition:
    """A parsed condition: its source text and its tree."""

    source: str
    tree: _Node

    def evaluate(self, state: Mapping[str, Any]) -> bool:
        """The truth of the condition over `state`; `ConditionError` if it cannot be decided."""
        return bool(_Evaluation(self.source, state).value(self.tree))

    @property
    def keys(self) -> frozenset[str]:
        """The top-level state keys the condition reads (the first part of each dotted key)."""
        return frozenset(_keys_read(self.tree))


def parse_condition(source: str) -> Condition:
    """Parse `source`, raising `ConditionSyntaxError` if it is not a condition of the grammar."""
    if not isinstance(source, str):
        raise ConditionSyntaxError(f"a condition must be a string, not {type(source).__name__}")
    if len(source) > _MAX_SOURCE_LENGTH:
        raise ConditionSyntaxError(
            f"condition {source[:40]!r}... is too long: {len(source)} characters "
            f"(the limit is {_MAX_SOURCE_LENGTH})"
        )
    if not source.strip():
        raise ConditionSyntaxError(f"condition {source!r} is empty")
    return Condition(source, _Parser(source).parse())


# --- tokens --------------------------------------------------------------------------------------


class _Kind(enum.Enum):
    NUMBER = "number"
    STRING = "string"
    KEY = "key"
    KEYWORD = "keyword"
    OPERATOR = "operator"
    END = "end"


@attrs.frozen
class _Token:
    kind: _Kind
    text: str
    position: int
    value: Any = None

    def is_operator(self, text: str) -> bool:
        return self.kind is _Kind.OPERATOR and self.text == text

    def is_keyword(self, word: str) -> bool:
        return self.kind is _Kind.KEYWORD and self.text == word

    def describe(self) -> str:
        if self.kind is _Kind.END:
            return "end of input"
        return repr(_shorten(self.text))


def _shorten(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_name_start(character: str) -> bool:
    return character == "_" or character.isalpha()


def _is_name_character(character: str) -> bool:
    return character == "_" or character.isalnum()


def _syntax_error(source: str, detail: str) -> ConditionSyntaxError:
    return ConditionSyntaxError(f"condition {source!r}: {detail}")


@attrs.define
class _Lexer:
    """Reads the source one token at a time, so errors come in source order."""

    source: str
    position: int = 0

    def next_token(self) -> _Token:
        source = self.source
        start = self.position
        while start < len(source) and source[start].isspace():
            start += 1
        if start == len(source):
            token = _Token(_Kind.END, "", start)
        else:
            character = source[start]
            following = source[start + 1 : start + 2]
            if character in _DIGITS or (character == "." and following and following in _DIGITS):
                token = self._number(start)
            elif character in "'\"":
                token = self._string(start)
            elif _is_name_start(character):
                token = self._name(start)
            elif source[start : start + 2] in _TWO_CHARACTER_OPERATORS:
                token = _Token(_Kind.OPERATOR, source[start : start + 2], start)
            elif character in _ONE_CHARACTER_OPERATORS:
                token = _Token(_Kind.OPERATOR, character, start)
            else:
                hint = _CHARACTER_HINTS.get(character)
                detail = f"unexpected {character!r} at position {start}"
                raise _syntax_error(source, f"{detail} ({hint})" if hint else detail)
        self.position = start + len(token.text)
        return token

    def _digits(self, index: int) -> int:
        while index < len(self.source) and self.source[index] in _DIGITS:
            index += 1
        return index

    def _number(self, start: int) -> _Token:
        source = self.source
        end = self._digits(start)
        if source[end : end + 1] == ".":
            fraction = self._digits(end + 1)
            if fraction == end + 1:
                raise _syntax_error(
                    source,
                    f"malformed number {source[start : end + 1]!r} at position {start} "
                    "(a decimal point must be followed by digits)",
                )
            end = fraction
        if source[end : end + 1] in ("e", "E"):
            exponent = end + 1
            if source[exponent : exponent + 1] in ("+", "-"):
                exponent += 1
            if source[exponent : exponent + 1] and source[exponent] in _DIGITS:
                end = self._digits(exponent)
        if end < len(source) and (_is_name_character(source[end]) or source[end] == "."):
            rest = end
            while rest < len(source) and (_is_name_character(source[rest]) or source[rest] == "."):
                rest += 1
            raise _syntax_error(
                source, f"malformed number {_shorten(source[start:rest])!r} at position {start}"
            )
        text = source[start:end]
        is_integer = not any(mark in text for mark in ".eE")
        return _Token(_Kind.NUMBER, text, start, int(text) if is_integer else float(text))

    def _string(self, start: int) -> _Token:
        source = self.source
        quote = source[start]
        characters: list[str] = []
        index = start + 1
        while True:
            if index >= len(source):
                raise _syntax_error(source, f"unterminated string starting at position {start}")
            character = source[index]
            if character == quote:
                return _Token(_Kind.STRING, source[start : index + 1], start, "".join(characters))
            if character == "\\":
                escaped = source[index + 1 : index + 2]
                if not escaped:
                    raise _syntax_error(source, f"unterminated string starting at position {start}")
                if escaped not in _ESCAPABLE:
                    escape = source[index : index + 2]
                    raise _syntax_error(
                        source,
                        f"unknown escape {escape!r} at position {index} "
                        "(a backslash may only escape a quote or a backslash)",
                    )
                characters.append(escaped)
                index += 2
            else:
                characters.append(character)
                index += 1

    def _name(self, start: int) -> _Token:
        source = self.source
        end = start + 1
        while end < len(source) and _is_name_character(source[end]):
            end += 1
        parts = [source[start:end]]
        while end + 1 < len(source) and source[end] == "." and _is_name_start(source[end + 1]):
            part_end = end + 2
            while part_end < len(source) and _is_name_character(source[part_end]):
                part_end += 1
            parts.append(source[end + 1 : part_end])
            end = part_end
        text = source[start:end]
        if len(parts) == 1 and text in _KEYWORDS:
            return _Token(_Kind.KEYWORD, text, start)
        keyword = next((part for part in parts if part in _KEYWORDS), None)
        if keyword is not None:
            raise _syntax_error(
                source,
                f"{keyword!r} is a keyword and cannot be part of a key "
                f"({_shorten(text)!r} at position {start})",
            )
        return _Token(_Kind.KEY, text, start, tuple(parts))


# --- parsing -------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the grammar with one token of lookahead; nesting is bounded."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._lexer = _Lexer(source)
        self._token = self._lexer.next_token()
        self._depth = 0

    def parse(self) -> _Node:
        tree = self._or()
        if self._token.kind is not _Kind.END:
            raise self._unexpected(self._token)
        return tree

    def _advance(self) -> _Token:
        token = self._token
        self._token = self._lexer.next_token()
        return token

    def _error(self, detail: str) -> ConditionSyntaxError:
        return _syntax_error(self._source, detail)

    def _unexpected(self, token: _Token) -> ConditionSyntaxError:
        detail = f"unexpected {token.describe()} at position {token.position}"
        if token.is_operator("-"):
            detail += f" ({_ARITHMETIC})"
        elif token.is_operator(")"):
            detail += " (no '(' to close)"
        return self._error(detail)

    def _enter(self, token: _Token) -> None:
        self._depth += 1
        if self._depth > _MAX_DEPTH:
            raise self._error(
                f"nested too deeply at position {token.position} "
                f"(the limit is {_MAX_DEPTH} levels of parentheses, 'not' and '-')"
            )

    def _leave(self) -> None:
        self._depth -= 1

    def _or(self) -> _Node:
        operands = [self._and()]
        while self._token.is_keyword("or"):
            self._advance()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else _Or(tuple(operands))

    def _and(self) -> _Node:
        operands = [self._not()]
        while self._token.is_keyword("and"):
            self._advance()
            operands.append(self._not())
        return operands[0] if len(operands) == 1 else _And(tuple(operands))

    def _not(self) -> _Node:
        if not self._token.is_keyword("not"):
            return self._comparison()
        self._enter(self._advance())
        operand = self._not()
        self._leave()
        return _Not(operand)

    def _comparison(self) -> _Node:
        first = self._operand()
        links: list[tuple[str, _Node]] = []
        while self._token.kind is _Kind.OPERATOR and self._token.text in _COMPARISONS:
            comparison = self._advance().text
            links.append((comparison, self._operand()))
        return _Comparison(first, tuple(links)) if links else first

    def _operand(self) -> _Node:
        token = self._token
        if token.kind in (_Kind.NUMBER, _Kind.STRING):
            self._advance()
            return _Literal(token.value)
        if token.kind is _Kind.KEYWORD and token.text in _LITERAL_KEYWORDS:
            self._advance()
            return _Literal(_LITERAL_KEYWORDS[token.text])
        if token.kind is _Kind.KEY:
            self._advance()
            if self._token.is_operator("("):
                raise self._error(
                    f"function calls are not allowed ({_shorten(token.text)!r} is called "
                    f"at position {token.position})"
                )
            return _Key(token.value)
        if token.is_operator("("):
            self._enter(self._advance())
            inner = self._or()
            if not self._token.is_operator(")"):
                raise self._error(
                    f"expected ')' at position {self._token.position} to close the '(' at "
                    f"position {token.position}, found {self._token.describe()}"
                )
            self._advance()
            self._leave()
            return inner
        if token.is_operator("-"):
            self._enter(self._advance())
            operand = self._operand()
            self._leave()
            return self._negate(token, operand)
        raise self._error(
            f"expected a value at position {token.position}, found {token.describe()}"
        )

    def _negate(self, minus: _Token, operand: _Node) -> _Node:
        if isinstance(operand, _BOOLEAN_NODES):
            raise self._error(f"'-' at position {minus.position} needs a number, not a condition")
        if isinstance(operand, _Literal):
            value = operand.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._error(
                    f"'-' at position {minus.position} needs a number, not {_describe(value)}"
                )
            return _Literal(-value)
        return _Negate(operand)


# --- evaluation ----------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _describe(value: object) -> str:
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif value is None:
        shown = "null"
    else:
        shown = _shorten(repr(value), 40)
    return f"{shown} ({_type_name(value)})"


def _equal(left: object, right: object) -> bool:
    """`==` of the language: Python's, except that a boolean equals only a boolean (also nested)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(map(_equal, left, right))
    return bool(left == right)


@attrs.frozen
class _Evaluation:
    source: str
    state: Mapping[str, Any]

    def _error(self, detail: str) -> ConditionError:
        return ConditionError(f"condition {self.source!r}: {detail}")

    def value(self, node: _Node) -> Any:
        match node:
            case _Literal(value=value):
                return value
            case _Key(parts=parts):
                return self._lookup(parts)
            case _Negate(operand=operand):
                number = self.value(operand)
                if not _is_number(number):
                    raise self._error(f"cannot negate {_describe(number)}")
                return -number
            case _Not(operand=operand):
                return not self.value(operand)
            case _And(operands=operands):
                return all(self.value(operand) for operand in operands)
            case _Or(operands=operands):
                return any(self.value(operand) for operand in operands)
            case _Comparison(first=first, links=links):
                left = self.value(first)
                for comparison, operand in links:
                    right = self.value(operand)
                    if not self._compare(comparison, left, right):
                        return False
                    left = right
                return True
        raise TypeError(f"not a condition tree node: {node!r}")

    def _lookup(self, parts: tuple[str, ...]) -> Any:
        if parts[0] not in self.state:
            raise self._error(f"state has no key {parts[0]!r}")
        value = self.state[parts[0]]
        for depth, part in enumerate(parts[1:], start=1):
            read = ".".join(parts[:depth])
            if not isinstance(value, Mapping):
                raise self._error(
                    f"state has no key {'.'.join(parts)!r} because {read!r} is {_describe(value)}, "
                    "not an object"
                )
            if part not in value:
                raise self._error(
                    f"state has no key {'.'.join(parts)!r} because {read!r} has no key {part!r}"
                )
            value = value[part]
        return value

    def _compare(self, comparison: str, left: Any, right: Any) -> bool:
        if comparison == "==":
            return _equal(left, right)
        if comparison == "!=":
            return not _equal(left, right)
        if (_is_number(left) and _is_number(right)) or (
            isinstance(left, str) and isinstance(right, str)
        ):
            return _ORDERINGS[comparison](left, right)
        raise self._error(
            f"cannot compare {_describe(left)} with {_describe(right)} using {comparison}"
        )


def _keys_read(node: _Node) -> Iterator[str]:
    match node:
        case _Key(parts=parts):
            yield parts[0]
        case _Negate(operand=operand) | _Not(operand=operand):
            yield from _keys_read(operand)
        case _And(operands=operands) | _Or(operands=operands):
            for operand in operands:
                yield from _keys_read(operand)
        case _Comparison(first=first, links=links):
            yield from _keys_read(first)
            for _, operand in links:
                yield from _keys_read(operand)
