# Sourced by .ci/run and tests/stress.sh: timed stages and their table.
#   stage NAME CMD...              runs CMD as a stage: "== NAME", its wall time
#   stage_logged LOG NAME CMD...   the same, its output also appended to LOG
#                                  (for the closing count of test results)
#   stage_binaries LOG             rows for each test binary of the last logged
#                                  stage, from cargo's "finished in" lines
#   stage_table                    the table so far; a stage still running (one
#                                  that failed under `set -e`) is marked FAILED
# The table goes to stdout and, when STAGE_TABLE_FILE is set, to that file.

STAGE_ROWS=()
STAGE_CURRENT=""
STAGE_CURRENT_START=0
STAGE_RUN_START=$(date +%s.%N)
STAGE_LAST_OUTPUT=""

stage_now() { date +%s.%N; }

stage_secs() {  # stage_secs START: seconds since START, one decimal
  awk -v a="$1" -v b="$(stage_now)" 'BEGIN { printf "%.1f", b - a }'
}

stage() {
  local name=$1
  shift
  echo "== $name"
  STAGE_CURRENT=$name
  STAGE_CURRENT_START=$(stage_now)
  "$@"
  STAGE_ROWS+=("$name|$(stage_secs "$STAGE_CURRENT_START")|ok")
  STAGE_CURRENT=""
}

stage_logged() {
  local log=$1 name=$2
  shift 2
  STAGE_LAST_OUTPUT=$(mktemp)
  stage "$name" stage_tee "$STAGE_LAST_OUTPUT" "$@"
  cat "$STAGE_LAST_OUTPUT" >>"$log"
  rm -f "$STAGE_LAST_OUTPUT"
  STAGE_LAST_OUTPUT=""
}

stage_tee() {  # stage_tee FILE CMD...: CMD's output to the terminal and FILE; CMD's status
  local file=$1
  shift
  "$@" 2>&1 | tee "$file"
  return "${PIPESTATUS[0]}"
}

stage_binaries() {
  local log=$1 row
  # The binaries of the stage just logged: they are the last lines of LOG
  # that follow its last "== " header, which the log does not hold, so
  # every "Running" since the last stage_binaries call is read.
  while IFS= read -r row; do
    STAGE_ROWS+=("$row")
  done < <(awk -v seen="${STAGE_BINARIES_SEEN:-0}" '
    /^ *Running / || /^ *Doc-tests / {
      n++
      name = ($1 == "Doc-tests") ? "doc-tests " $2 : $2
      # "Running unittests src/lib.rs (target/debug/deps/boxoffice_domain-HASH)":
      # the crate names the row, else every crate is "unittests".
      if ($2 == "unittests") {
        crate = $NF; gsub(/[()]/, "", crate); sub(/.*\//, "", crate); sub(/-[0-9a-f]+$/, "", crate)
        name = "unittests " crate " " $3
      }
    }
    /^test result:/ && n > seen {
      secs = $NF; sub(/s$/, "", secs)
      printf "  %s|%.1f|%s\n", name, secs, ($6 == 0 ? "ok" : "FAILED")
    }' "$log")
  STAGE_BINARIES_SEEN=$(grep -cE '^ *(Running|Doc-tests) ' "$log" || true)
}

stage_table() {
  local row name secs state width=10
  if [ -n "$STAGE_CURRENT" ]; then
    STAGE_ROWS+=("$STAGE_CURRENT|$(stage_secs "$STAGE_CURRENT_START")|FAILED")
    STAGE_CURRENT=""
  fi
  for row in "${STAGE_ROWS[@]}"; do
    name=${row%%|*}
    [ "${#name}" -gt "$width" ] && width=${#name}
  done
  {
    echo "== stage times (wall clock)"
    printf "%-${width}s %9s  %s\n" stage seconds result
    for row in "${STAGE_ROWS[@]}"; do
      IFS='|' read -r name secs state <<<"$row"
      printf "%-${width}s %9s  %s\n" "$name" "$secs" "$state"
    done
    printf "%-${width}s %9s  (%s min)\n" total "$(stage_secs "$STAGE_RUN_START")" \
      "$(awk -v s="$(stage_secs "$STAGE_RUN_START")" 'BEGIN { printf "%.1f", s / 60 }')"
  } | tee ${STAGE_TABLE_FILE:+"$STAGE_TABLE_FILE"}
}
