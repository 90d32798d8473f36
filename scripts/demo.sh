#!/usr/bin/env bash
# Set up, render the default baseline and train two federated rounds offline on a tiny model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m testkit.demo --output demo-output "$@"
