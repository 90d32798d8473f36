#!/usr/bin/env bash
# Set up, lint, and run the whole test suite (end-to-end `flwr run` tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --code-evaluation
.venv/bin/python -m ruff check .
exec .venv/bin/python -m pytest "$@"
