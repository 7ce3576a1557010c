#!/usr/bin/env bash
# Restore time for 1,000,000 bookings: (a) from the journal alone, (b) from a
# snapshot of 1,000,000 plus 100,000 journalled on top. Bookings are made over
# HTTP with oha; the time is the service's own "restored ... in N ms" log line.
#
#   bench/restore.sh                  # BENCH_BOOKINGS=1000000 by default
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BOOKINGS=${BENCH_BOOKINGS:-1000000}
EXTRA=$((BOOKINGS / 10))
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ensure_tools

book() {  # book N unique users on event 1
  oha -n "$1" -c 64 -m PUT --no-tui --output-format quiet \
    --rand-regex-url "http://$SERVER_ADDR/api/events/1/bookings/u[0-9]{14}"
}
restored_line() { grep -o 'restored .* ms' "$1/server.log" | tail -1; }
settings=(BOXOFFICE__JOURNAL__FSYNC=interval BOXOFFICE__SNAPSHOT__INTERVAL_SECS=86400)

# (a) journal only: book, then SIGKILL so no snapshot is written.
start_boxoffice "$WORK/a" "${settings[@]}"
create_event 10000000
book "$BOOKINGS"
stop_boxoffice KILL
start_boxoffice "$WORK/a" "${settings[@]}"
echo "journal only:        $(restored_line "$WORK/a")"
stop_boxoffice KILL

# (b) snapshot plus journal: SIGTERM writes the snapshot, then more bookings.
start_boxoffice "$WORK/b" "${settings[@]}"
create_event 10000000
book "$BOOKINGS"
stop_boxoffice TERM
start_boxoffice "$WORK/b" "${settings[@]}"
book "$EXTRA"
stop_boxoffice KILL
start_boxoffice "$WORK/b" "${settings[@]}"
echo "snapshot + journal:  $(restored_line "$WORK/b")"
ls -l "$WORK/b"/snapshot-* | awk '{print "snapshot bytes:      " $5}'
stop_boxoffice KILL
