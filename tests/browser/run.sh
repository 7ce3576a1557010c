#!/usr/bin/env bash
# The page at / in a real headless browser. Needs Debian's chromium and
# chromium-driver (installed with apt-get when missing and running as root)
# and python3 with pip (Selenium from requirements.txt), and a built debug
# binary. Loopback only; every wait is bounded.
#   tests/browser/run.sh [SCREENSHOT.png]
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "chromium and chromium-driver are missing and this is not root: cannot install them"; exit 1
  fi
fi
python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt

WORK=$(mktemp -d)
LOG="$WORK/server.log"
cleanup() {
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

BOXOFFICE__SERVER__PORT=0 BOXOFFICE__SNAPSHOT__DIR="$WORK/data" \
BOXOFFICE__RATE_LIMIT__ENABLED=false RUST_LOG=warn,boxoffice=info \
  "$ROOT/target/debug/boxoffice" >"$LOG" 2>&1 &
SERVER_PID=$!
BASE=""
for _ in $(seq 1 300); do
  BASE=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$LOG" | head -1)
  [[ -n "$BASE" ]] && curl -fsS "$BASE/health" >/dev/null 2>&1 && break
  BASE=""
  sleep 0.1
done
[[ -n "$BASE" ]] || { echo "service did not start:"; cat "$LOG"; exit 1; }

timeout 120 python3 page_test.py "$BASE" "$@"
