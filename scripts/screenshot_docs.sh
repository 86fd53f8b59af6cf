#!/usr/bin/env bash
# Render the gateway's /docs page in headless Chromium and save a screenshot, to check that the
# Swagger UI works with no network beyond loopback (its assets come from the swagger-ui-bundle
# package, not a CDN). Starts its own gateway (--insecure-no-auth, loopback only, a free port,
# a throwaway SQLite store) and stops it at the end.
#
#   bash scripts/screenshot_docs.sh [OUT.png]        # default /tmp/convlife-docs.png
#
# Needs Chromium (Debian: apt-get install -y chromium). Look at the picture: the page should
# show "convlife gateway" and the /v1/events, /v1/accounts/… routes.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/convlife-docs.png}"
bash scripts/setup.sh
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  echo "chromium is not installed (Debian: apt-get install -y chromium)" >&2
  exit 1
fi
port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
workdir="$(mktemp -d)"
export CONVLIFE_DATABASE_URL="sqlite:///$workdir/convlife.db"
.venv/bin/convlife gateway --host 127.0.0.1 --port "$port" --insecure-no-auth >"$workdir/gateway.log" 2>&1 &
gateway=$!
trap 'kill "$gateway" 2>/dev/null || true; wait "$gateway" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
# --virtual-time-budget lets Swagger UI fetch /openapi.json and draw before the shot.
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --virtual-time-budget=5000 --window-size=1280,900 \
  --screenshot="$out" "http://127.0.0.1:$port/docs" >/dev/null 2>&1
echo "screenshot: $out"
