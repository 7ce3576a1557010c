#!/usr/bin/env bash
# Line coverage of the workspace, counting every process the tests start:
# cargo-llvm-cov's `show-env` sets the instrumented build and a profile
# file per process (LLVM_PROFILE_FILE with %p), which tests/api/process.rs
# passes on to each binary it starts; the profiles of all processes are
# merged by `report`. A process stopped with SIGKILL writes no profile, so
# the tests stop their servers with SIGTERM wherever they do not need the
# kill (process.rs's Drop); what only a killed process ran is not counted.
#   tests/coverage.sh            (`cargo xtask coverage`; about 15 minutes)
# Runs: cargo test (every default crate, its process tests), the
# testkit's, tests/api on a 3-node cluster behind HAProxy, the cluster
# behind HAProxy (issue 21's faults), the partition tests (as root) and a
# node's clock moved by libfaketime (against the instrumented debug build),
# the docs' blocks; then prints the figure per crate and writes
# an HTML report to target/llvm-cov/html.
# Needs cargo-llvm-cov (installed here with `cargo install` when missing)
# and rustup's llvm-tools component (added when missing). It builds in
# `target/` itself: run no other cargo command in this checkout meanwhile
# (an ordinary build there replaces instrumented objects, and what it
# replaced goes uncounted), or run it from a clone.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-llvm-cov >/dev/null || cargo install cargo-llvm-cov --locked
rustup component list --installed 2>/dev/null | grep -q '^llvm-tools' || rustup component add llvm-tools-preview

# shellcheck disable=SC1090
source <(cargo llvm-cov show-env --export-prefix)
cargo llvm-cov clean --workspace
cargo build --locked --bins
BIN="$CARGO_LLVM_COV_TARGET_DIR/debug/boxoffice"
[ -x "$BIN" ] || BIN="$CARGO_TARGET_DIR/debug/boxoffice"

status=0
run() { echo "== $*"; "$@" || { status=1; echo "FAILED: $*"; }; }
run cargo test --locked
run cargo test --locked -p boxoffice-testkit
run tests/api_on_cluster.sh
run env BOXOFFICE_TEST_BINARY="$BIN" cargo test --locked --test api cluster_proxy -- --ignored
if [ "$(id -u)" = 0 ]; then
  run env BOXOFFICE_TEST_BINARY="$BIN" cargo test --locked --test api partition -- --ignored
else
  echo "NOT RUN: tests/api/partition.rs (network namespaces need root)"
fi
if ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
  run env BOXOFFICE_TEST_BINARY="$BIN" cargo test --locked --test api clocks -- --ignored
else
  echo "NOT RUN: tests/api/clocks.rs (apt-get install faketime)"
fi
run python3 tests/docs/check_blocks.py "$BIN" README.md docs/guide.md

# Every crate of the service (without -p, report counts the root package
# alone).
CRATES=(-p boxoffice -p boxoffice-domain -p boxoffice-storage -p boxoffice-metrics)
cargo llvm-cov report "${CRATES[@]}" --html --output-dir target/llvm-cov
cargo llvm-cov report "${CRATES[@]}" --json --summary-only --output-path target/llvm-cov/summary.json
python3 - target/llvm-cov/summary.json "$PWD" <<'PY'
import json, sys
data, root = json.load(open(sys.argv[1])), sys.argv[2].rstrip("/") + "/"
crates = {}
for f in data["data"][0]["files"]:
    path = f["filename"].removeprefix(root)
    if path.startswith("crates/"):
        crate = "/".join(path.split("/")[:2])
    elif path.startswith("src/"):
        crate = "src (boxoffice)"
    else:
        crate = path.split("/")[0]
    lines = f["summary"]["lines"]
    c = crates.setdefault(crate, [0, 0])
    c[0] += lines["covered"]; c[1] += lines["count"]
total = [sum(c[0] for c in crates.values()), sum(c[1] for c in crates.values())]
print(f"{'crate':<20} {'lines':>8} {'covered':>8} {'%':>6}")
for name, (cov, count) in sorted(crates.items()) + [("total", total)]:
    print(f"{name:<20} {count:>8} {cov:>8} {100 * cov / max(count, 1):>6.1f}")
PY
echo "HTML report: target/llvm-cov/html/index.html"
exit "$status"
