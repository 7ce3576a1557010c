# Shared helpers for the bench scripts: build, start and stop boxoffice, run oha.
# Sourced, not run. Every server is ours, on 127.0.0.1, stopped by its PID.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The cargo profile of every binary the benches run: `release` (fat LTO)
# for figures; CI's smoke passes use `ci` (the same optimisation without
# fat LTO, built in a fraction of the time), whose speed is never quoted.
BENCH_PROFILE=${BENCH_PROFILE:-release}
TARGET="$ROOT/target/$BENCH_PROFILE"
BIN="$TARGET/boxoffice"

# The load generator: oha, or with BENCH_LOAD=own bench/tools' `load`,
# which takes the subset of oha's options and writes the fields of its
# JSON that these scripts read (CI's smoke passes use it so that a fresh
# machine does not build oha; figures are measured with oha).
OHA=oha

# build ARGS...: `cargo build` of the bench's binaries in $BENCH_PROFILE,
# unless BENCH_PREBUILT=1 says the caller built them (CI builds the server,
# the scale bench and bench/tools in one pass: a build here with another
# package selection would resolve other features, compile the server's
# dependencies again and replace the binary the other stages tested).
build() {
  if [ "${BENCH_PREBUILT:-0}" = 1 ]; then
    return 0
  fi
  (cd "$ROOT" && cargo build --profile "$BENCH_PROFILE" --locked --quiet "$@")
}

ensure_tools() {
  if [ "${BENCH_LOAD:-oha}" = own ]; then
    build -p boxoffice-bench --bin load
    OHA="$TARGET/load"
  else
    command -v oha >/dev/null || cargo install oha --locked
  fi
  command -v python3 >/dev/null || { echo "python3 is needed to summarise results" >&2; exit 1; }
  build
  [ -x "$BIN" ] || { echo "$BIN is not built" >&2; exit 1; }
  [ "$OHA" = oha ] || [ -x "$OHA" ] || { echo "$OHA is not built" >&2; exit 1; }
}

# wait_listening LOG PID NAME: waits for the "listening on http://ADDR" line
# a server we started prints once bound; sets SERVER_ADDR.
wait_listening() {
  local log=$1 pid=$2 name=$3
  SERVER_ADDR=""
  for _ in $(seq 1 600); do
    SERVER_ADDR=$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$log" | head -1)
    [ -n "$SERVER_ADDR" ] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "$name exited" >&2; return 1; }
    sleep 0.1
  done
  echo "$name did not start" >&2
  return 1
}

# start_boxoffice DIR [VAR=VALUE ...]: starts the service with a bench
# configuration (no rate limit, no access log, snapshots in DIR) plus the
# given overrides; sets SERVER_PID and SERVER_ADDR.
start_boxoffice() {
  local dir=$1; shift
  mkdir -p "$dir"
  env RUST_LOG=warn,boxoffice=info \
    BOXOFFICE__SERVER__PORT=0 \
    BOXOFFICE__RATE_LIMIT__ENABLED=false \
    BOXOFFICE__LOG__ACCESS_LOG=false \
    BOXOFFICE__SNAPSHOT__DIR="$dir" \
    "$@" "$BIN" >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  wait_listening "$dir/server.log" "$SERVER_PID" boxoffice
}

# stop_boxoffice [SIGNAL]: stops the server we started and waits for it.
stop_boxoffice() {
  kill "-${1:-TERM}" "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# create_event TICKETS: creates event 1.
create_event() {
  curl -sf -o /dev/null "http://$SERVER_ADDR/api/initialize" \
    -H 'content-type: application/json' -d "{\"totalTickets\": $1, \"eventId\": 1}"
}

LIMIT_BIN="$TARGET/limit"
MIXED_BIN="$TARGET/mixed"

ensure_bench_tools() {
  ensure_tools
  build -p boxoffice-bench
}

# The lean speed-limit server of ../shared/tools (an optional helper beside
# the repository): the reference for every throughput ratio when present.
# It is built from a copy in target/, never committed here.
LEAN_SRC="$ROOT/../shared/tools/limit-server"
LEAN_DIR="$ROOT/target/lean-limit"
LEAN_BIN=""

# ensure_lean: builds the lean server and sets LEAN_BIN; LEAN_BIN stays
# empty (and the harness falls back to bench/tools' limit) without it.
ensure_lean() {
  [ -d "$LEAN_SRC" ] || { echo "note: $LEAN_SRC not found; ratios are to bench/tools' limit server" >&2; return 0; }
  # CI's smoke pass checks the harness, not ratios: it skips building the
  # lean server (a minute of a clean run) and runs the fallback path.
  [ "${BENCH_LEAN:-on}" = off ] && { echo "note: BENCH_LEAN=off; ratios are to bench/tools' limit server" >&2; return 0; }
  mkdir -p "$LEAN_DIR"
  cp -r "$LEAN_SRC/." "$LEAN_DIR/"
  # A copy inside this repository must not join its workspace.
  grep -q "^\[workspace\]" "$LEAN_DIR/Cargo.toml" || printf "\n[workspace]\n" >>"$LEAN_DIR/Cargo.toml"
  # Its own `release` profile for figures; a smoke pass (another profile)
  # builds it without fat LTO, as CI's `ci` profile does ours.
  local quick=()
  [ "$BENCH_PROFILE" = release ] || quick=(--config 'profile.release.lto="off"' --config profile.release.codegen-units=16)
  (cd "$LEAN_DIR" && cargo build --release --locked --quiet "${quick[@]}")
  LEAN_BIN="$LEAN_DIR/target/release/limit-server"
}

# start_lean DIR: starts the lean server (as many workers as boxoffice's
# default, one per core); sets SERVER_PID and SERVER_ADDR.
start_lean() {
  local dir=$1
  mkdir -p "$dir"
  "$LEAN_BIN" 0 >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  wait_listening "$dir/server.log" "$SERVER_PID" "lean limit server"
}

# start_limit DIR: starts bench/tools' stateless limit server, which also
# serves the mixed scenario's routes; sets SERVER_PID and SERVER_ADDR.
start_limit() {
  local dir=$1
  mkdir -p "$dir"
  "$LIMIT_BIN" >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  wait_listening "$dir/server.log" "$SERVER_PID" "limit server"
}
