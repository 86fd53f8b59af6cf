#!/usr/bin/env bash
# Set up and run convlife locally: worker and beat in one process, SQLite store (convlife.db),
# local Redis as broker. Override with CONVLIFE_BROKER_URL / CONVLIFE_DATABASE_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/convlife run "$@"
