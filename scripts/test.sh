#!/usr/bin/env bash
# Set up and run the whole test suite: lint, types, then pytest (unit, store, integration).
# Needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
