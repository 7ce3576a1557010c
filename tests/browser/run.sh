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

source ../service.sh
start_service "$ROOT"

timeout 120 python3 page_test.py "$BASE" "$@"
