"""Dependencies point one way, `benchmarks/` -> `web/` -> `actors/`: no module of `actors/`
imports `web` or `benchmarks`, and no module of `web/` imports `benchmarks`. The client
(`client/`) speaks only the server's public protocols: it imports none of `actors`, `web` and
`benchmarks`, and nothing of `actors` imports it (`web` may, for `runcast runs`)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_IMPORTED_BY = {
    "actors": ("web", "benchmarks", "client"),
    "web": ("benchmarks",),
    "client": ("actors", "web", "benchmarks"),
}


def imported_packages(module: Path) -> Iterator[str]:
    """The top-level package of every absolute import in `module`, wherever it stands."""
    for node in ast.walk(ast.parse(module.read_text(), str(module))):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("layer", NOT_IMPORTED_BY)
def test_a_layer_imports_no_layer_above_it(layer: str) -> None:
    upward = sorted(
        f"{module.relative_to(ROOT)} imports {package}"
        for module in (ROOT / layer).rglob("*.py")
        for package in imported_packages(module)
        if package in NOT_IMPORTED_BY[layer]
    )
    assert upward == []
