#!/bin/bash
# test.sh: the whole test suite, as `make test` runs it, ending in one
# summary line. Stages:
#   1. build (warnings are errors), static analysis (make lint: cppcheck and
#      clang-tidy, any finding fails), unit tests (cmocka), config example check
#   2. integration tests: the real binary over loopback HTTP (node --test),
#      then the JS client's tests (clients/js, with examples/nextjs) against it
#   3. fault tests, short mode: kill -9, SIGTERM, disk full, read-only and
#      locked database, misbehaving targets, fd exhaustion, clock jumps
#      (tests/faults; FAULTS_LONG=1 for the long mode `make soak` runs)
#   4. the same unit, integration and JS client tests under AddressSanitizer + UBSan
#   5. the unit tests under valgrind
#   6. a short libFuzzer run of each fuzz/ harness (FUZZ_SMOKE_SECONDS, 15 s each)
# Each stage runs even if an earlier one failed, so one run shows everything.
#
#   tools/test.sh                 everything
#   tools/test.sh unit DIR        unit tests built in DIR (e.g. build)
#   tools/test.sh integration DIR integration tests against DIR/asyncqueue
#   tools/test.sh js DIR          JS client tests against DIR/asyncqueue
#   tools/test.sh faults DIR      fault tests against DIR/asyncqueue
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
MAKE=${MAKE:-make}
jobs=$(nproc 2>/dev/null || echo 2)
log_dir=build/test-logs
mkdir -p "$log_dir"

declare -a summary=()
failed=0

note() { printf '\n==== %s\n' "$*"; }

# failure_notes collects, for each failed node test, its name and the first
# lines of its error, printed again just above the summary so a CI log that
# keeps only its tail still says what broke.
declare -a failure_notes=()
note_failures() { # note_failures STAGE OUTPUT
    local line
    while IFS= read -r line; do failure_notes+=("$1: ${line:0:400}"); done < <(
        printf '%s\n' "$2" | sed -n '/^✖ failing tests:/,$p' \
            | grep -E '^(test at |✖ [^f])|^ +[A-Za-z]*Error|^ +(actual|expected):' \
            | grep -v '^✖ failing tests' | sed 's/^ *//' | head -24)
}

# run_unit DIR [WRAPPER...]: runs every unit test binary in DIR/tests.
run_unit() {
    local dir=$1; shift
    local pass=0 fail=0 tests=0 out
    for t in "$dir"/tests/test_*; do
        [ -x "$t" ] || continue
        out=$("$@" "$t" 2>&1)
        local rc=$?
        printf '%s\n' "$out" | grep -E '^\[ *(PASSED|FAILED|  FAILED|==========) *\]|^\[  ERROR|valgrind|ERROR SUMMARY|leak' | sed "s|^|$(basename "$t"): |"
        local n
        n=$(printf '%s\n' "$out" | sed -n 's/^\[==========\] \([0-9]*\) test(s) run\./\1/p' | tail -1)
        tests=$((tests + ${n:-0}))
        if [ $rc -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); printf '%s\n' "$out" | tail -40; fi
    done
    unit_result="$pass/$((pass + fail)) binaries, $tests tests"
    [ $fail -eq 0 ]
}

ensure_node_modules() {
    (cd tests/integration && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; } \
        || npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

# run_integration BIN: runs the node integration suite against BIN.
run_integration() {
    local bin=$1 out rc
    ensure_node_modules || { integration_result="npm ci failed"; return 1; }
    out=$(cd tests/integration && AQ_BIN="$root/$bin" node --test --test-concurrency="${AQ_TEST_CONCURRENCY:-2}" \
          --test-reporter=spec ./*.test.mjs 2>&1)
    rc=$?
    printf '%s\n' "$out" > "$log_dir/integration-$(echo "$bin" | tr / _).log"
    printf '%s\n' "$out" | grep -E '^ *(✔|✖|ℹ (tests|pass|fail|duration))' | sed 's/^/  /'
    [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -A30 -E '✖' | head -150
    [ $rc -ne 0 ] && note_failures "integration ($bin)" "$out"
    local pass fail
    pass=$(printf '%s\n' "$out" | sed -n 's/^ℹ pass \([0-9]*\)/\1/p' | tail -1)
    fail=$(printf '%s\n' "$out" | sed -n 's/^ℹ fail \([0-9]*\)/\1/p' | tail -1)
    integration_result="${pass:-0} passed, ${fail:-?} failed"
    [ $rc -eq 0 ]
}

# run_js BIN: runs the JS client's tests (clients/js/test, which also drive
# examples/nextjs) against BIN.
run_js() {
    local bin=$1 out rc
    (cd clients/js && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; } \
        || npm ci --no-audit --no-fund --loglevel=error >/dev/null) || { js_result="npm ci failed"; return 1; }
    out=$(cd clients/js && AQ_BIN="$root/$bin" node --test --test-concurrency="${AQ_TEST_CONCURRENCY:-2}" \
          --test-timeout=120000 --test-reporter=spec ./test/*.test.mjs 2>&1)
    rc=$?
    printf '%s\n' "$out" > "$log_dir/js-$(echo "$bin" | tr / _).log"
    printf '%s\n' "$out" | grep -E '^ *(✔|✖|ℹ (tests|pass|fail|todo|duration))' | sed 's/^/  /'
    [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -A30 -E '✖' | head -150
    [ $rc -ne 0 ] && note_failures "js ($bin)" "$out"
    local pass fail todo
    pass=$(printf '%s\n' "$out" | sed -n 's/^ℹ pass \([0-9]*\)/\1/p' | tail -1)
    fail=$(printf '%s\n' "$out" | sed -n 's/^ℹ fail \([0-9]*\)/\1/p' | tail -1)
    todo=$(printf '%s\n' "$out" | sed -n 's/^ℹ todo \([0-9]*\)/\1/p' | tail -1)
    js_result="${pass:-0} passed, ${fail:-?} failed, ${todo:-0} todo"
    [ $rc -eq 0 ]
}

# run_faults BIN: runs the fault suite against BIN, one file at a time (the
# faults time things, and two at once on two cores would blur them). A test
# marked todo is a known daemon bug (docs/reliability.md): counted, not failed.
run_faults() {
    local bin=$1 out rc
    out=$(cd tests/faults && AQ_BIN="$root/$bin" node --test --test-concurrency="${AQ_FAULTS_CONCURRENCY:-1}" \
          --test-reporter=spec ./*.test.mjs 2>&1)
    rc=$?
    printf '%s\n' "$out" > "$log_dir/faults-$(echo "$bin" | tr / _).log"
    printf '%s\n' "$out" | sed '/^✖ failing tests:/,$d' | grep -E '^ *(✔|✖|﹣|ℹ (tests|pass|fail|todo|skipped|duration))' \
        | cut -c1-220 | sed 's/^/  /'
    [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -A30 -E '^✖' | grep -v '# bug:' | head -150
    [ $rc -ne 0 ] && note_failures "faults ($bin)" "$out"
    local pass fail todo skipped
    pass=$(printf '%s\n' "$out" | sed -n 's/^ℹ pass \([0-9]*\)/\1/p' | tail -1)
    fail=$(printf '%s\n' "$out" | sed -n 's/^ℹ fail \([0-9]*\)/\1/p' | tail -1)
    todo=$(printf '%s\n' "$out" | sed -n 's/^ℹ todo \([0-9]*\)/\1/p' | tail -1)
    skipped=$(printf '%s\n' "$out" | sed -n 's/^ℹ skipped \([0-9]*\)/\1/p' | tail -1)
    faults_result="${pass:-0} passed, ${fail:-?} failed, ${skipped:-0} skipped, ${todo:-0} todo"
    [ $rc -eq 0 ]
}

stage() { # stage NAME RESULT-TEXT STATUS
    if [ "$3" -eq 0 ]; then summary+=("$1: $2"); else summary+=("$1: FAILED ($2)"); failed=1; fi
}

case "${1:-all}" in
unit)
    run_unit "${2:-build}"; rc=$?; echo "unit: $unit_result"; exit $rc ;;
integration)
    run_integration "${2:-build}/asyncqueue"; rc=$?; echo "integration: $integration_result"; exit $rc ;;
js)
    run_js "${2:-build}/asyncqueue"; rc=$?; echo "js: $js_result"; exit $rc ;;
faults)
    run_faults "${2:-build}/asyncqueue"; rc=$?; echo "faults: $faults_result"; exit $rc ;;
all) ;;
*) echo "usage: tools/test.sh [unit DIR | integration DIR | js DIR | faults DIR]" >&2; exit 2 ;;
esac

start=$(date +%s)

note "build (gcc, -Werror)"
if $MAKE --no-print-directory -s -j"$jobs" all unit-bins >"$log_dir/build.log" 2>&1; then
    stage build ok 0
else
    cat "$log_dir/build.log"; stage build "see build log" 1
fi

note "static analysis (cppcheck, clang-tidy: any finding fails)"
if $MAKE --no-print-directory -s lint >"$log_dir/lint.log" 2>&1; then
    stage lint "no findings" 0
else
    grep -E 'warning:|error:' "$log_dir/lint.log" | sort -u; stage lint "see $log_dir/lint.log" 1
fi

note "unit tests"
run_unit build; stage unit "$unit_result" $?

note "config example"
if $MAKE --no-print-directory -s check-example; then stage config-example "up to date" 0
else stage config-example "asyncqueue.conf.example differs from --print-config-example" 1; fi

note "integration tests"
run_integration build/asyncqueue; stage integration "$integration_result" $?

note "JS client tests (clients/js, examples/nextjs)"
run_js build/asyncqueue; stage js "$js_result" $?

note "fault tests (short: kill -9, SIGTERM, disk full, locks, targets, fds, clock)"
run_faults build/asyncqueue; stage faults "$faults_result" $?

note "AddressSanitizer + UBSan build"
san=address,undefined
sandir=build/address-undefined
if $MAKE --no-print-directory -s -j"$jobs" SANITIZE=$san all unit-bins >"$log_dir/build-asan.log" 2>&1; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    note "unit tests (ASan+UBSan)"
    run_unit "$sandir"; stage unit-asan "$unit_result" $?
    note "integration tests (ASan+UBSan)"
    run_integration "$sandir/asyncqueue"; stage integration-asan "$integration_result" $?
    note "JS client tests (ASan+UBSan)"
    run_js "$sandir/asyncqueue"; stage js-asan "$js_result" $?
    unset ASAN_OPTIONS UBSAN_OPTIONS
else
    cat "$log_dir/build-asan.log"; stage asan-build "see build log" 1
fi

note "unit tests (valgrind)"
run_unit build valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
stage unit-valgrind "$unit_result" $?

note "fuzzing (libFuzzer + ASan + UBSan, ${FUZZ_SMOKE_SECONDS:-15} s per target)"
if $MAKE --no-print-directory -s -j"$jobs" fuzz-bins >"$log_dir/build-fuzz.log" 2>&1; then
    fuzz_out=$(bash tools/fuzz.sh "${FUZZ_SMOKE_SECONDS:-15}" $(ls fuzz/fuzz_*.c | sed 's|fuzz/fuzz_\(.*\)\.c|\1|'))
    rc=$?
    printf '%s\n' "$fuzz_out"
    stage fuzz "$(printf '%s\n' "$fuzz_out" | tail -1 | sed 's/^fuzz: //')" $rc
else
    cat "$log_dir/build-fuzz.log"; stage fuzz "build failed (needs clang and libclang-rt-14-dev)" 1
fi

elapsed=$(( $(date +%s) - start ))
if [ ${#failure_notes[@]} -gt 0 ]; then
    printf '\n==== failures (details above and in %s)\n' "$log_dir"
    for s in "${failure_notes[@]}"; do printf '  %s\n' "$s"; done
fi
printf '\n==== summary\n'
for s in "${summary[@]}"; do printf '  %s\n' "$s"; done
if [ $failed -eq 0 ]; then
    printf 'make test: PASS (%s stages, %ss)\n' "${#summary[@]}" "$elapsed"
else
    printf 'make test: FAIL (see the stages above, %ss)\n' "$elapsed"
fi
exit $failed
