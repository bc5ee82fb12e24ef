#!/usr/bin/env bash
# Installs Agno AgentOS, the comparison peer of the benchmarks, into .venv-agno at the repo root.
# The peer is not a dependency of runcast: it lives in its own venv, which .gitignore leaves out.
# Idempotent: re-running keeps the venv and only installs what is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-agno"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "agno[os]==3.1.10" "uvicorn[standard]"
"$VENV/bin/python" -c 'import agno.os, uvicorn; from importlib.metadata import version; print(*(f"{p} {version(p)}" for p in ("agno", "fastapi", "uvicorn", "uvloop", "websockets")))'
