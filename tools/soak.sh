#!/bin/bash
# soak.sh [DIR]: what `make soak` runs against DIR/asyncqueue (default build):
#   1. the fault suite in its long mode (FAULTS_LONG=1: 60 kill -9 rounds,
#      longer outages and overloads);
#   2. the soak: SOAK_MINUTES (default 30) at 70 % of the capacity a short
#      ramp measures (SOAK_RATE=N skips the ramp), sampling RSS, open files,
#      threads, WAL size and p99 accept latency;
#   3. docs/reliability.md rewritten from the results of both.
# SOAK_SKIP_FAULTS=1 skips step 1 (the report then shows the faults' last runs).
# Ends with one summary line; exits non-zero if a step failed.
set -u -o pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
minutes=${SOAK_MINUTES:-30}
start=$(date +%s)
failed=0
faults="skipped"
if [ "${SOAK_SKIP_FAULTS:-0}" != 1 ]; then
    printf '\n==== fault tests (long)\n'
    if FAULTS_LONG=1 bash tools/test.sh faults "$dir" | tee build/faults-long.log; then
        faults=$(tail -1 build/faults-long.log)
    else
        faults="FAILED ($(tail -1 build/faults-long.log))"; failed=1
    fi
fi
printf '\n==== soak (%s min)\n' "$minutes"
AQ_BIN="$dir/asyncqueue" node --max-old-space-size=8192 tests/faults/soak.mjs --minutes "$minutes" ${SOAK_RATE:+--rate "$SOAK_RATE"}
soak_rc=$?
[ $soak_rc -eq 0 ] || failed=1
node tests/faults/report.mjs
printf '\n==== summary\n  %s\n  soak: %s\n' "$faults" "$([ $soak_rc -eq 0 ] && echo PASS || echo FAIL)"
printf 'make soak: %s (%ss)\n' "$([ $failed -eq 0 ] && echo PASS || echo FAIL)" "$(( $(date +%s) - start ))"
exit $failed
