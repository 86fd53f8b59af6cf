#!/usr/bin/env bash
# The fault suite alone (tests/faults): real processes, each test with its own redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest tests/faults -v -s "$@"
