#!/bin/bash
# bench/profile.sh: where the daemon's instructions go, per task, under
# valgrind --tool=callgrind (perf's hardware counters are not available on
# every machine here; instruction counts do not depend on what else the
# machine runs, so before/after comparisons of a fix stay meaningful on a
# shared box).
#
#   bash bench/profile.sh            accept (ceiling and daemon) and dispatch
#   PROFILE_SECONDS=20 bash bench/profile.sh
#
# Needs `make` and `make bench` (or BENCH_QUICK=1 make bench) to have run
# once: it uses build/asyncqueue and the helpers in build/bench/. Writes
# callgrind files under build/bench/profile/ and prints, for each case,
# instructions per request (or task) and the functions that cost the most
# (inclusive). Bounded: every load is bounded in count and time.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
P=$ROOT/build/bench/profile
BIN=$ROOT/build/bench
AQ=${AQ_BIN:-$ROOT/build/asyncqueue}
SECS=${PROFILE_SECONDS:-10}
N=${PROFILE_DISPATCH_N:-2000}
command -v valgrind >/dev/null || { echo "profile: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
for b in "$AQ" "$BIN/fakesrv" "$BIN/ceiling" "$BIN/loadgen"; do
    [ -x "$b" ] || { echo "profile: $b is missing: run make and BENCH_QUICK=1 make bench first" >&2; exit 1; }
done
rm -rf "$P"; mkdir -p "$P"
declare -A PID
stop() { local p=${PID[$1]:-}; [ -n "$p" ] && { kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; unset "PID[$1]"; }; }
trap 'for n in "${!PID[@]}"; do stop "$n"; done' EXIT
port_of() { # FILE: waits up to 60 s (valgrind starts slowly)
    local i p
    for ((i = 0; i < 600; i++)); do
        p=$(grep -o -m1 'port=[0-9]*' "$1" 2>/dev/null | cut -d= -f2)
        [ -n "$p" ] && { echo "$p"; return; }
        sleep 0.1
    done
    echo "profile: no port in $1" >&2; exit 1
}
hot() { # CALLGRIND_FILE COUNT: total Ir per unit and the top inclusive functions
    local total; total=$(callgrind_annotate --auto=no "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
    printf '  %s instructions in all, %d per request/task (%s units)\n' "$total" "$((total / $2))" "$2"
    callgrind_annotate --auto=no --inclusive=yes "$1" 2>/dev/null |
        awk -v n="$2" '/^ *[0-9,]+ +\( *[0-9.]+%\) +[^ ]/ && !/PROGRAM TOTALS/ {
            ir = $1; gsub(",", "", ir)
            pct = $0; sub(/^ *[0-9,]+ +\( */, "", pct); sub(/%\).*$/, "", pct)
            fn = $0; sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", fn); sub(/ \[.*$/, "", fn)
            if (fn ~ /start_thread|^\?\?\?:0x/) next
            i = index(fn, "/src/"); if (i) fn = substr(fn, i + 1)
            i = index(fn, "/bench/"); if (i) fn = substr(fn, i + 1)
            sub(/^.*\/sysdeps\//, "libc:", fn); sub(/^\.\/[a-z-]+\/\.\/[a-z-]+\//, "libc:", fn)
            if (seen[fn]++) next
            printf "  %9d Ir/unit %6.2f%%  %s\n", ir / n, pct, fn; if (++k == 25) exit }'
}

: >"$P/fake.out"
"$BIN/fakesrv" --max-seconds 600 >"$P/fake.out" 2>&1 & PID[fake]=$!
FP=$(port_of "$P/fake.out")
task() { # FILE DELAY_S
    printf '{"callbackUrl":"http://127.0.0.1:%s/generate","headers":{"X-Model":"big"},"payload":{"prompt":"a lighthouse at dusk, oil painting","size":"1024x1024"},"webhookUrl":"http://127.0.0.1:%s/webhook","retries":3,"timeout":30,"delay":%s,"metadata":{"userId":42,"requestId":"req_8f14e45fceea167a"}}\n' "$FP" "$FP" "$2" >"$1"
}
task "$P/accept.json" 3600
task "$P/dispatch.json" 0

echo "== accept, daemon: wrk -c128 for ${SECS}s under callgrind"
valgrind --tool=callgrind --callgrind-out-file="$P/accept.cg" "$AQ" --listen 127.0.0.1:0 \
    --db "$P/accept.db" --allow-private-targets 2>"$P/accept.err" & PID[aq]=$!
AP=$(port_of "$P/accept.err")
curl -s -o "$P/response.json" -H 'Content-Type: application/json' --data-binary @"$P/accept.json" "http://127.0.0.1:$AP/v1/tasks"
BENCH_BODY=$P/accept.json timeout $((SECS + 60)) wrk -t2 -c128 -d"${SECS}s" --timeout 30s -s bench/post.lua "http://127.0.0.1:$AP" >"$P/accept.wrk" 2>&1
stop aq
n=$(sqlite3 "$P/accept.db" 'SELECT count(*) FROM tasks')
hot "$P/accept.cg" "$n"

echo "== accept, ceiling (bare MHD): the same load"
valgrind --tool=callgrind --callgrind-out-file="$P/ceiling.cg" "$BIN/ceiling" --response "$P/response.json" \
    >"$P/ceiling.out" 2>"$P/ceiling.err" & PID[ceiling]=$!
CP=$(port_of "$P/ceiling.out")
BENCH_BODY=$P/accept.json timeout $((SECS + 60)) wrk -t2 -c128 -d"${SECS}s" --timeout 30s -s bench/post.lua "http://127.0.0.1:$CP" >"$P/ceiling.wrk" 2>&1
stop ceiling
n=$(sed -n 's/^bench_requests=//p' "$P/ceiling.wrk")
hot "$P/ceiling.cg" "${n:-1}"

echo "== dispatch end to end: $N tasks (accept + target call + result + webhook) under callgrind"
valgrind --tool=callgrind --callgrind-out-file="$P/dispatch.cg" "$AQ" --listen 127.0.0.1:0 \
    --db "$P/dispatch.db" --allow-private-targets 2>"$P/dispatch.err" & PID[aq]=$!
AP=$(port_of "$P/dispatch.err")
curl -s -o /dev/null "http://127.0.0.1:$FP/reset"
"$BIN/loadgen" --url "http://127.0.0.1:$AP/v1/tasks" --body "$P/dispatch.json" -n "$N" -c 64 --max-seconds 300 >"$P/dispatch.load"
for ((i = 0; i < 1200; i++)); do
    w=$(curl -s "http://127.0.0.1:$FP/stats" | sed -n 's/^webhook=//p')
    [ "${w:-0}" -ge "$N" ] && break
    sleep 0.25
done
stop aq
echo "  webhooks received: ${w:-0} of $N"
hot "$P/dispatch.cg" "$N"
echo "callgrind files: $P/*.cg (callgrind_annotate --tree=calling FILE for the call tree)"
