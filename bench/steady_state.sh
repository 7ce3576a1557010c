#!/usr/bin/env bash
# Durable bookings on a large state (issue 12): BENCH_SECONDS (60) of PUT
# bookings, `fsync = "always"`, default snapshot settings, 64 connections,
# once on an empty service and once on a service restored with BENCH_HELD
# (10,000,000) bookings, then on the same restored state with
# `snapshot.journal_percent = 0` (a whole snapshot every interval with a
# change, as before issue 12), in turn for BENCH_ROUNDS (1) rounds. Reports
# throughput, p99, the snapshots written and the disk bytes written per
# booking over the load window, two ways: write_bytes of /proc/PID/io (what
# the kernel charges the process: a whole page-cache folio each time a
# write dirties one, which on kernels with large folios far exceeds what
# reaches the disk) and the sectors written to the data directory's device
# (/proc/diskstats; the whole machine's writes to it, ours nearly all).
#
#   bench/steady_state.sh
#   BENCH_HELD=100000 BENCH_SECONDS=5 bench/steady_state.sh   # a quick pass
#
# Fails on any non-2xx answer or error.
#
# The held state is built once per run (about 4 minutes at 10,000,000: oha
# books over HTTP with `fsync = "interval"`, then SIGTERM writes the final
# snapshot) and copied afresh for each held round.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SERVER_PID=""
HELD=${BENCH_HELD:-10000000}
SECS=${BENCH_SECONDS:-60}
ROUNDS=${BENCH_ROUNDS:-1}
TICKETS=$((HELD * 2 + 1000000))
OUT=${BENCH_OUT:-$ROOT/bench/results}  # CI's smoke writes elsewhere
WORK=$(mktemp -d)
trap 'stop_boxoffice KILL; rm -rf "$WORK"' EXIT
ensure_tools

# Room for the held bookings plus the ones the load adds, in one event.
limits=(BOXOFFICE__LIMITS__MAX_TICKETS_PER_EVENT=$TICKETS
        BOXOFFICE__LIMITS__MAX_BOOKINGS_PER_EVENT=$TICKETS)

# The block device under the data directory, as /proc/diskstats names it.
DEVICE=$(basename "$(df --output=source "$WORK" | tail -1)")
device_bytes() {
  awk -v d="$DEVICE" '$3 == d { printf "%.0f\n", $10 * 512 }' /proc/diskstats
}

metric() {  # metric NAME: a value from /metrics
  curl -sf "http://$SERVER_ADDR/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

echo "building the held state: $HELD bookings" >&2
start_boxoffice "$WORK/held" "${limits[@]}" BOXOFFICE__JOURNAL__FSYNC=interval
create_event "$TICKETS"
"$OHA" -n "$HELD" -c 64 -m PUT --no-tui --output-format quiet \
  --rand-regex-url "http://$SERVER_ADDR/api/events/1/bookings/h[0-9]{14}"
stop_boxoffice TERM
ls -l "$WORK/held"/snapshot-* >&2

# run LABEL DIR [VAR=VALUE ...]: one load window on the service whose data
# is in DIR.
run() {
  local label=$1 dir=$2
  shift 2
  start_boxoffice "$dir" "${limits[@]}" BOXOFFICE__JOURNAL__FSYNC=always "$@"
  [ "$label" = empty ] && create_event "$TICKETS"
  grep -o 'restored .* ms' "$dir/server.log" >&2 || true
  local io_before snapshots_before device_before
  io_before=$(awk '/^write_bytes/ { print $2 }' "/proc/$SERVER_PID/io")
  device_before=$(device_bytes)
  snapshots_before=$(metric boxoffice_snapshots_written_total)
  "$OHA" -z "${SECS}s" -c 64 -m PUT --no-tui --output-format json \
    --rand-regex-url "http://$SERVER_ADDR/api/events/1/bookings/s[0-9]{14}" \
    >"$WORK/raw/$label-$round.json"
  local io_after snapshots_after device_after
  io_after=$(awk '/^write_bytes/ { print $2 }' "/proc/$SERVER_PID/io")
  device_after=$(device_bytes)
  snapshots_after=$(metric boxoffice_snapshots_written_total)
  echo "{\"write_bytes\": $((io_after - io_before)), \"device_bytes\": $((${device_after:-0} - ${device_before:-0})), \"snapshots\": $((snapshots_after - snapshots_before)), \"rss_kb\": $(awk '/^VmRSS/ { print $2 }' "/proc/$SERVER_PID/status")}" \
    >"$WORK/raw/$label-$round.io"
  stop_boxoffice KILL
}

mkdir -p "$WORK/raw"
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$WORK/empty"
  run empty "$WORK/empty"
  rm -rf "$WORK/copy"
  cp -a "$WORK/held" "$WORK/copy"
  rm -f "$WORK/copy/LOCK"
  # Let the copy reach the disk now, not inside the measured window.
  sync
  run held "$WORK/copy"
  # The same with the snapshot policy of before issue 12: a whole snapshot
  # every interval in which anything changed.
  rm -rf "$WORK/copy"
  cp -a "$WORK/held" "$WORK/copy"
  rm -f "$WORK/copy/LOCK"
  # Let the copy reach the disk now, not inside the measured window.
  sync
  run heldevery "$WORK/copy" BOXOFFICE__SNAPSHOT__JOURNAL_PERCENT=0
  echo "round $round done" >&2
done

python3 "$ROOT/bench/summarise.py" steady-state "$WORK/raw" "$OUT/steady-state.json" empty held heldevery
python3 - "$WORK/raw" "$OUT/steady-state.json" <<'EOF'
import glob, json, os, statistics, sys
raw, out = sys.argv[1:]
summary = json.load(open(out))
print("| variant | snapshots written | bytes per booking, /proc/PID/io write_bytes | bytes per booking, device sectors written | RSS at the end |")
print("| --- | ---: | ---: | ---: | ---: |")
for variant in ("empty", "held", "heldevery"):
    per_booking, device, snapshots, rss = [], [], [], []
    for io_file in sorted(glob.glob(os.path.join(raw, f"{variant}-*.io"))):
        io = json.load(open(io_file))
        oha = json.load(open(io_file[:-3] + ".json"))
        ok = sum(n for code, n in oha["statusCodeDistribution"].items() if code.startswith("2"))
        per_booking.append(io["write_bytes"] / max(ok, 1))
        device.append(io["device_bytes"] / max(ok, 1))
        snapshots.append(io["snapshots"])
        rss.append(io["rss_kb"])
    if per_booking:
        row = summary["results"].setdefault(variant, {})
        row["disk_bytes_per_booking"] = statistics.median(per_booking)
        row["device_bytes_per_booking"] = statistics.median(device)
        row["snapshots_written"] = snapshots
        row["rss_mb"] = statistics.median(rss) / 1024
        print(f"| {variant} | {', '.join(map(str, snapshots))} | {row['disk_bytes_per_booking']:.0f} | {row['device_bytes_per_booking']:.0f} | {row['rss_mb']:.0f} MB |")
json.dump(summary, open(out, "w"), indent=2)
failed = [v for v, r in summary["results"].items() if r.get("non_2xx") or r.get("errors")]
failed += [v for v in ("empty", "held", "heldevery") if "rps" not in summary["results"].get(v, {})]
if failed:
    sys.exit(f"non-2xx answers or errors in: {', '.join(failed)}")
EOF
