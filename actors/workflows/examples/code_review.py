"""The code-review example graph: its five tools, its sample input and its graph definition.

The tools follow the graph-engine tool contract: `tool(state, **params) -> dict of state updates`,
they read a copy of the run's state and never mutate it, and they raise `ValueError` with a message
naming the missing key or the unparsable line. Every tool that needs the code re-parses
`state["code"]`, because `suggest_improvements` rewrites it and the graph loops back to `analyze`:
that is how a second pass can score higher than the first.

Definitions shared by the tools:
- A function is every `def` and `async def` (nested ones and methods included), in source order;
  its line is the line of the `def` keyword (decorators excluded).
- Complexity is 1 + one per `if`/`elif`, `for`, `while`, `except` handler, conditional
  expression, comprehension `if` and `match` case, + (operands - 1) per `and`/`or` chain. Nested
  functions and classes are scored on their own, not added to the enclosing function; lambdas are
  part of the function they appear in; `assert` does not count.
- Several statements on one line are siblings joined by `;` (found from the syntax tree, so a `;`
  inside a string does not count). A compound statement's one-line body (`def f(): pass`) is not.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from collections import Counter
from importlib import resources
from typing import Any

import attrs

_Function = ast.FunctionDef | ast.AsyncFunctionDef

# The example input: three clean, simple functions without docstrings, so a full review finds
# 3 functions and 3 issues and scores 10 - 3 x 0.5 = 8.5.
SAMPLE_CODE = '''\
TAX_RATE = 0.08


def subtotal(items):
    return sum(item["price"] * item["quantity"] for item in items)


def apply_discount(amount, percent):
    if percent <= 0:
        return amount
    return amount * (1 - percent / 100)


def order_total(items, discount_percent=0):
    discounted = apply_discount(subtotal(items), discount_percent)
    return round(discounted * (1 + TAX_RATE), 2)
'''

_GRAPH_PACKAGE, _GRAPH_FILE = "actors.workflows.examples", "code_review_graph.json"


def code_review_graph() -> dict[str, Any]:
    """The example graph definition (`code_review_graph.json`), as sent to `POST /graph/create`."""
    text = resources.files(_GRAPH_PACKAGE).joinpath(_GRAPH_FILE).read_text(encoding="utf-8")
    definition: dict[str, Any] = json.loads(text)
    return definition


# --- reading the state ---------------------------------------------------------------------------


def _code(state: dict[str, Any]) -> str:
    if "code" not in state:
        raise ValueError("state has no 'code' to review")
    code = state["code"]
    if not isinstance(code, str):
        kind = type(code).__name__
        raise ValueError(f"state['code'] must be a string of Python source, got {kind}")
    return code


def _parse(code: str) -> ast.Module:
    try:
        return ast.parse(code)
    except SyntaxError as error:
        raise ValueError(f"code does not parse: line {error.lineno}: {error.msg}") from error
    except ValueError as error:
        raise ValueError(f"code does not parse: {error}") from error


def _number(state: dict[str, Any], key: str, producer: str) -> float:
    if key not in state:
        raise ValueError(f"state has no '{key}'; run {producer} first")
    value = state[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"state['{key}'] must be a number, got {type(value).__name__}")
    return value


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"parameter '{name}' must be a positive integer, got {value!r}")
    return value


# --- analysis ------------------------------------------------------------------------------------


def _functions(tree: ast.Module) -> list[_Function]:
    found = [node for node in ast.walk(tree) if isinstance(node, _Function)]
    return sorted(found, key=lambda fn: (fn.lineno, fn.col_offset))


def _arg_names(fn: _Function) -> list[str]:
    args = fn.args
    names = [arg.arg for arg in (*args.posonlyargs, *args.args)]
    if args.vararg is not None:
        names.append(f"*{args.vararg.arg}")
    names.extend(arg.arg for arg in args.kwonlyargs)
    if args.kwarg is not None:
        names.append(f"**{args.kwarg.arg}")
    return names


_BRANCH_NODES = (
    ast.If, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.IfExp, ast.match_case
)


def _branches(node: ast.AST) -> int:
    if isinstance(node, _BRANCH_NODES):
        return 1
    if isinstance(node, ast.BoolOp):
        return len(node.values) - 1
    if isinstance(node, ast.comprehension):
        return len(node.ifs)
    return 0


def _complexity(fn: _Function) -> int:
    score = 1
    pending: list[ast.AST] = list(fn.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        score += _branches(node)
        pending.extend(ast.iter_child_nodes(node))
    return score


def _score_keys(functions: list[_Function]) -> list[str]:
    """Each function's key in `complexity_scores`: its name, or `name@line` for a shared name."""
    counts = Counter(fn.name for fn in functions)
    return [fn.name if counts[fn.name] == 1 else f"{fn.name}@{fn.lineno}" for fn in functions]


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_LINE_END = re.compile(r"\r\n|\r|\n")
_CONTINUATION = re.compile(r"\\(?:\r\n|\r|\n)")


def _physical_lines(code: str) -> list[str]:
    """The lines as Python numbers them (`\\r\\n`, `\\r` and `\\n` end a line), endings kept."""
    return _LINE.findall(code)


def _statement_runs(tree: ast.Module) -> list[list[ast.stmt]]:
    """Sibling statements joined by `;` on a line: each run has two or more statements."""
    runs: list[list[ast.stmt]] = []
    for node in ast.walk(tree):
        for _, block in ast.iter_fields(node):
            if not isinstance(block, list) or not block or not isinstance(block[0], ast.stmt):
                continue
            run = [block[0]]
            for statement in block[1:]:
                if statement.lineno == run[-1].end_lineno:
                    run.append(statement)
                    continue
                if len(run) > 1:
                    runs.append(run)
                run = [statement]
            if len(run) > 1:
                runs.append(run)
    return sorted(runs, key=lambda run: (run[1].lineno, run[1].col_offset))


_ISSUE_TYPES = ("long_line", "multiple_statements", "missing_docstring", "high_complexity")


def _issue_order(issue: dict[str, Any]) -> tuple[int, int]:
    return issue["line"], _ISSUE_TYPES.index(issue["type"])


def _find_issues(code: str, max_line_length: int, max_complexity: int) -> list[dict[str, Any]]:
    tree = _parse(code)
    issues: list[dict[str, Any]] = []
    for number, line in enumerate(_physical_lines(code), start=1):
        length = len(line.rstrip("\r\n"))
        if length > max_line_length:
            message = f"line is {length} characters long (limit {max_line_length})"
            issues.append({"type": "long_line", "line": number, "message": message})
    for run in _statement_runs(tree):
        message = f"{len(run)} statements on one line"
        issues.append({"type": "multiple_statements", "line": run[1].lineno, "message": message})
    for fn in _functions(tree):
        if ast.get_docstring(fn) is None:
            issues.append(
                {
                    "type": "missing_docstring",
                    "line": fn.lineno,
                    "function": fn.name,
                    "message": f"function '{fn.name}' has no docstring",
                }
            )
        complexity = _complexity(fn)
        if complexity > max_complexity:
            issues.append(
                {
                    "type": "high_complexity",
                    "line": fn.lineno,
                    "function": fn.name,
                    "message": f"function '{fn.name}' has complexity {complexity} "
                    f"(limit {max_complexity})",
                }
            )
    return sorted(issues, key=_issue_order)


# --- fixing --------------------------------------------------------------------------------------


@attrs.frozen
class _Edit:
    """Replace `code[start:end]` with `text` (character offsets into the original code)."""

    start: int
    end: int
    text: str


@attrs.frozen
class _Source:
    """The code with its physical lines, translating the syntax tree's positions into offsets."""

    code: str
    lines: list[str]
    starts: list[int]
    newline: str

    @classmethod
    def of(cls, code: str) -> _Source:
        lines = _physical_lines(code)
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line))
        ending = _LINE_END.search(code)
        return cls(code, lines, starts, ending.group() if ending else "\n")

    def offset(self, lineno: int, byte_col: int) -> int:
        """The character offset of a tree position (the tree counts columns in UTF-8 bytes)."""
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:byte_col].decode("utf-8"))

    def start(self, node: ast.stmt | ast.expr | ast.arg) -> int:
        return self.offset(node.lineno, node.col_offset)

    def end(self, node: ast.stmt | ast.expr | ast.arg) -> int:
        assert node.end_lineno is not None and node.end_col_offset is not None  # parsed source
        return self.offset(node.end_lineno, node.end_col_offset)

    def indent_before(self, position: int, lineno: int) -> str | None:
        """The whitespace before `position` on line `lineno` if the statement there begins its
        logical line (nothing else before it, no backslash continuation into it), else None."""
        prefix = self.code[self.starts[lineno - 1] : position]
        continued = lineno > 1 and self.lines[lineno - 2].rstrip("\r\n").endswith("\\")
        if prefix.strip(" \t\f") or continued:
            return None
        return prefix


def _placeholder_docstring(name: str) -> str:
    return f'"""TODO: describe what {name}() does."""'


def _header_colon(source: _Source, fn: _Function) -> int:
    """The offset of the `:` that ends the function's header.

    Scanning starts after the last node of the signature (so annotations' and lambdas' colons are
    behind it); only `)`, `,`, `->`, whitespace and comments can lie between it and the colon."""
    header_nodes = [
        node
        for root in (fn.args, fn.returns, *getattr(fn, "type_params", ()))
        if root is not None
        for node in ast.walk(root)
        if isinstance(node, ast.stmt | ast.expr | ast.arg)
    ]
    position = max((source.end(node) for node in header_nodes), default=source.start(fn))
    while source.code[position] != ":":
        if source.code[position] == "#":
            line_end = _LINE_END.search(source.code, position)
            assert line_end is not None  # a comment inside a header ends before its colon
            position = line_end.start()
        position += 1
    return position


def _docstring_edit(source: _Source, fn: _Function) -> tuple[_Edit, str | None] | None:
    """The edit that gives `fn` a placeholder docstring, and the indentation of the body when the
    edit turns a one-line body into a block (None when the body already was a block).
    None when the layout is too unusual to edit safely."""
    first = fn.body[0]
    colon = _header_colon(source, fn)
    gap = source.code[colon + 1 : source.start(first)]
    if _CONTINUATION.sub("", gap).strip(" \t\f"):
        decorators = getattr(first, "decorator_list", None)
        first_lineno = decorators[0].lineno if decorators else first.lineno
        line_start = source.starts[first_lineno - 1]
        text = source.lines[first_lineno - 1]
        indent = text[: len(text) - len(text.lstrip(" \t\f"))]
        if source.indent_before(line_start + len(indent), first_lineno) is None:
            return None
        text = indent + _placeholder_docstring(fn.name) + source.newline
        return _Edit(line_start, line_start, text), None
    def_indent = source.indent_before(source.start(fn), fn.lineno)
    if def_indent is None:
        return None
    indent = def_indent + ("\t" if "\t" in def_indent else "    ")
    text = source.newline + indent + _placeholder_docstring(fn.name) + source.newline + indent
    return _Edit(colon + 1, source.start(first), text), indent


def _split_edits(source: _Source, run: list[ast.stmt], indent: str | None) -> list[_Edit] | None:
    """The edits that put each statement of `run` on its own line at `indent` (the indentation of
    its block, None if the run does not begin its logical line); None when that is not safe.

    Statements of a run share a line, so only `;` and spaces lie between them."""
    if indent is None:
        indent = source.indent_before(source.start(run[0]), run[0].lineno)
        if indent is None:
            return None
    return [
        _Edit(source.end(before), source.start(after), source.newline + indent)
        for before, after in itertools.pairwise(run)
    ]


def _apply(code: str, edits: list[_Edit]) -> str:
    for edit in sorted(edits, key=lambda edit: edit.start, reverse=True):
        code = code[: edit.start] + edit.text + code[edit.end :]
    return code


def _fixes(code: str) -> tuple[str, set[tuple[str, int]]]:
    """The code with placeholder docstrings and split `;` lines, and the (issue type, line) of each
    fix. Fixes are derived from the code itself, so they do not depend on detection limits."""
    source = _Source.of(code)
    tree = _parse(code)
    edits: list[_Edit] = []
    fixed: set[tuple[str, int]] = set()
    block_indents: dict[int, str] = {}
    for fn in _functions(tree):
        if ast.get_docstring(fn) is not None:
            continue
        found = _docstring_edit(source, fn)
        if found is None:
            continue
        edit, body_indent = found
        edits.append(edit)
        fixed.add(("missing_docstring", fn.lineno))
        if body_indent is not None:
            block_indents[id(fn.body[0])] = body_indent
    for run in _statement_runs(tree):
        split = _split_edits(source, run, block_indents.get(id(run[0])))
        if split is not None:
            edits.extend(split)
            fixed.add(("multiple_statements", run[1].lineno))
    return _apply(code, edits), fixed


def _issues(state: dict[str, Any]) -> list[dict[str, Any]]:
    if "issues" not in state:
        raise ValueError("state has no 'issues'; run detect_issues first")
    issues = state["issues"]
    if not isinstance(issues, list):
        raise ValueError(f"state['issues'] must be a list, got {type(issues).__name__}")
    for index, issue in enumerate(issues):
        if not (
            isinstance(issue, dict)
            and isinstance(issue.get("type"), str)
            and isinstance(issue.get("line"), int)
            and isinstance(issue.get("message"), str)
        ):
            raise ValueError(
                f"state['issues'][{index}] must be an object with a string 'type', "
                "an integer 'line' and a string 'message'"
            )
    return issues


_ADVICE = {
    "missing_docstring": "add a docstring saying what it does",
    "multiple_statements": "put each statement on its own line",
    "long_line": "shorten or wrap it",
    "high_complexity": "split it into smaller functions",
}
_DONE = {
    "missing_docstring": "added a placeholder docstring, replace it with a real description",
    "multiple_statements": "split them onto separate lines",
}


def _suggestion(issue: dict[str, Any], fixed: bool) -> str:
    kind, line, message = issue["type"], issue["line"], issue["message"]
    advice = _DONE[kind] if fixed else _ADVICE.get(kind)
    return f"Line {line}: {message}; {advice}." if advice else f"Line {line}: {message}."


# --- the tools -----------------------------------------------------------------------------------


def extract_functions(state: dict[str, Any]) -> dict[str, Any]:
    """List every function in the code (name, line, arguments) in source order."""
    tree = _parse(_code(state))
    functions = [
        {"name": fn.name, "line": fn.lineno, "args": _arg_names(fn)} for fn in _functions(tree)
    ]
    return {"functions": functions, "function_count": len(functions)}


def check_complexity(state: dict[str, Any]) -> dict[str, Any]:
    """Score each function's cyclomatic complexity and their average.

    `complexity_scores` maps each function's name to its score; functions sharing a name are keyed
    `name@line` instead (every one of them), so no score is lost."""
    functions = _functions(_parse(_code(state)))
    scores = [_complexity(fn) for fn in functions]
    average = sum(scores) / len(scores) if scores else 0.0
    return {
        "complexity_scores": dict(zip(_score_keys(functions), scores, strict=True)),
        "avg_complexity": float(average),
    }


def detect_issues(
    state: dict[str, Any], max_line_length: int = 100, max_complexity: int = 10
) -> dict[str, Any]:
    """Find long lines, several statements on a line, missing docstrings and complex functions.

    Each issue is `{"type", "line", "message"}` (+ `"function"` for the last two kinds), ordered by
    line."""
    code = _code(state)
    issues = _find_issues(
        code,
        _positive_int("max_line_length", max_line_length),
        _positive_int("max_complexity", max_complexity),
    )
    return {"issues": issues, "issue_count": len(issues)}


def suggest_improvements(state: dict[str, Any]) -> dict[str, Any]:
    """Suggest a fix for each issue and apply the safe ones (docstrings, one statement per line).

    Returns `suggestions` (one per entry of `issues`, line numbers of the code as it was), the
    fixed `code` and `fixes_applied`. Every function without a docstring gets a placeholder one
    (a one-line body such as `def f(): pass` becomes a block); `a = 1; b = 2` lines are split when
    the statements begin their own line or a one-line function body (not after `if x:` and the
    like: those are only suggested). Long lines and complexity are only suggested."""
    code = _code(state)
    issues = _issues(state)
    new_code, fixed = _fixes(code)
    suggestions = [
        _suggestion(issue, (issue["type"], issue["line"]) in fixed) for issue in issues
    ]
    return {"suggestions": suggestions, "code": new_code, "fixes_applied": len(fixed)}


def check_quality_score(state: dict[str, Any], threshold: float = 7) -> dict[str, Any]:
    """Score the code 0-10 from its issue count and average complexity.

    10 - min(0.5 x issues, 5), - 2 if the average complexity is above 10, - 1 if above 5, rounded to
    one decimal. Also sets `threshold` (this parameter) when the state has none, so the graph's
    condition `quality_score >= threshold` always finds its key."""
    issue_count = _number(state, "issue_count", "detect_issues")
    average = _number(state, "avg_complexity", "check_complexity")
    score = 10 - min(0.5 * issue_count, 5)
    if average > 10:
        score -= 2
    elif average > 5:
        score -= 1
    updates: dict[str, Any] = {"quality_score": round(min(max(score, 0.0), 10.0), 1)}
    if "threshold" not in state:
        updates["threshold"] = threshold
    return updates


CODE_REVIEW_TOOLS = (
    extract_functions,
    check_complexity,
    detect_issues,
    suggest_improvements,
    check_quality_score,
)
