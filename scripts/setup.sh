#!/usr/bin/env bash
# Create .venv (once) and install the pinned development stack into it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
stamp=.venv/.requirements-dev.sha
wanted=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch first and alone: the CPU wheel on disk, not a multi-GB CUDA build.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
  echo "$wanted" > "$stamp"
fi
