#!/usr/bin/env bash
# Set up and run convlife locally: worker and beat in one process, a SQLite store in the data
# directory (CONVLIFE_DATA_DIR, default ~/.local/share/convlife), a local Redis as broker.
# Override with CONVLIFE_BROKER_URL / CONVLIFE_DATABASE_URL.
#
# When no Redis answers on a local broker URL, this starts one (as .ci/run does) if
# redis-server is installed, and says how to get one if it is not.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

broker="${CONVLIFE_BROKER_URL:-redis://localhost:6379/0}"
redis_answers() {
  .venv/bin/python - "$broker" <<'PY' >/dev/null 2>&1
import sys
from redis import Redis
Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping()
PY
}
if ! redis_answers; then
  read -r host port < <(.venv/bin/python - "$broker" <<'PY'
import sys
from urllib.parse import urlsplit
url = urlsplit(sys.argv[1])
print(url.hostname or "localhost", url.port or 6379)
PY
  )
  if [ "$host" != "localhost" ] && [ "$host" != "127.0.0.1" ]; then
    echo "run.sh: no Redis answers at $host:$port (CONVLIFE_BROKER_URL); start it, or unset the variable for a local one" >&2
    exit 2
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "run.sh: no Redis answers on $host:$port and redis-server is not installed: apt-get install redis-server (or point CONVLIFE_BROKER_URL at a Redis)" >&2
    exit 2
  fi
  echo "run.sh: no Redis on 127.0.0.1:$port; starting a local redis-server (no persistence)" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do redis_answers && break; sleep 0.1; done
fi
exec .venv/bin/convlife run "$@"
