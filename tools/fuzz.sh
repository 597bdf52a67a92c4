#!/bin/bash
# fuzz.sh SECONDS TARGET... : runs each libFuzzer harness build/fuzz/fuzz_TARGET
# for SECONDS, on its committed seed corpus fuzz/corpus/TARGET (read only)
# plus build/fuzz/corpus/TARGET (where new inputs go), with the dictionary
# fuzz/TARGET.dict when there is one. Crashes are kept as
# build/fuzz/artifacts/TARGET-crash-*. Ends with one line:
#   fuzz: N targets, E execs, C crashes (S s each)
# and exits 1 when any target crashed. Logs: build/fuzz/logs/TARGET.log.
set -u
cd "$(dirname "$0")/.."
seconds=${1:?usage: tools/fuzz.sh SECONDS TARGET...}
shift
mkdir -p build/fuzz/artifacts build/fuzz/logs
total_execs=0 crashes=0 n=0
for t in "$@"; do
    bin=build/fuzz/fuzz_$t
    [ -x "$bin" ] || { echo "fuzz: $bin is missing (make fuzz-bins)" >&2; crashes=$((crashes + 1)); continue; }
    mkdir -p "build/fuzz/corpus/$t"
    dict=()
    [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
    log=build/fuzz/logs/$t.log
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="build/fuzz/artifacts/$t-" "${dict[@]}" \
        "build/fuzz/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
    total_execs=$((total_execs + ${execs:-0}))
    n=$((n + 1))
    if [ $rc -ne 0 ]; then
        crashes=$((crashes + 1))
        echo "  $t: CRASH (exit $rc) after ${execs:-?} execs; see $log"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' "$log" | head -8 | sed 's/^/    /'
    else
        echo "  $t: ${execs:-0} execs in ${seconds}s, ${cov:-cov: ?}, $(ls "build/fuzz/corpus/$t" | wc -l) new corpus inputs"
    fi
done
echo "fuzz: $n targets, $total_execs execs, $crashes crashes (${seconds}s each)"
[ $crashes -eq 0 ]
