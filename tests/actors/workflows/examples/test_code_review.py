"""actors/workflows/examples/code_review.py: each tool's exact output on small inputs, their errors,
the sample's full review (3 functions, 8.5), the graph's loop done by hand (a pass that fixes the
code scores higher on the next pass; unfixable issues score the same every pass), generated
programs that `suggest_improvements` must keep valid, and the example graph file."""

from __future__ import annotations

import ast
import copy
import json
import keyword
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.workflows.examples import code_review
from actors.workflows.examples.code_review import (
    CODE_REVIEW_TOOLS,
    SAMPLE_CODE,
    check_complexity,
    check_quality_score,
    code_review_graph,
    detect_issues,
    extract_functions,
    suggest_improvements,
)


def merged(state: dict[str, Any], tool: Any, **params: Any) -> dict[str, Any]:
    """What the engine does with one node: the tool gets a copy, its updates are merged."""
    return {**state, **tool(copy.deepcopy(state), **params)}


def review(code: str) -> dict[str, Any]:
    """The graph's first pass: extract, analyze, detect, suggest, check_quality."""
    state: dict[str, Any] = {"code": code, "threshold": 7}
    for tool in CODE_REVIEW_TOOLS:
        state = merged(state, tool)
    return state


def loop_pass(state: dict[str, Any]) -> dict[str, Any]:
    """One more pass around the loop (`check_quality` false -> `analyze`)."""
    for tool in CODE_REVIEW_TOOLS[1:]:
        state = merged(state, tool)
    return state


def suggested(code: str) -> dict[str, Any]:
    return suggest_improvements({"code": code, **detect_issues({"code": code})})


# --- extract_functions ----------------------------------------------------------------------------


def test_extract_functions_lists_every_def_in_source_order_with_its_arguments() -> None:
    code = (
        "import functools\n"
        "\n"
        "def plain(a, b=1):\n"
        "    def inner(*args, key, **kwargs):\n"
        "        return key\n"
        "    return inner\n"
        "\n"
        "async def fetch(url, /, timeout: float = 1.0):\n"
        "    return url\n"
        "\n"
        "class Cart:\n"
        "    @functools.cache\n"
        "    def total(self): return 0\n"
    )
    assert extract_functions({"code": code}) == {
        "functions": [
            {"name": "plain", "line": 3, "args": ["a", "b"]},
            {"name": "inner", "line": 4, "args": ["*args", "key", "**kwargs"]},
            {"name": "fetch", "line": 8, "args": ["url", "timeout"]},
            {"name": "total", "line": 13, "args": ["self"]},
        ],
        "function_count": 4,
    }


def test_extract_functions_on_code_without_functions() -> None:
    assert extract_functions({"code": "x = 1\n"}) == {"functions": [], "function_count": 0}
    assert extract_functions({"code": ""}) == {"functions": [], "function_count": 0}


# --- check_complexity -----------------------------------------------------------------------------

BRANCHY = """\
def straight():
    return 1

def if_elif(x):
    if x > 1:
        return 1
    elif x < 0:
        return -1
    else:
        return 0

def loops(items):
    for item in items:
        while item:
            item -= 1

def handlers():
    try:
        pass
    except ValueError:
        pass
    except KeyError:
        pass
    finally:
        pass

def ternary_and_bools(a, b, c):
    return (a if b else c) and b and c or a

def comprehension(items):
    return [x for x in items if x if x > 1]

def matching(command):
    match command:
        case "go":
            return 1
        case "stop":
            return 2
        case _:
            return 0

def outer(flag):
    def nested(y):
        if y:
            return y
    return lambda: 1 if flag else 2
"""


def test_check_complexity_counts_each_kind_of_branch() -> None:
    result = check_complexity({"code": BRANCHY})
    assert result["complexity_scores"] == {
        "straight": 1,
        "if_elif": 3,
        "loops": 3,
        "handlers": 3,
        # one conditional expression, `... and b and c` (+2), `... or a` (+1)
        "ternary_and_bools": 5,
        "comprehension": 3,
        "matching": 4,
        # the nested function's `if` is its own; the lambda's conditional expression is outer's
        "outer": 2,
        "nested": 2,
    }
    assert result["avg_complexity"] == pytest.approx(26 / 9)


def test_check_complexity_keys_functions_sharing_a_name_by_line() -> None:
    code = (
        "class A:\n"
        "    def run(self):\n"
        "        return 1\n"
        "class B:\n"
        "    def run(self):\n"
        "        return 1 if self else 2\n"
        "def main():\n"
        "    pass\n"
    )
    assert check_complexity({"code": code}) == {
        "complexity_scores": {"run@2": 1, "run@5": 2, "main": 1},
        "avg_complexity": pytest.approx(4 / 3),
    }


def test_check_complexity_reads_the_code_not_an_earlier_function_list() -> None:
    stale = {"functions": [{"name": "gone", "line": 1, "args": []}], "function_count": 1}
    assert check_complexity({"code": "x = 1\n", **stale}) == {
        "complexity_scores": {},
        "avg_complexity": 0.0,
    }
    assert isinstance(check_complexity({"code": ""})["avg_complexity"], float)


# --- detect_issues --------------------------------------------------------------------------------


def test_detect_issues_finds_each_kind_in_line_order() -> None:
    long_value = "x" * 95
    code = (
        "def documented():\n"
        '    """Says what it does."""\n'
        "    a = 1; b = 2; c = 3\n"
        "    return 'semicolon; inside a string'\n"
        "\n"
        "def bare(flag):\n"
        "    return 1 if flag else 2\n"
        "\n"
        f"LONG = '{long_value}'\n"
    )
    assert detect_issues({"code": code}, max_complexity=1) == {
        "issues": [
            {"type": "multiple_statements", "line": 3, "message": "3 statements on one line"},
            {
                "type": "missing_docstring",
                "line": 6,
                "function": "bare",
                "message": "function 'bare' has no docstring",
            },
            {
                "type": "high_complexity",
                "line": 6,
                "function": "bare",
                "message": "function 'bare' has complexity 2 (limit 1)",
            },
            {
                "type": "long_line",
                "line": 9,
                "message": "line is 104 characters long (limit 100)",
            },
        ],
        "issue_count": 4,
    }


def test_detect_issues_defaults_and_params() -> None:
    code = '"""A module."""\n\ndef f():\n    """Doc."""\n    return 1 if f else 2\n'
    assert detect_issues({"code": code}) == {"issues": [], "issue_count": 0}
    limited = detect_issues({"code": code}, max_line_length=20, max_complexity=1)
    assert [(issue["type"], issue["line"]) for issue in limited["issues"]] == [
        ("high_complexity", 3),
        ("long_line", 5),
    ]
    with pytest.raises(ValueError, match="parameter 'max_line_length' must be a positive integer"):
        detect_issues({"code": code}, max_line_length=0)


def test_detect_issues_does_not_count_a_one_line_body_as_several_statements() -> None:
    assert detect_issues({"code": "def hello(): pass"})["issues"] == [
        {
            "type": "missing_docstring",
            "line": 1,
            "function": "hello",
            "message": "function 'hello' has no docstring",
        }
    ]


# --- suggest_improvements -------------------------------------------------------------------------


def test_suggest_improvements_fixes_docstrings_and_semicolons_and_suggests_the_rest() -> None:
    code = (
        "import functools\n"
        "\n"
        "class Cart:\n"
        "    @functools.cache\n"
        "    def total(self, items):\n"
        "        subtotal = sum(items); tax = subtotal * 0.1\n"
        "        return subtotal + tax\n"
        "\n"
        "if __name__ == '__main__': print(1); print(2)\n"
        f"NOTE = '{'n' * 100}'\n"
    )
    state = {"code": code, **detect_issues({"code": code})}
    assert suggest_improvements(state) == {
        "suggestions": [
            (
                "Line 5: function 'total' has no docstring; added a placeholder docstring, "
                "replace it with a real description."
            ),
            "Line 6: 2 statements on one line; split them onto separate lines.",
            "Line 9: 2 statements on one line; put each statement on its own line.",
            "Line 10: line is 109 characters long (limit 100); shorten or wrap it.",
        ],
        "code": (
            "import functools\n"
            "\n"
            "class Cart:\n"
            "    @functools.cache\n"
            "    def total(self, items):\n"
            '        """TODO: describe what total() does."""\n'
            "        subtotal = sum(items)\n"
            "        tax = subtotal * 0.1\n"
            "        return subtotal + tax\n"
            "\n"
            "if __name__ == '__main__': print(1); print(2)\n"
            f"NOTE = '{'n' * 100}'\n"
        ),
        "fixes_applied": 2,
    }


def test_suggest_improvements_turns_a_one_line_function_into_a_block() -> None:
    result = suggested("def hello(): pass")
    assert result["code"] == 'def hello():\n    """TODO: describe what hello() does."""\n    pass'
    assert result["fixes_applied"] == 1
    assert extract_functions(result)["functions"] == [{"name": "hello", "line": 1, "args": []}]
    assert detect_issues(result)["issues"] == []


def test_suggest_improvements_splits_a_one_line_body_and_keeps_its_comment() -> None:
    result = suggested("class A:\n    async def go(self): a = 1; return a  # done\n")
    assert result["code"] == (
        "class A:\n"
        "    async def go(self):\n"
        '        """TODO: describe what go() does."""\n'
        "        a = 1\n"
        "        return a  # done\n"
    )
    assert result["fixes_applied"] == 2


def test_suggest_improvements_puts_the_docstring_above_a_decorated_first_statement() -> None:
    code = "def outer():\n    @decorator\n    def inner(): pass\n    return inner\n"
    assert suggested(code)["code"] == (
        "def outer():\n"
        '    """TODO: describe what outer() does."""\n'
        "    @decorator\n"
        "    def inner():\n"
        '        """TODO: describe what inner() does."""\n'
        "        pass\n"
        "    return inner\n"
    )


def test_suggest_improvements_keeps_tabs_and_windows_line_endings() -> None:
    code = "def f(x):\r\n\tif x:\r\n\t\ta = 1; b = 2\r\n\treturn x\r\n"
    assert suggested(code)["code"] == (
        'def f(x):\r\n\t"""TODO: describe what f() does."""\r\n'
        "\tif x:\r\n\t\ta = 1\r\n\t\tb = 2\r\n\treturn x\r\n"
    )


def test_suggest_improvements_inserts_after_a_multiline_signature_with_comments() -> None:
    code = "def f(\n    a: int,  # colon: here\n) -> (int):\n    # a comment\n    return a\n"
    assert suggested(code)["code"] == (
        "def f(\n    a: int,  # colon: here\n) -> (int):\n    # a comment\n"
        '    """TODO: describe what f() does."""\n    return a\n'
    )


def test_suggest_improvements_with_nothing_to_fix_returns_the_code_unchanged() -> None:
    code = 'def f():\n    """Doc."""\n    return 1\n'
    assert suggested(code) == {"suggestions": [], "code": code, "fixes_applied": 0}


# --- check_quality_score --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issue_count", "avg_complexity", "score"),
    [
        (0, 1.0, 10.0),
        (3, 4 / 3, 8.5),
        (8, 2.0, 6.0),
        (10, 1.0, 5.0),
        (40, 1.0, 5.0),
        (1, 5.0, 9.5),
        (1, 5.5, 8.5),
        (0, 10.0, 9.0),
        (0, 10.5, 8.0),
        (40, 30.0, 3.0),
    ],
)
def test_check_quality_score(issue_count: int, avg_complexity: float, score: float) -> None:
    state = {"issue_count": issue_count, "avg_complexity": avg_complexity, "threshold": 7}
    assert check_quality_score(state) == {"quality_score": score}


def test_check_quality_score_supplies_the_threshold_only_when_the_state_has_none() -> None:
    state = {"issue_count": 3, "avg_complexity": 1.0}
    assert check_quality_score(state) == {"quality_score": 8.5, "threshold": 7}
    assert check_quality_score(state, threshold=9) == {"quality_score": 8.5, "threshold": 9}
    assert check_quality_score({**state, "threshold": 3}, threshold=9) == {"quality_score": 8.5}


# --- errors ---------------------------------------------------------------------------------------

CODE_TOOLS = (extract_functions, check_complexity, detect_issues, suggest_improvements)


@pytest.mark.parametrize("tool", CODE_TOOLS, ids=lambda tool: tool.__name__)
def test_code_tools_name_a_missing_wrong_or_unparsable_code(tool: Any) -> None:
    with pytest.raises(ValueError, match="state has no 'code' to review"):
        tool({"issues": []})
    with pytest.raises(ValueError, match=r"state\['code'\] must be a string .*got int"):
        tool({"code": 42, "issues": []})
    with pytest.raises(ValueError, match="code does not parse: line 3: invalid syntax"):
        tool({"code": "x = 1\n\ndef broken(:\n    pass\n", "issues": []})


def test_suggest_improvements_needs_the_issues() -> None:
    with pytest.raises(ValueError, match="state has no 'issues'; run detect_issues first"):
        suggest_improvements({"code": "x = 1"})
    with pytest.raises(ValueError, match=r"state\['issues'\]\[1\] must be an object"):
        issues = [{"type": "t", "line": 1, "message": "m"}, 3]
        suggest_improvements({"code": "x = 1", "issues": issues})


def test_check_quality_score_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="state has no 'issue_count'; run detect_issues first"):
        check_quality_score({"avg_complexity": 1.0})
    with pytest.raises(ValueError, match="state has no 'avg_complexity'; run check_complexity"):
        check_quality_score({"issue_count": 1})
    with pytest.raises(ValueError, match=r"state\['issue_count'\] must be a number, got str"):
        check_quality_score({"issue_count": "3", "avg_complexity": 1.0})


# --- the tool contract ----------------------------------------------------------------------------


def test_tools_leave_their_state_alone_and_return_json_values() -> None:
    state: dict[str, Any] = {"code": "def hello(): pass\nx = 1; y = 2\n", "threshold": 7}
    for tool in CODE_REVIEW_TOOLS:
        before = copy.deepcopy(state)
        updates = tool(state)
        assert state == before, tool.__name__
        assert json.loads(json.dumps(updates)) == updates
        state = {**state, **updates}


def test_each_tool_describes_itself_on_its_first_docstring_line() -> None:
    for tool in CODE_REVIEW_TOOLS:
        first_line = (tool.__doc__ or "").splitlines()[0]
        assert first_line.endswith("."), tool.__name__
        assert len(first_line) > 20, tool.__name__


# --- the example, and the loop --------------------------------------------------------------------


def test_sample_code_review_finds_three_functions_and_scores_8_5() -> None:
    state = review(SAMPLE_CODE)
    assert state["function_count"] == 3
    assert [issue["type"] for issue in state["issues"]] == ["missing_docstring"] * 3
    assert state["quality_score"] == 8.5
    assert state["quality_score"] >= state["threshold"]  # the graph ends after one pass


def test_a_pass_that_fixes_the_code_scores_higher_on_the_next_pass() -> None:
    code = "\n\n".join(f"def step_{i}(value):\n    return value + {i}" for i in range(8)) + "\n"
    first = review(code)
    assert first["quality_score"] == 6.0
    assert first["quality_score"] < first["threshold"]  # the graph loops back to analyze
    second = loop_pass(first)
    assert second["issue_count"] == 0
    assert second["quality_score"] == 10.0
    functions = extract_functions(second)["functions"]
    names = [(function["name"], function["args"]) for function in functions]
    assert names == [(f"step_{i}", ["value"]) for i in range(8)]


def test_unfixable_issues_score_the_same_on_every_pass() -> None:
    code = "".join(f"LABEL_{i} = '{'x' * 100}'\n" for i in range(8))
    state = review(code)
    scores = [state["quality_score"]]
    for _ in range(2):
        state = loop_pass(state)
        scores.append(state["quality_score"])
    assert scores == [6.0, 6.0, 6.0]
    assert state["code"] == code
    assert state["fixes_applied"] == 0


# --- generated programs: the fixed code stays valid -----------------------------------------------

NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name)
)
SIMPLE = st.sampled_from(
    ["pass", "x = 1", "return 0", "y = 'a;b'", "print('#: no')", "...", "z = lambda q: q"]
)
ARGUMENT = st.sampled_from(["", ": int", ": 'a:b'", "=(1)", ": int = 2", "=lambda q: q"])


@st.composite
def signatures(draw: st.DrawFn) -> str:
    suffixes = sorted(draw(st.lists(ARGUMENT, max_size=3)), key=lambda suffix: "=" in suffix)
    arguments = [f"a{i}{suffix}" for i, suffix in enumerate(suffixes)]
    keyword_ = draw(st.sampled_from(["def", "async def"]))
    returns = draw(st.sampled_from(["", " -> int", " -> (int)"]))
    return f"{keyword_} {draw(NAMES)}({', '.join(arguments)}){returns}:"


@st.composite
def blocks(draw: st.DrawFn, indent: str, depth: int) -> list[str]:
    kinds = ["simple", "semicolons", "function", "class", "if"] if depth < 3 else ["simple"]
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(kinds))
        if kind == "simple":
            lines.append(indent + draw(SIMPLE))
        elif kind == "semicolons":
            lines.append(indent + "; ".join(draw(st.lists(SIMPLE, min_size=2, max_size=3))))
        elif kind == "if":
            body = "; ".join(draw(st.lists(SIMPLE, min_size=1, max_size=2)))
            lines.append(f"{indent}if x: {body}")
        elif kind == "class":
            lines.append(f"{indent}class {draw(NAMES)}:")
            lines.extend(draw(blocks(indent + "    ", depth + 1)))
        else:
            if draw(st.booleans()):
                lines.append(f"{indent}@decorator")
            header = indent + draw(signatures())
            if draw(st.booleans()):
                body = "; ".join(draw(st.lists(SIMPLE, min_size=1, max_size=3)))
                lines.append(f"{header} {body}")
            else:
                lines.append(header)
                if draw(st.booleans()):
                    lines.append(f'{indent}    """Documented."""')
                lines.extend(draw(blocks(indent + "    ", depth + 1)))
    return lines


@settings(max_examples=150, deadline=None)
@given(st.builds("\n".join, blocks("", 0)))
def test_fixed_code_always_parses_and_keeps_its_functions(code: str) -> None:
    functions = extract_functions({"code": code})["functions"]
    result = suggested(code)
    ast.parse(result["code"])
    fixed = extract_functions(result)["functions"]
    assert [function["name"] for function in fixed] == [function["name"] for function in functions]
    assert [function["args"] for function in fixed] == [function["args"] for function in functions]
    assert not [i for i in detect_issues(result)["issues"] if i["type"] == "missing_docstring"]


# --- the graph definition -------------------------------------------------------------------------

SPEC_GRAPH = {
    "name": "code_review_workflow",
    "nodes": {
        "extract": {"function": "extract_functions", "params": {}},
        "analyze": {"function": "check_complexity"},
        "detect": {"function": "detect_issues"},
        "suggest": {"function": "suggest_improvements"},
        "check_quality": {"function": "check_quality_score"},
    },
    "edges": {
        "extract": "analyze",
        "analyze": "detect",
        "detect": "suggest",
        "suggest": "check_quality",
    },
    "conditional_edges": {
        "check_quality": {
            "condition": "quality_score >= threshold",
            "true": "END",
            "false": "analyze",
        }
    },
}


def test_the_graph_file_is_the_spec_example_bound_to_these_tools() -> None:
    assert code_review_graph() == SPEC_GRAPH
    path = Path(code_review.__file__).with_name("code_review_graph.json")
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == SPEC_GRAPH
    assert text.startswith('{\n  "name"')  # pretty-printed
    tool_names = {tool.__name__ for tool in CODE_REVIEW_TOOLS}
    assert {node["function"] for node in SPEC_GRAPH["nodes"].values()} == tool_names
