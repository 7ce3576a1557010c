#!/usr/bin/env bash
# Heap allocations per request, counted by heaptrack (apt-get install -y
# heaptrack), for boxoffice and the lean limit server on the routes of
# ratio.py plus GET booking. Each server runs twice under heaptrack, once
# with no requests and once with N (oha, 16 connections, journal off, rate
# limit and access log off); allocations per request = (with - without) / N.
# Counts, unlike throughput, do not depend on the machine's load.
#
#   bench/allocs.sh BOXOFFICE_BIN LEAN_BIN [N]        # N = 20000
#
# LEAN_BIN is the lean server of ../shared/tools/limit-server (optional
# helper: see bench/README.md); every server is ours, on 127.0.0.1, stopped
# by its PID.
set -euo pipefail
BOX=$1 LEAN=$2 N=${3:-20000}
command -v heaptrack >/dev/null || { echo "heaptrack is needed (apt-get install -y heaptrack)" >&2; exit 1; }
OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")

# allocations KIND BIN REQUESTS ROUTE: total allocation calls of one run.
allocations() {
  local kind=$1 bin=$2 n=$3 route=$4 work port pid server
  work=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  if [ "$kind" = lean ]; then
    heaptrack -o "$work/ht" "$bin" "$port" 2 >/dev/null 2>&1 &
  else
    printf '[server]\nhost = "127.0.0.1"\nport = %s\nworkers = 2\n[rate_limit]\nenabled = false\n[snapshot]\ndir = "%s/snap"\ninterval_secs = 3600\n[log]\nlevel = "warn"\naccess_log = false\n[journal]\nenabled = false\n' \
      "$port" "$work" >"$work/c.toml"
    heaptrack -o "$work/ht" "$bin" --config "$work/c.toml" >/dev/null 2>&1 &
  fi
  pid=$!
  for _ in $(seq 1 150); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
  if [ "$kind" = box ]; then
    curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
      -d '{"totalTickets": 10000000}' "http://127.0.0.1:$port/api/events"
    curl -sf -o /dev/null -X PUT "http://127.0.0.1:$port/api/events/1/bookings/u1"
  fi
  if [ "$n" -gt 0 ]; then
    local oha=("$OHA" --no-tui -n "$n" -c 16 --output-format quiet)
    case $route in
      put) "${oha[@]}" -m PUT --rand-regex-url "http://127.0.0.1:$port/api/events/1/bookings/u[0-9]{12}" ;;
      status) "${oha[@]}" "http://127.0.0.1:$port/api/status/1" ;;
      booking) "${oha[@]}" "http://127.0.0.1:$port/api/events/1/bookings/u1" ;;
    esac
  fi
  # heaptrack runs the server as its child: stop the server by the PID
  # that listens, and let heaptrack write its file.
  server=$(ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
  kill -TERM "$server"
  wait "$pid" || true
  heaptrack_print -f "$(ls "$work"/ht*)" 2>/dev/null |
    sed -n 's/^calls to allocation functions: \([0-9]*\).*/\1/p'
  rm -rf "$work"
}

printf '| route | boxoffice | lean server | boxoffice - lean |\n| --- | ---: | ---: | ---: |\n'
box_base=$(allocations box "$BOX" 0 status)
lean_base=$(allocations lean "$LEAN" 0 status)
for route in status booking put; do
  box=$(allocations box "$BOX" "$N" "$route")
  lean=$(allocations lean "$LEAN" "$N" "$route")
  python3 -c "b=($box-$box_base)/$N; l=($lean-$lean_base)/$N; print(f'| $route | {b:.1f} | {l:.1f} | {b-l:.1f} |')"
done
