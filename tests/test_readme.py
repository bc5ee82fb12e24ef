"""The README's Python API example runs as written and prints a gap-free run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_python_api_example_runs_as_written(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    examples = [block for block in blocks if "open_runtime" in block]
    assert len(examples) == 1, "the README should have one python example of the runtime API"
    script = tmp_path / "example.py"
    script.write_text(examples[0])
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    indices = [int(line.split()[0]) for line in lines]
    assert indices == list(range(len(lines)))
    assert lines[0].split()[1] == "WorkflowStarted"
    assert lines[-1].split()[1] == "WorkflowCompleted"
    assert any("halfway" in line for line in lines)
    assert any(line.endswith("A short title") for line in lines)
