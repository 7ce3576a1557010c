#!/usr/bin/env bash
# docs/operations.md, "A node's disk is lost", run as an operator would:
# three nodes installed from the shipped deploy/cluster/ files (node1-3.toml,
# boxoffice@.service's start check and command line, secrets.env made as
# "What a cluster's operator also needs" says, haproxy.cfg), node 3's disk
# lost, then the section's two ```sh blocks taken from the page and run
# as they are, with the proxy edit between them that the page describes.
# Checked after: node 3 is gone and node 4 votes (GET /api/cluster), the
# reloaded proxy sends changes to the leader, the unit refuses to start
# node 3 again on its empty directory, and with the leader stopped the
# cluster of nodes 1, 2 and 4 still answers a booking (node 4's vote is
# needed for the majority).
#
# The machine is emulated under a scratch directory: /var/lib/boxoffice,
# /etc/boxoffice and /etc/haproxy are rewritten to folders in it,
# /usr/local/bin/boxoffice is BINARY, `systemctl` is a shell function that
# runs the unit's ExecStartPre and ExecStart with its EnvironmentFile
# (`enable --now`), stops a node with SIGTERM (`disable --now`) and reloads
# the proxy with a soft stop of the old process (`reload haproxy`), and
# `install` drops its owner and group (there is no boxoffice user here).
# Uses the shipped ports (proxy 8080, nodes 8101-8104, peers 7101-7104):
# run it alone. Needs haproxy and curl.
#   tests/docs/node_replacement.sh BINARY
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(realpath "${1:?usage: node_replacement.sh BINARY}")
command -v haproxy >/dev/null || { echo "haproxy is not on the PATH" >&2; exit 1; }
W=$(mktemp -d -t boxoffice-node-replacement.XXXXXX)
ETC="$W/etc/boxoffice"
VAR="$W/var/lib/boxoffice"
HAPROXY_CFG="$W/etc/haproxy/haproxy.cfg"
mkdir -p "$ETC" "$VAR" "$W/etc/haproxy"
# This script must never write to the real machine paths.
for real in /var/lib/boxoffice /etc/boxoffice; do
  [ ! -e "$real" ] || [ -n "${REAL_PATHS_OK:-}" ] || {
    echo "$real exists on this machine: the emulation must not mix with it (REAL_PATHS_OK=1 to run anyway)" >&2; exit 1; }
done

# Rewrites the page's and the unit's machine paths to the scratch ones.
paths() {
  sed -e "s#/var/lib/boxoffice#$VAR#g" -e "s#/etc/boxoffice#$ETC#g" \
      -e "s#/etc/haproxy#$W/etc/haproxy#g" -e "s#/usr/local/bin/boxoffice#$BIN#g" \
      -e "s#deploy/cluster/#$ROOT/deploy/cluster/#g"
}

declare -A NODE_PIDS=()
HAPROXY_PID=""
cleanup() {
  local pid
  for pid in "${NODE_PIDS[@]}" $HAPROXY_PID; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${NODE_PIDS[@]}" $HAPROXY_PID; do wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

UNIT="$ROOT/deploy/cluster/boxoffice@.service"
unit_line() { sed -n "s/^$1=//p" "$UNIT"; }

systemctl() {
  case "$*" in
    "enable --now boxoffice@"*)
      local i=${3#boxoffice@}
      local pre start
      pre=$(unit_line ExecStartPre | sed "s/%i/$i/g" | paths)
      start=$(unit_line ExecStart | sed "s/%i/$i/g" | paths)
      # ExecStartPre's command line is /bin/sh -c '...': run as systemd would.
      if ! eval "$pre"; then
        echo "systemctl: boxoffice@$i: ExecStartPre refused" >&2
        return 1
      fi
      (
        set -a
        # shellcheck disable=SC1090
        . "$(unit_line EnvironmentFile | paths)"
        set +a
        cd "$VAR" && exec $start >"$W/node$i.log" 2>&1
      ) &
      NODE_PIDS[$i]=$!
      ;;
    "disable --now boxoffice@"*)
      local i=${3#boxoffice@}
      kill -TERM "${NODE_PIDS[$i]}" && wait "${NODE_PIDS[$i]}" || true
      unset "NODE_PIDS[$i]"
      ;;
    "reload haproxy")
      local old=$HAPROXY_PID
      haproxy -db -f "$HAPROXY_CFG" -sf "$old" >>"$W/haproxy.log" 2>&1 &
      HAPROXY_PID=$!
      wait "$old" 2>/dev/null || true
      ;;
    *) echo "systemctl $*: not emulated" >&2; return 1 ;;
  esac
}

# install without owner and group; a file installed into the scratch
# machine gets its machine paths moved too (node4.toml names its data
# directory /var/lib/boxoffice/node4: on this machine that must be the
# scratch one, never the real path).
install() {
  local args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      -o|-g) shift 2 ;;
      *) args+=("$1"); shift ;;
    esac
  done
  command install "${args[@]}"
  local last=${args[${#args[@]}-1]}
  if [ -f "$last" ] && [[ "$last" == "$W"/* ]]; then
    paths <"$last" >"$last.moved" && mv "$last.moved" "$last"
  fi
}

fail() { echo "node replacement: $*" >&2; for f in "$W"/node*.log; do echo "== $f"; tail -20 "$f"; done >&2; exit 1; }

# Until "$@" succeeds, at most $1 tenths of a second.
until_ok() {
  local tenths=$1; shift
  for _ in $(seq 1 "$tenths"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# The installation: node files, secrets.env as the docs make it, the proxy.
for i in 1 2 3; do
  paths <"$ROOT/deploy/cluster/node$i.toml" >"$ETC/node$i.toml"
  install -d -o boxoffice -g boxoffice "$VAR/node$i"
  touch "$VAR/node$i/NEW-NODE"
done
if command -v openssl >/dev/null; then SECRET=$(openssl rand -hex 32); else SECRET=$(head -c 32 /dev/urandom | base64); fi
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$ETC/secrets.env" <<EOF
BOXOFFICE__CLUSTER__SECRET=$SECRET
BOXOFFICE__AUTH__ADMIN_TOKEN=$TOKEN
EOF
cp "$ROOT/deploy/cluster/haproxy.cfg" "$HAPROXY_CFG"
for i in 1 2 3; do systemctl enable --now "boxoffice@$i"; done
haproxy -db -f "$HAPROXY_CFG" >"$W/haproxy.log" 2>&1 &
HAPROXY_PID=$!
PROXY=http://127.0.0.1:8080
AUTH=(-H "authorization: Bearer $TOKEN")
until_ok 300 curl -fsS "$PROXY/leader" || fail "no leader behind the proxy after 30 s"

# A cluster that just formed may still change its leader (a client
# retries a 503 with an Idempotency-Key, as the contract allows).
create() {
  curl -fsS "${AUTH[@]}" -H 'content-type: application/json' -H 'idempotency-key: replacement-1' \
    -d '{"totalTickets": 10}' "$PROXY/api/events" >"$W/created"
}
until_ok 300 create || fail "no event created in 30 s"
event=$(sed -n 's/.*"eventId":\([0-9]*\).*/\1/p' "$W/created")
book_before() { curl -fsS "${AUTH[@]}" -X PUT "$PROXY/api/events/$event/bookings/before" >/dev/null; }
until_ok 300 book_before || fail "no booking before the loss"

# Node 3's disk is lost (stopped first if it led, so that the proxy has a
# leader to send the DELETE to).
systemctl disable --now boxoffice@3
rm -rf "$VAR/node3"
install -d -o boxoffice -g boxoffice "$VAR/node3"
if systemctl enable --now boxoffice@3 2>/dev/null; then
  fail "the unit started node 3 again on an empty directory under its old id"
fi
until_ok 300 curl -fsS "$PROXY/leader" || fail "no leader of nodes 1 and 2 after 30 s"

# The page's blocks, as they are (ORGANISER is the one value the reader
# fills in).
BLOCKS="$W/blocks"
python3 - "$ROOT/docs/operations.md" "$BLOCKS" <<'EOF'
import re, sys
page = open(sys.argv[1]).read()
start = page.index("**A node's disk is lost.**")
blocks = re.findall(r"```sh\n(.*?)```", page[start:], re.S)[:2]
assert len(blocks) == 2, "two sh blocks after the disk-loss item"
for n, block in enumerate(blocks, 1):
    open(f"{sys.argv[2]}{n}.sh", "w").write(re.sub(r"(?m)^\s+", "", block))
EOF
sed -i "s/^ORGANISER=\.\.\..*/ORGANISER=$TOKEN/" "$BLOCKS"1.sh
grep -q "^ORGANISER=$TOKEN" "$BLOCKS"1.sh || fail "the first block sets no ORGANISER"
echo "== running the first block:"; cat "$BLOCKS"1.sh
# shellcheck disable=SC1090
. <(paths <"$BLOCKS"1.sh) || fail "the first block failed"

voter4() { curl -fsS "${AUTH[@]}" "$PROXY/api/cluster" | tr -d ' \n' | grep -q '"id":4,[^}]*"voter":true'; }
until_ok 200 voter4 || fail "node 4 is no voter 20 s after the block: $(curl -sS "${AUTH[@]}" "$PROXY/api/cluster")"
if curl -fsS "${AUTH[@]}" "$PROXY/api/cluster" | tr -d ' \n' | grep -q '"id":3,'; then
  fail "node 3 is still a member"
fi

# The proxy edit the page describes, then its second block.
grep -c 'server node3 127.0.0.1:8103 check' "$HAPROXY_CFG" | grep -qx 2 || fail "haproxy.cfg does not name node 3 twice"
sed -i 's/server node3 127.0.0.1:8103 check/server node4 127.0.0.1:8104 check/' "$HAPROXY_CFG"
echo "== running the second block:"; cat "$BLOCKS"2.sh
# shellcheck disable=SC1090
. <(paths <"$BLOCKS"2.sh) || fail "the second block failed"
until_ok 300 curl -fsS "$PROXY/leader" || fail "no leader behind the reloaded proxy"

# Nodes 1, 2 and 4 are the cluster: without its leader, the other two
# (node 4 among them) elect one and answer through the proxy.
leader=$(curl -fsS "${AUTH[@]}" "$PROXY/api/cluster" | sed -n 's/.*"leader_id":\([0-9]*\).*/\1/p')
[ -n "$leader" ] || fail "no leader_id in /api/cluster"
systemctl disable --now "boxoffice@$leader"
book_after() { curl -fsS "${AUTH[@]}" -X PUT "$PROXY/api/events/$event/bookings/after" >/dev/null; }
until_ok 300 book_after || fail "no booking through the proxy 30 s after node $leader stopped"
for i in 1 2 4; do
  [ "$i" = "$leader" ] && continue
  until_ok 100 curl -fsS "http://127.0.0.1:810$i/api/events/$event/bookings/before" \
    || fail "node $i does not have the booking made before the loss"
done
grep -q "$VAR/node4" "$W/node4.log" || fail "node 4 did not run in its scratch directory"
if [ -z "${REAL_PATHS_OK:-}" ]; then
  for real in /var/lib/boxoffice /etc/boxoffice; do
    [ ! -e "$real" ] || fail "the run wrote to the real $real"
  done
fi
echo "node replacement as docs/operations.md says: node 3 replaced by node 4, node $leader stopped, bookings answered"
