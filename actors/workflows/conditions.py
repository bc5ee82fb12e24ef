"""The condition language of graph conditional edges: parsing and evaluating `score >= threshold`.

A condition is a small, Python-like boolean expression over a run's state dict. Python's own parser
reads it (`ast.parse` in "eval" mode); the syntax tree is then walked against a whitelist of node
types and rebuilt as a small tree of our own, the one that is evaluated. Nothing goes to `eval` or
`compile`, so a condition can only read state keys, compare values and combine the results: it
cannot call, index or compute.

Grammar (case-sensitive), a subset of Python's expressions::

    expression := or_expr
    or_expr    := and_expr ('or' and_expr)*
    and_expr   := not_expr ('and' not_expr)*
    not_expr   := 'not' not_expr | comparison
    comparison := operand (COMPARE operand)*        a < b < c means a < b and b < c
    COMPARE    := '==' | '!=' | '<' | '<=' | '>' | '>='
    operand    := NUMBER | STRING | true | false | True | False | null | None
                | KEY | '(' expression ')' | '-' operand
    NUMBER     := 1, 8.5, .5, 1e3, 2.5E-3, 007      (not 1., 0x1, 1_000 or 1j as in Python)
    STRING     := '...' or "..." (no prefix, no triple quotes; a backslash escapes only a quote
                  or a backslash)
    KEY        := identifier ('.' identifier)*      a.b reads state["a"]["b"] (dict keys only)

The keywords (and, or, not, true, false, True, False, null, None) are not keys; Python's other
keywords are (`pass`, `from`, `in` are plain keys here). Any whitespace separates tokens, line
breaks included.

Semantics: `and`, `or`, `not` and comparisons produce booleans; they judge their operands by
Python truthiness and short-circuit like Python (a false link ends a comparison chain). `==` and
`!=` compare any values, but a boolean never equals a number (`true != 1`) while `1 == 1.0`.
Ordering works number with number (booleans are not numbers here) and string with string only.
A key missing from the state, or an ordering between incomparable values, raises
`ConditionError`: never a silent False. A source is at most 1000 characters and 32 levels of
nesting (parentheses, `not` and unary `-`).
"""
from __future__ import annotations

import ast
import keyword
import numbers
import operator
import re
import warnings
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
# What the copy given to Python's parser changes (see `_Reader`); `\b` leaves a keyword inside a
# longer name alone.
_NEUTRALIZED = re.compile(
    r"\s|[#\x00]|[^\x00-\x7f]|\b(?:%s)\b|(?<![\w.])(?<![eE][+-])0[0-9]+(?![\w.])"
    % "|".join(sorted(set(keyword.kwlist) - _KEYWORDS))
)
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TOKEN = re.compile(r"""[=!<>]=|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|[\w.]+|\S""", re.DOTALL)
_EXPECTS_OPERAND = re.compile(r"(?:^|[=<>(-]|(?<![\w.])(?:and|or|not))\Z")
_LOOSE_DOT = re.compile(r"(?<=[ ()])\.|\.(?=[ ()])")
_OPERATORS = frozenset({"(", ")", "-", "==", "!=", "<", "<=", ">", ">="})
_COMPARISONS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ESCAPABLE = "\\'\""
_ARITHMETIC = "arithmetic is not supported"
_HINTS = {
    "=": "use '==' to compare",
    "!": "use 'not' to negate",
    "&": "use 'and'",
    "|": "use 'or'",
    "[": "subscripts are not supported; use a dotted key such as a.b",
    ";": "a condition is a single expression",
    ")": "no '(' to close",
    **dict.fromkeys("+-*/%", _ARITHMETIC),
}
_CONSTRUCTS: dict[type[ast.expr], str] = {
    ast.Tuple: "a tuple",
    ast.List: "a list",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.Starred: "unpacking",
    ast.NamedExpr: "an assignment",
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
    return Condition(source, _Reader(source).read())


# --- parsing -------------------------------------------------------------------------------------


def _shorten(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _neutralize(match: re.Match[str]) -> str:
    text = match[0]
    if text.isspace():
        return " "
    if text[0] == "0":  # 007 as 7.0, which Python accepts: the value is read from the source
        digits = text.lstrip("0") or "0"
        return digits + "." + "0" * (len(text) - len(digits) - 1)
    if len(text) > 1:
        return "_" * len(text)
    return "a" if text.isalpha() else "0" if text.isalnum() else "?"


def _found(token: str | None) -> str:
    return "end of input" if token is None else repr(_shorten(token))


def _is_run_character(character: str) -> bool:
    return character in "._" or character.isalnum()


class _Reader:
    """Reads a condition with Python's parser, then rebuilds the tree, refusing what is not ours.

    Python parses an ASCII copy of the source, character for character, so that a position in one
    is a position in the other and Python's rules become ours: any whitespace becomes a space
    (Python refuses a line break, or an indent, in an expression); a non-ASCII letter becomes 'a'
    and any other non-ASCII character `str.isalnum` accepts '0' (a name starts with what
    `str.isalpha` accepts and goes on with what `str.isalnum` does; Python's own rule differs, and
    it normalizes names); any other non-ASCII character, '#' (a comment in Python) and NUL become
    '?', an error outside a string; Python's keywords that are not ours become underscores (they
    are plain keys here); an integer with leading zeros, which Python refuses, becomes a float of
    the same length. Names, numbers and strings are then read from the source itself. A syntax
    error of Python's is told again in our terms.
    """

    def __init__(self, source: str) -> None:
        self._source = source
        self._text = _NEUTRALIZED.sub(_neutralize, source)
        self._indent = len(self._text) - len(self._text.lstrip(" "))

    def read(self) -> _Node:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "invalid escape sequence": refused below
                body = ast.parse(self._text[self._indent :], mode="eval").body
        except SyntaxError as error:
            raise self._syntax_error(error) from None
        except (RecursionError, MemoryError):  # Python's parser on very deep nesting
            raise self._too_deep(None) from None
        return self._node(body, 0, 0)

    # positions

    def _span(self, node: ast.expr) -> tuple[int, int]:
        """Where `node` starts and ends in the source (Python's columns count UTF-8 bytes: the
        copy is ASCII, so they count characters)."""
        end = node.end_col_offset
        assert end is not None  # ast.parse places every expression
        return self._indent + node.col_offset, self._indent + end

    def _skip(self, position: int, characters: str) -> int:
        while position < len(self._text) and self._text[position] in characters:
            position += 1
        return position

    def _after(self, node: ast.expr) -> int:
        """Where the token after `node` starts (past closing parentheses)."""
        return self._skip(self._span(node)[1], " )")

    def _run_end(self, position: int) -> int:
        """Where the run of letters, digits, '_' and '.' from `position` ends."""
        while position < len(self._source) and _is_run_character(self._source[position]):
            position += 1
        return position

    def _run(self, position: int) -> tuple[int, str]:
        """The run of letters, digits, '_' and '.' through `position` (or ending there)."""
        start = position
        while start > 0 and _is_run_character(self._source[start - 1]):
            start -= 1
        return start, self._source[start : self._run_end(position)]

    # the tree

    def _node(self, node: ast.expr, floor: int, depth: int) -> _Node:
        """`node` as a tree node; `floor` is where its parent starts, `depth` the parent's depth."""
        start, end = self._span(node)
        depth = self._open(start, floor, depth)
        match node:
            case ast.BoolOp(op=boolean, values=values):
                operands = tuple(self._node(value, start, depth) for value in values)
                return _And(operands) if isinstance(boolean, ast.And) else _Or(operands)
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                first = self._node(left, start, depth)
                links: list[tuple[str, _Node]] = []
                for previous, comparison, comparator in zip([left, *comparators], ops, comparators):
                    if type(comparison) not in _COMPARISONS:
                        raise self._unexpected(self._after(previous))
                    right = self._node(comparator, start, depth)
                    links.append((_COMPARISONS[type(comparison)], right))
                return _Comparison(first, tuple(links))
            case ast.UnaryOp(op=ast.Not() | ast.USub() as op, operand=operand):
                if depth == _MAX_DEPTH:
                    raise self._too_deep(start)
                inner = self._node(operand, start, depth + 1)
                return _Not(inner) if isinstance(op, ast.Not) else self._negate(start, inner)
            case ast.Constant(value=True | False | None as value):
                return _Literal(value)
            case ast.Constant(value=str() | bytes()) | ast.JoinedStr():
                return _Literal(self._string(start, end))
            case ast.Constant(value=int() | float() | complex()):
                return _Literal(self._number(start, end))
            case ast.Name():
                text = self._source[start:end]
                if text in _LITERAL_KEYWORDS:
                    return _Literal(_LITERAL_KEYWORDS[text])
                return _Key((text,))
            case ast.Attribute():
                return self._key(node, start, end, depth)
            case ast.Call():
                raise self._call(node)
            case ast.UnaryOp() | ast.Constant():  # +x, ~x; ...
                raise self._unexpected(start)
            case ast.BinOp():
                while isinstance(node.left, ast.BinOp):  # the first operator in the source
                    node = node.left
                raise self._unexpected(self._after(node.left))
            case ast.Subscript():
                while isinstance(node.value, ast.Subscript):
                    node = node.value
                raise self._unexpected(self._after(node.value))
        kind = _CONSTRUCTS.get(type(node), f"Python's {type(node).__name__}")
        raise self._error(
            f"{kind} is not allowed ({_shorten(self._source[start:end])!r} at position {start})"
        )

    def _open(self, start: int, floor: int, depth: int) -> int:
        """`depth` plus the parentheses opened right before `start` (after `floor`), bounded."""
        gap = self._text[floor:start]
        opened = [
            position
            for position in range(start - (len(gap) - len(gap.rstrip(" ("))), start)
            if self._text[position] == "("
        ]
        if depth + len(opened) > _MAX_DEPTH:
            raise self._too_deep(opened[_MAX_DEPTH - depth])
        return depth + len(opened)

    def _negate(self, minus: int, operand: _Node) -> _Node:
        if isinstance(operand, _BOOLEAN_NODES):
            raise self._error(f"'-' at position {minus} needs a number, not a condition")
        if isinstance(operand, _Literal):
            value = operand.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._error(f"'-' at position {minus} needs a number, not {_describe(value)}")
            return _Literal(-value)
        return _Negate(operand)

    def _number(self, start: int, end: int) -> int | float:
        text = self._source[start : self._run_end(end)]  # 1and, 1.e3 are malformed, as 1.2.3
        if len(text) > end - start or not _NUMBER.fullmatch(text):
            raise self._malformed(start, text)
        return float(text) if any(mark in text for mark in ".eE") else int(text)

    def _string(self, start: int, end: int) -> str:
        literal = self._source[start:end]
        quote = literal[0]
        if quote not in "'\"":
            raise self._error(
                f"string prefixes are not supported ({_shorten(literal)!r} at position {start})"
            )
        characters: list[str] = []
        index = 1
        while literal[index] != quote:
            if literal[index] == "\\":
                if literal[index + 1] not in _ESCAPABLE:
                    raise self._error(
                        f"unknown escape {literal[index : index + 2]!r} at position "
                        f"{start + index} (a backslash may only escape a quote or a backslash)"
                    )
                index += 1
            characters.append(literal[index])
            index += 1
        if index + 1 < len(literal):  # 'a' 'b', or a triple quote: Python read past our string
            raise self._unexpected(self._skip(start + index + 1, " "))
        return "".join(characters)

    def _key(self, node: ast.Attribute, start: int, end: int, depth: int) -> _Node:
        base: ast.expr = node
        while isinstance(base, ast.Attribute):
            base = base.value
        base_start, base_end = self._span(base)
        text = self._source[start:end]
        if self._source[base_start:base_end] in _LITERAL_KEYWORDS:
            raise self._keyword_in_key(self._source[base_start:base_end], text, start)
        if not isinstance(base, ast.Name):
            self._node(base, start, depth)  # its own refusal (a call, a subscript) comes first
            raise self._unexpected(self._after(base))
        loose = _LOOSE_DOT.search(self._text, start, end)
        if loose is not None:
            raise self._unexpected(loose.start() + loose[0].index("."))
        parts = tuple(text.split("."))
        keyword = next((part for part in parts if part in _LITERAL_KEYWORDS), None)
        if keyword is not None:
            raise self._keyword_in_key(keyword, text, start)
        return _Key(parts)

    def _call(self, node: ast.Call) -> ConditionSyntaxError:
        call, inner = node, node.func
        while isinstance(inner, ast.Call | ast.Attribute | ast.Subscript):  # the first call
            if isinstance(inner, ast.Call):
                call, inner = inner, inner.func
            else:
                inner = inner.value
        start, end = self._span(call.func)
        return self._error(
            f"function calls are not allowed ({_shorten(self._source[start:end])!r} is called "
            f"at position {start})"
        )

    # refusals

    def _error(self, detail: str) -> ConditionSyntaxError:
        return ConditionSyntaxError(f"condition {self._source!r}: {detail}")

    def _token(self, position: int) -> str | None:
        match = _TOKEN.match(self._source, position)
        return match[0] if match else None

    def _unexpected(self, position: int) -> ConditionSyntaxError:
        token = self._token(position)
        detail = f"unexpected {_found(token)} at position {position}"
        hint = _HINTS.get(token or "")
        return self._error(f"{detail} ({hint})" if hint else detail)

    def _too_deep(self, position: int | None) -> ConditionSyntaxError:
        where = "" if position is None else f" at position {position}"
        return self._error(
            f"nested too deeply{where} "
            f"(the limit is {_MAX_DEPTH} levels of parentheses, 'not' and '-')"
        )

    def _malformed(self, start: int, run: str) -> ConditionSyntaxError:
        detail = f"malformed number {_shorten(run)!r} at position {start}"
        if re.search(r"\.(?![0-9])", run):
            detail += " (a decimal point must be followed by digits)"
        return self._error(detail)

    def _keyword_in_key(self, word: str, key: str, start: int) -> ConditionSyntaxError:
        return self._error(
            f"{word!r} is a keyword and cannot be part of a key "
            f"({_shorten(key)!r} at position {start})"
        )

    def _syntax_error(self, error: SyntaxError) -> ConditionSyntaxError:
        """Python's syntax error told in the terms of this grammar, at the token it names."""
        source, message = self._source, error.msg
        position = len(source) if not error.offset else self._indent + error.offset - 1
        rest = source[position:]
        position = min(position + len(rest) - len(rest.lstrip()), len(source))
        if message.startswith("too many nested"):
            return self._too_deep(None)
        if message.startswith("unterminated"):
            return self._error(f"unterminated string starting at position {position}")
        if message.startswith("'(' was never closed"):
            if not _EXPECTS_OPERAND.search(source.rstrip()):
                return self._error(
                    f"expected ')' at position {len(source)} to close the '(' at position "
                    f"{position}, found end of input"
                )
            position = len(source)  # `(a or`: what is missing first is a value
        if "continuation character" in message:  # a backslash outside a string
            return self._unexpected(source.rfind("\\", 0, position + 1))
        before = source[:position].rstrip()
        for at in (position, len(before) - 1) if before else (position,):
            run_start, run = self._run(at)
            if re.match(r"\.?[0-9]", run) and ("literal" in message or not _NUMBER.fullmatch(run)):
                return self._malformed(run_start, run)
        token = self._token(position)
        if before.endswith("."):
            if token is not None and token.split(".")[0] in _KEYWORDS:
                run_start, run = self._run(position)
                return self._keyword_in_key(token.split(".")[0], run, run_start)
            return self._unexpected(len(before) - 1)
        if before[-1:] in tuple("+*/%@&|^~"):  # an operator of Python's, waiting for its operand
            return self._unexpected(len(before) - 1)
        foreign = token is not None and not (
            token in _OPERATORS or token[0] in "'\"" or _is_run_character(token[0])
        )
        if foreign or not _EXPECTS_OPERAND.search(before):
            return self._unexpected(position)
        return self._error(f"expected a value at position {position}, found {_found(token)}")


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
