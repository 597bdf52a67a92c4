#!/bin/bash
# bench/run.sh: `make bench`. Measures the daemon side by side with the HTTP
# ceiling (bench/ceiling.c) and a real peer (Quirrel on Redis), and writes
# docs/benchmarks.md. Everything runs on loopback, on ports the OS picks
# (port 0, read back from each server) or on a Unix socket (Redis), and
# every load loop is bounded in count and time; the whole run is under a
# hard time limit (BENCH_MAX_SECONDS, default 570 s, installs included).
#
#   make bench                  full run: every figure the median of 3 runs
#   BENCH_QUICK=1 make bench    1 run per figure, short durations, smaller N
#
# Scenarios, one function each: scenario_accept, scenario_dispatch,
# scenario_concurrency, scenario_scale. Overrides (env): BENCH_RUNS,
# BENCH_ACCEPT_SECONDS, BENCH_DISPATCH_N, BENCH_CONC_N, BENCH_HOLD_MS,
# BENCH_SCALE_N, BENCH_ONLY="accept dispatch ..." (a subset, for
# development), BENCH_OUT (report path, default docs/benchmarks.md),
# AQ_BIN (daemon binary, default build/asyncqueue).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    RUNS=${BENCH_RUNS:-1}; ACCEPT_S=${BENCH_ACCEPT_SECONDS:-2}; DISPATCH_N=${BENCH_DISPATCH_N:-5000}
    CONC_N=${BENCH_CONC_N:-2000}; HOLD_MS=${BENCH_HOLD_MS:-5000}; SCALE_N=${BENCH_SCALE_N:-100000}
else
    RUNS=${BENCH_RUNS:-3}; ACCEPT_S=${BENCH_ACCEPT_SECONDS:-4}; DISPATCH_N=${BENCH_DISPATCH_N:-20000}
    CONC_N=${BENCH_CONC_N:-10000}; HOLD_MS=${BENCH_HOLD_MS:-20000}; SCALE_N=${BENCH_SCALE_N:-1000000}
fi
ONLY=${BENCH_ONLY:-accept dispatch concurrency scale}
MAX_SECONDS=${BENCH_MAX_SECONDS:-570} # everything after `make` built the daemon
OUT=${BENCH_OUT:-docs/benchmarks.md}
AQ=${AQ_BIN:-build/asyncqueue}
CONNS="1 32 128 256"
BATCH_N=100 # tasks in a request of the batch run (POST /v1/tasks/batch)
BATCH_C=32  # its connections
HTTP_THREADS=2             # the daemon's default http_threads: the ceiling uses as many
LOAD_CONC=64               # loadgen connections when enqueueing for dispatch scenarios
W=$ROOT/build/bench/run    # scratch: databases, logs, raw results
BIN=$ROOT/build/bench
RES=$W/results.txt         # one "key value" line per measurement
CMDS=$W/commands.txt       # the exact commands, first time each kind runs
T_START=$(date +%s)

log() { printf '[bench %4ss] %s\n' "$(($(date +%s) - T_START))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
now_ms() { date +%s%3N; }

# ---- processes: started in the background, stopped by pid ----
declare -A PID
bg_start() { # NAME CMD...: output in $W/NAME.out and $W/NAME.err
    local name=$1; shift
    : >"$W/$name.out"; : >"$W/$name.err" # now, so no one reads a previous run's port
    "$@" >"$W/$name.out" 2>"$W/$name.err" &
    PID[$name]=$!
}
bg_stop() { # NAME: SIGTERM, then SIGKILL after 15 s
    local name=$1 pid=${PID[$1]:-} i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "PID[$name]"
}
cleanup() {
    local n
    for n in "${!PID[@]}"; do bg_stop "$n"; done
    if [ -n "${WATCHDOG:-}" ]; then
        local kids; kids=$(pgrep -P "$WATCHDOG")
        kill "$WATCHDOG" 2>/dev/null; wait "$WATCHDOG" 2>/dev/null
        [ -n "$kids" ] && kill $kids 2>/dev/null
        WATCHDOG=
    fi
}
trap cleanup EXIT
trap 'log "interrupted (time limit or signal)"; exit 124' INT TERM

# wait_port NAME [FILE]: the port a server printed ("port=N"), within 15 s.
wait_port() {
    local name=$1 file=${2:-$W/$1.out} i p
    for ((i = 0; i < 300; i++)); do
        p=$(grep -o -m1 'port=[0-9]*' "$file" 2>/dev/null | cut -d= -f2)
        [ -n "$p" ] && { echo "$p"; return 0; }
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.05
    done
    die "$name did not report its port (see $W/$name.err)"
}

cmd_note() { # KIND COMMAND: remembers the first command of each kind
    grep -q "^$1	" "$CMDS" 2>/dev/null || printf '%s\t%s\n' "$1" "$2" >>"$CMDS"
}

# ---- results and statistics ----
rec() { printf '%s %s\n' "$1" "$2" >>"$RES"; }
# fig KEY FIELD: FIELD is med, min, max or n over the recorded values.
fig() {
    awk -v k="$1" '$1 == k { print $2 }' "$RES" | sort -g | awk -v f="$2" '{ v[++n] = $1 }
        END {
            if (!n) exit
            if (f == "n") print n
            else if (f == "min") print v[1]
            else if (f == "max") print v[n]
            else print (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2)
        }'
}
fmt() { # FORMAT VALUE: printf, or "n/a" for no value
    [ -n "$2" ] && printf "$1" "$2" || printf 'n/a'
}
# cell KEY FORMAT: "median (min–max)", or just the value for one run.
cell() {
    local m; m=$(fig "$1" med)
    [ -z "$m" ] && { printf 'n/a'; return; }
    if [ "$(fig "$1" n)" -gt 1 ]; then
        printf "$2 ($2–$2)" "$m" "$(fig "$1" min)" "$(fig "$1" max)"
    else
        printf "$2" "$m"
    fi
}
calc() { awk "BEGIN { printf \"%.6f\", $* }" 2>/dev/null; }

# ---- the daemon, the ceiling, the fake target, Quirrel ----
# aq_start NAME DB ARGS...: starts the daemon; sets AQ_PORT.
aq_start() {
    local name=$1 db=$2; shift 2
    local cmd=("$AQ" --listen 127.0.0.1:0 --db "$db" --allow-private-targets "$@")
    cmd_note "daemon-$name" "${cmd[*]}"
    bg_start "$name" "${cmd[@]}"
    AQ_PORT=$(wait_port "$name" "$W/$name.err")
}
aq_pid() { echo "${PID[$1]}"; }

fake_stats() { curl -s --max-time 5 "http://127.0.0.1:$FAKE_PORT/stats"; }
fake_get() { fake_stats | sed -n "s/^$1=//p"; }
fake_reset() { curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$FAKE_PORT/reset"; }

# wait_fake KEY N SECONDS: until fakesrv has counted N of KEY (target or
# webhook), or the time is up. Returns 1 on time-out.
wait_fake() {
    local key=$1 n=$2 deadline=$(($(date +%s) + $3)) v
    while [ "$(date +%s)" -lt "$deadline" ]; do
        v=$(fake_get "$key"); [ "${v:-0}" -ge "$n" ] && return 0
        sleep 0.1
    done
    return 1
}

QUIRREL_PASS=bench-passphrase
# quirrel_start NAME: a fresh Redis (appendfsync always, on a Unix socket in
# its own directory) and Quirrel; sets Q_PORT and Q_TOKEN.
quirrel_start() {
    local name=$1 dir=$W/$1-redis i
    rm -rf "$dir"; mkdir -p "$dir"
    local rcmd=(redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700
                --dir "$dir" --appendonly yes --appendfsync always --save "")
    cmd_note redis "${rcmd[*]@Q}"
    bg_start "$name-redis" "${rcmd[@]}"
    for ((i = 0; i < 100; i++)); do
        redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    [ "$(redis-cli -s "$dir/redis.sock" config get appendfsync | tail -1)" = always ] \
        || die "redis did not start with appendfsync always"
    REDIS_SOCK=$dir/redis.sock
    cmd_note quirrel "cd bench && PORT=0 HOST=127.0.0.1 REDIS_URL=$dir/redis.sock PASSPHRASES=$QUIRREL_PASS DISABLE_TELEMETRY=1 LOG_LEVEL=info node quirrel-main.js"
    : >"$W/$name.out"; : >"$W/$name.err"
    ( cd bench && exec env PORT=0 HOST=127.0.0.1 REDIS_URL="$dir/redis.sock" PASSPHRASES=$QUIRREL_PASS \
        DISABLE_TELEMETRY=1 LOG_LEVEL=info node quirrel-main.js ) >"$W/$name.out" 2>"$W/$name.err" &
    PID[$name]=$!
    Q_PORT=$(wait_port "$name")
    Q_TOKEN=$(curl -s --max-time 10 -X PUT -u "bench:$QUIRREL_PASS" "http://127.0.0.1:$Q_PORT/tokens/bench")
    [ -n "$Q_TOKEN" ] || die "could not get a Quirrel token"
}
quirrel_stop() { bg_stop "$1"; bg_stop "$1-redis"; }
q_endpoint() { node -e 'process.stdout.write(encodeURIComponent(process.argv[1]))' "$1"; }

# ---- request bodies (~300 bytes, the same task for every system) ----
# task_body FILE CALLBACK_PATH DELAY_S TIMEOUT_S: the daemon's task.
task_body() {
    printf '{"callbackUrl":"http://127.0.0.1:%s%s","headers":{"X-Model":"big"},"payload":{"prompt":"a lighthouse at dusk, oil painting","size":"1024x1024"},"webhookUrl":"http://127.0.0.1:%s/webhook","retries":3,"timeout":%s,"delay":%s,"metadata":{"userId":42,"requestId":"req_8f14e45fceea167a"}}\n' \
        "$FAKE_PORT" "$2" "$FAKE_PORT" "$4" "$3" >"$1"
}
# quirrel_body FILE DELAY_MS: Quirrel's enqueue body: the same payload and
# metadata as a string (as its client sends them), 3 retries.
quirrel_body() {
    printf '{"body":"{\\"payload\\":{\\"prompt\\":\\"a lighthouse at dusk, oil painting\\",\\"size\\":\\"1024x1024\\"},\\"metadata\\":{\\"userId\\":42,\\"requestId\\":\\"req_8f14e45fceea167a\\"}}","delay":%s,"retry":[1000,2000,4000]}\n' \
        "$2" >"$1"
}

# ---- wrk ----
# wrk_post KEY PORT PATH BODY AUTH CONNS SECONDS: one wrk run; records
# KEY.rps (2xx answers a second), KEY.p50/p99/p999 (ms), KEY.errors, and
# sets OK2XX (2xx answers) for the count check.
wrk_post() {
    local key=$1 port=$2 path=$3 body=$4 auth=$5 c=$6 secs=$7 t=2 f=$W/wrk.out
    [ "$c" -lt 2 ] && t=1
    local cmd=(wrk -t"$t" -c"$c" -d"${secs}s" --timeout 5s -s "$ROOT/bench/post.lua" "http://127.0.0.1:$port")
    local shown=${auth/${Q_TOKEN:-no token}/TOKEN}
    cmd_note "wrk-$(echo "$key" | cut -d. -f2)" "BENCH_BODY=$body BENCH_PATH=$path${auth:+ BENCH_AUTH='$shown'} ${cmd[*]}"
    BENCH_BODY=$body BENCH_PATH=$path BENCH_AUTH=$auth timeout $((secs + 30)) "${cmd[@]}" >"$f" 2>&1 \
        || { log "wrk failed: $(tail -3 "$f")"; OK2XX=0; return 1; }
    wrk_record "$key" "$f"
}
wrk_record() { # KEY FILE
    local key=$1 f=$2
    local bench_requests=0 bench_duration_us=1 bench_status_errors=0 bench_connect_errors=0 bench_read_errors=0
    local bench_write_errors=0 bench_timeouts=0 bench_p50_us=0 bench_p99_us=0 bench_p999_us=0 bench_bytes=0 bench_max_us=0
    grep -q '^bench_requests=' "$f" || { log "wrk printed no figures: $(tail -3 "$f")"; OK2XX=0; return 1; }
    eval "$(grep -E '^bench_[a-z0-9_]+=[0-9]+$' "$f")"
    local ok=$((bench_requests - bench_status_errors))
    local errs=$((bench_connect_errors + bench_read_errors + bench_write_errors + bench_timeouts + bench_status_errors))
    rec "$key.rps" "$(calc "$ok / ($bench_duration_us / 1e6)")"
    rec "$key.p50" "$(calc "$bench_p50_us / 1000")"
    rec "$key.p99" "$(calc "$bench_p99_us / 1000")"
    rec "$key.p999" "$(calc "$bench_p999_us / 1000")"
    rec "$key.errors" "$errs"
    OK2XX=$ok
}

proc_cpu_s() { # PID...: user+system CPU seconds so far, summed
    local p
    for p in "$@"; do cat "/proc/$p/stat"; done |
        awk -v hz="$(getconf CLK_TCK)" '{ t += $14 + $15 } END { printf "%.2f", t / hz }'
}
# rec_cpu KEY CPU0 PID...: KEY.cpu_us, server CPU microseconds per 2xx answer.
rec_cpu() {
    local key=$1 cpu0=$2; shift 2
    [ "${OK2XX:-0}" -gt 0 ] && rec "$key.cpu_us" "$(calc "($(proc_cpu_s "$@") - $cpu0) * 1e6 / $OK2XX")"
}
proc_field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# ================= scenarios =================

# Accept: wrk at 1/32/128/256 connections against the ceiling, the daemon
# (fresh database each time, default durability) and Quirrel, interleaved
# run by run; afterwards, the tasks stored are counted against the 2xx.
scenario_accept() {
    log "accept: $RUNS run(s) x {1,32,128,256} connections x {ceiling, daemon, Quirrel}, ${ACCEPT_S}s each"
    local body=$W/accept-task.json qbody=$W/accept-quirrel.json db=$W/accept.db
    task_body "$body" /generate 3600 300 # an hour ahead: nothing is dispatched meanwhile
    quirrel_body "$qbody" 3600000
    local bbody=$W/accept-batch.json i
    { printf '{"tasks":['; for ((i = 0; i < BATCH_N; i++)); do
        [ "$i" -gt 0 ] && printf ','; tr -d '\n' <"$body"; done; printf ']}\n'; } >"$bbody"
    rec accept.body_bytes "$(($(wc -c <"$body") - 1))"
    rec accept.qbody_bytes "$(($(wc -c <"$qbody") - 1))"

    # The ceiling answers with a real 202 body of the daemon.
    rm -f "$db"*; aq_start aq-accept "$db"
    local code; code=$(curl -s --max-time 5 -o "$W/response.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$body" "http://127.0.0.1:$AQ_PORT/v1/tasks")
    bg_stop aq-accept; rm -f "$db"*
    [ "$code" = 202 ] || die "the daemon answered $code to the benchmark task: $(cat "$W/response.json")"
    cmd_note ceiling "$BIN/ceiling --response $W/response.json --threads $HTTP_THREADS"
    bg_start ceiling "$BIN/ceiling" --response "$W/response.json" --threads "$HTTP_THREADS"
    local cport; cport=$(wait_port ceiling)
    quirrel_start q-accept
    local qpath; qpath=/queues/$(q_endpoint "http://127.0.0.1:$FAKE_PORT/generate")

    local run c before after stored cpu0
    for ((run = 1; run <= RUNS; run++)); do
        for c in $CONNS; do
            cpu0=$(proc_cpu_s "${PID[ceiling]}")
            wrk_post "accept.ceiling.$c" "$cport" /v1/tasks "$body" "" "$c" "$ACCEPT_S"
            rec_cpu "accept.ceiling.$c" "$cpu0" "${PID[ceiling]}"

            rm -f "$db"*; aq_start aq-accept "$db"
            cpu0=$(proc_cpu_s "${PID[aq-accept]}")
            wrk_post "accept.daemon.$c" "$AQ_PORT" /v1/tasks "$body" "" "$c" "$ACCEPT_S"
            rec_cpu "accept.daemon.$c" "$cpu0" "${PID[aq-accept]}"
            bg_stop aq-accept # a clean stop: every commit under way has finished
            stored=$(sqlite3 "$db" 'SELECT count(*) FROM tasks')
            rec "accept.daemon.$c.stored_minus_2xx" "$((stored - OK2XX))"
            rm -f "$db"*

            before=$(redis-cli -s "$REDIS_SOCK" zcard queue)
            cpu0=$(proc_cpu_s "${PID[q-accept]}" "${PID[q-accept-redis]}")
            wrk_post "accept.quirrel.$c" "$Q_PORT" "$qpath" "$qbody" "Bearer $Q_TOKEN" "$c" "$ACCEPT_S"
            rec_cpu "accept.quirrel.$c" "$cpu0" "${PID[q-accept]}" "${PID[q-accept-redis]}"
            sleep 0.5 # requests wrk left in flight still get stored
            after=$(redis-cli -s "$REDIS_SOCK" zcard queue)
            rec "accept.quirrel.$c.stored_minus_2xx" "$((after - before - OK2XX))"
            log "accept run $run c=$c: ceiling $(fig accept.ceiling.$c.rps max | cut -d. -f1)/s max so far, daemon $(fig accept.daemon.$c.rps max | cut -d. -f1)/s, Quirrel $(fig accept.quirrel.$c.rps max | cut -d. -f1)/s"
        done
        # The same task, BATCH_N to a request (POST /v1/tasks/batch).
        rm -f "$db"*; aq_start aq-accept "$db"
        cpu0=$(proc_cpu_s "${PID[aq-accept]}")
        wrk_post "accept.batch.$BATCH_C" "$AQ_PORT" /v1/tasks/batch "$bbody" "" "$BATCH_C" "$ACCEPT_S"
        rec "accept.batch.$BATCH_C.tasks" "$(calc "$(awk -v k="accept.batch.$BATCH_C.rps" '$1 == k { v = $2 } END { print v }' "$RES") * $BATCH_N")"
        [ "${OK2XX:-0}" -gt 0 ] && rec "accept.batch.$BATCH_C.cpu_us" "$(calc "($(proc_cpu_s "${PID[aq-accept]}") - $cpu0) * 1e6 / ($OK2XX * $BATCH_N)")"
        bg_stop aq-accept
        stored=$(sqlite3 "$db" 'SELECT count(*) FROM tasks')
        rec "accept.batch.$BATCH_C.stored_minus_2xx" "$((stored - OK2XX * BATCH_N))"
        rm -f "$db"*
        log "accept run $run batch: $(fig accept.batch.$BATCH_C.tasks max | cut -d. -f1) tasks/s max so far"
    done
    bg_stop ceiling
    quirrel_stop q-accept
}

# Dispatch end to end: N tasks due now, a fast local target and receiver
# (fakesrv, C, one epoll thread); from the first 202 to the last webhook.
# Quirrel has no webhooks: its figure ends at the last target call.
scenario_dispatch() {
    log "dispatch: $RUNS run(s) x $DISPATCH_N tasks, daemon then Quirrel"
    local body=$W/dispatch-task.json qbody=$W/dispatch-quirrel.json db=$W/dispatch.db run f
    task_body "$body" /generate 0 30
    quirrel_body "$qbody" 0
    for ((run = 1; run <= RUNS; run++)); do
        rm -f "$db"*; aq_start aq-dispatch "$db"
        fake_reset
        local pid cpu0; pid=$(aq_pid aq-dispatch); cpu0=$(proc_cpu_s "$pid")
        f=$W/loadgen.out
        cmd_note loadgen-dispatch "$BIN/loadgen --url http://127.0.0.1:$AQ_PORT/v1/tasks --body $body -n $DISPATCH_N -c $LOAD_CONC --max-seconds 120"
        "$BIN/loadgen" --url "http://127.0.0.1:$AQ_PORT/v1/tasks" --body "$body" -n "$DISPATCH_N" -c "$LOAD_CONC" \
            --max-seconds 120 >"$f" || log "dispatch: not every task was accepted: $(tr '\n' ' ' <"$f")"
        if wait_fake webhook "$DISPATCH_N" 120; then
            local first last; first=$(sed -n 's/^first_ok_ms=//p' "$f"); last=$(fake_get last_webhook_ms)
            rec dispatch.daemon.rps "$(calc "$DISPATCH_N * 1000 / ($last - $first)")"
            rec dispatch.daemon.accept_rps "$(calc "$DISPATCH_N * 1000 / ($(sed -n 's/^last_ok_ms=//p' "$f") - $(sed -n 's/^start_ms=//p' "$f"))")"
            rec dispatch.daemon.cpu_us "$(calc "($(proc_cpu_s "$pid") - $cpu0) * 1e6 / $DISPATCH_N")"
        else
            log "dispatch: only $(fake_get webhook) of $DISPATCH_N webhooks within 120 s"
            rec dispatch.daemon.incomplete 1
        fi
        bg_stop aq-dispatch
        local done_ok; done_ok=$(sqlite3 "$db" "SELECT (SELECT count(*) FROM tasks WHERE status = 'completed') || ' ' || (SELECT count(*) FROM webhooks WHERE status = 'delivered')")
        rec dispatch.daemon.completed "${done_ok% *}"
        rec dispatch.daemon.delivered "${done_ok#* }"
        rec dispatch.daemon.bytes_per_task "$(sqlite3 "$db" 'SELECT (p.page_count - f.freelist_count) * s.page_size FROM pragma_page_count p, pragma_freelist_count f, pragma_page_size s' | awk -v n="$DISPATCH_N" '{ printf "%.0f", $1 / n }')"
        rm -f "$db"*
        log "dispatch run $run: daemon $(fig dispatch.daemon.rps max | cut -d. -f1) tasks/s (max so far)"
    done

    quirrel_start q-dispatch
    local qpath; qpath=/queues/$(q_endpoint "http://127.0.0.1:$FAKE_PORT/generate")
    for ((run = 1; run <= RUNS; run++)); do
        fake_reset
        local qcpu0; qcpu0=$(proc_cpu_s "${PID[q-dispatch]}" "${PID[q-dispatch-redis]}")
        f=$W/loadgen-q.out
        cmd_note loadgen-quirrel "$BIN/loadgen --url http://127.0.0.1:$Q_PORT$qpath --body $qbody -n $DISPATCH_N -c $LOAD_CONC -H 'Authorization: Bearer TOKEN' --max-seconds 120"
        "$BIN/loadgen" --url "http://127.0.0.1:$Q_PORT$qpath" --body "$qbody" -n "$DISPATCH_N" -c "$LOAD_CONC" \
            -H "Authorization: Bearer $Q_TOKEN" --max-seconds 120 >"$f" \
            || log "dispatch: Quirrel did not accept every task: $(tr '\n' ' ' <"$f")"
        if wait_fake target "$DISPATCH_N" 120; then
            local first last; first=$(sed -n 's/^first_ok_ms=//p' "$f"); last=$(fake_get last_target_ms)
            rec dispatch.quirrel.rps "$(calc "$DISPATCH_N * 1000 / ($last - $first)")"
            rec dispatch.quirrel.cpu_us "$(calc "($(proc_cpu_s "${PID[q-dispatch]}" "${PID[q-dispatch-redis]}") - $qcpu0) * 1e6 / $DISPATCH_N")"
            rec dispatch.quirrel.accept_rps "$(calc "$DISPATCH_N * 1000 / ($(sed -n 's/^last_ok_ms=//p' "$f") - $(sed -n 's/^start_ms=//p' "$f"))")"
        else
            log "dispatch: Quirrel made only $(fake_get target) of $DISPATCH_N calls within 120 s"
            rec dispatch.quirrel.incomplete 1
        fi
        log "dispatch run $run: Quirrel $(fig dispatch.quirrel.rps max | cut -d. -f1) tasks/s (max so far)"
    done
    quirrel_stop q-dispatch
}

# Concurrency: CONC_N tasks whose target holds each call HOLD_MS, all in
# flight at once; the daemon's threads, peak RSS and CPU, and the time from
# the first 202 to the last webhook.
scenario_concurrency() {
    log "concurrency: $RUNS run(s) x $CONC_N calls held ${HOLD_MS} ms each"
    local body=$W/conc-task.json db=$W/conc.db run f pid
    task_body "$body" "/hold/$HOLD_MS" 0 60
    local inflight=$((CONC_N > 10000 ? CONC_N : 10000))
    for ((run = 1; run <= RUNS; run++)); do
        rm -f "$db"*; aq_start aq-conc "$db" --max-inflight "$inflight" --max-per-host 0
        pid=$(aq_pid aq-conc)
        fake_reset
        local cpu0; cpu0=$(proc_cpu_s "$pid")
        f=$W/loadgen-conc.out
        "$BIN/loadgen" --url "http://127.0.0.1:$AQ_PORT/v1/tasks" --body "$body" -n "$CONC_N" -c "$LOAD_CONC" \
            --max-seconds 60 >"$f" || log "concurrency: not every task was accepted: $(tr '\n' ' ' <"$f")"
        local threads=0 th deadline=$(($(date +%s) + HOLD_MS / 1000 + 60)) done_all=0 wh
        while [ "$(date +%s)" -lt "$deadline" ]; do
            th=$(proc_field "$pid" Threads); [ "${th:-0}" -gt "$threads" ] && threads=$th
            wh=$(fake_get webhook); [ "${wh:-0}" -ge "$CONC_N" ] && { done_all=1; break; }
            sleep 0.25
        done
        rec conc.threads "$threads"
        rec conc.rss_mb "$(calc "$(proc_field "$pid" VmHWM) / 1024")"
        rec conc.cpu_s "$(calc "$(proc_cpu_s "$pid") - $cpu0")"
        rec conc.max_in_flight "$(fake_get max_holding)"
        if [ "$done_all" = 1 ]; then
            rec conc.all_done_s "$(calc "($(fake_get last_webhook_ms) - $(sed -n 's/^first_ok_ms=//p' "$f")) / 1000")"
        else
            log "concurrency: only $wh of $CONC_N webhooks in time"
            rec conc.incomplete 1
        fi
        bg_stop aq-conc
        rm -f "$db"*
        log "concurrency run $run: threads $threads, all done in $(fig conc.all_done_s max) s (max so far)"
    done
}

# Scale: SCALE_N tasks in the database (bench/gen-tasks.sql): start-to-ready,
# accept at 128 connections against an empty database, bytes per task, the
# claim (bench/claimtime.c) and a GET.
scenario_scale() {
    log "scale: generating $SCALE_N tasks"
    local big=$W/scale.db empty=$W/scale-empty.db run t0 t1
    rm -f "$big"*; aq_start aq-scale "$big"; bg_stop aq-scale # creates the schema
    t0=$(now_ms)
    cmd_note generate "sqlite3 $big -cmd '.parameter set @n $SCALE_N' -cmd '.parameter set @now NOW_MS' -cmd \".parameter set @target 'http://127.0.0.1:$FAKE_PORT'\" < bench/gen-tasks.sql"
    sqlite3 "$big" -cmd ".parameter set @n $SCALE_N" -cmd ".parameter set @now $(now_ms)" \
        -cmd ".parameter set @target 'http://127.0.0.1:$FAKE_PORT'" <bench/gen-tasks.sql >/dev/null \
        || die "generating the tasks failed"
    t1=$(now_ms)
    rec scale.gen_s "$(calc "($t1 - $t0) / 1000")"
    [ "$(sqlite3 "$big" 'SELECT count(*) FROM tasks')" = "$SCALE_N" ] || die "generated the wrong number of tasks"
    # Back to WAL, as the daemon leaves its database, so start-up is timed
    # as a restart and not as a one-off journal conversion.
    [ "$(sqlite3 "$big" 'PRAGMA journal_mode = WAL')" = wal ] || die "cannot switch the generated database to WAL"
    rec scale.bytes_per_task "$(sqlite3 "$big" 'SELECT (p.page_count - f.freelist_count) * s.page_size FROM pragma_page_count p, pragma_freelist_count f, pragma_page_size s' | awk -v n="$SCALE_N" '{ printf "%.0f", $1 / n }')"
    rec scale.file_mb "$(calc "$(stat -c %s "$big") / 1048576")"
    sqlite3 "$big" "SELECT id FROM tasks WHERE seq % $((SCALE_N / 1000)) = 7" >"$W/scale-ids.txt"
    local body=$W/accept-task.json
    [ -f "$body" ] || task_body "$body" /generate 3600 300
    sync "$big" # the generated file is on disk before anything is timed

    for ((run = 1; run <= RUNS; run++)); do
        rm -f "$empty"*
        scale_ready "ready_empty" "$empty"
        wrk_post "scale.empty" "$AQ_PORT" /v1/tasks "$body" "" 128 "$ACCEPT_S"
        bg_stop aq-scale; rm -f "$empty"*

        scale_ready "ready_big" "$big"
        wrk_post "scale.big" "$AQ_PORT" /v1/tasks "$body" "" 128 "$ACCEPT_S"
        bg_stop aq-scale
        # Back to SCALE_N tasks for the next run.
        sqlite3 "$big" "DELETE FROM tasks WHERE seq > $SCALE_N; PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
        log "scale run $run: ready $(fig scale.ready_big max) ms, accept $(fig scale.big.rps max | cut -d. -f1)/s vs empty $(fig scale.empty.rps max | cut -d. -f1)/s (max so far)"
    done

    # GET /v1/tasks/{id} over the whole table, then the claim.
    aq_start aq-scale "$big"
    local f=$W/wrk-get.out
    cmd_note wrk-get "BENCH_IDS=$W/scale-ids.txt wrk -t1 -c1 -d${ACCEPT_S}s -s bench/get.lua http://127.0.0.1:PORT"
    cmd_note wrk-list "BENCH_LIST='limit=100&status=failed&queue=images' wrk -t1 -c1 -d${ACCEPT_S}s -s bench/get.lua http://127.0.0.1:PORT"
    for ((run = 1; run <= RUNS; run++)); do
        BENCH_IDS=$W/scale-ids.txt timeout $((ACCEPT_S + 30)) wrk -t1 -c1 -d"${ACCEPT_S}s" --timeout 5s \
            -s "$ROOT/bench/get.lua" "http://127.0.0.1:$AQ_PORT" >"$f" 2>&1 && wrk_record scale.get1 "$f"
        BENCH_IDS=$W/scale-ids.txt timeout $((ACCEPT_S + 30)) wrk -t2 -c32 -d"${ACCEPT_S}s" --timeout 5s \
            -s "$ROOT/bench/get.lua" "http://127.0.0.1:$AQ_PORT" >"$f" 2>&1 && wrk_record scale.get32 "$f"
        # Lists: the newest page, and a filtered one (3 % of the tasks match).
        BENCH_LIST="limit=100" timeout $((ACCEPT_S + 30)) wrk -t1 -c1 -d"${ACCEPT_S}s" --timeout 5s \
            -s "$ROOT/bench/get.lua" "http://127.0.0.1:$AQ_PORT" >"$f" 2>&1 && wrk_record scale.list1 "$f"
        BENCH_LIST="limit=100&status=failed&queue=images" timeout $((ACCEPT_S + 30)) wrk -t1 -c1 \
            -d"${ACCEPT_S}s" --timeout 5s -s "$ROOT/bench/get.lua" "http://127.0.0.1:$AQ_PORT" >"$f" 2>&1 \
            && wrk_record scale.listf "$f"
    done
    bg_stop aq-scale
    local us
    for ((run = 1; run <= RUNS; run++)); do
        # Nothing due (the daemon's usual claim), then the day-ahead tasks all due.
        us=$("$BIN/claimtime" "$big" --ahead-ms 0 --tries 5 | sed -n 's/^us=//p' | sort -n | sed -n 3p)
        rec scale.claim_none_ms "$(calc "$us / 1000")"
        us=$("$BIN/claimtime" "$big" --ahead-ms $((2 * 86400000)) --limit 512 --tries 5 | sed -n 's/^us=//p' | sort -n | sed -n 3p)
        rec scale.claim_512_ms "$(calc "$us / 1000")"
    done
    rm -f "$big"* "$empty"*
}

# scale_ready KEY DB: starts aq-scale on DB; records ms from exec to the
# first 200 from /readyz; sets AQ_PORT.
scale_ready() {
    local key=$1 db=$2 t0 port="" i code
    t0=$(now_ms)
    bg_start aq-scale "$AQ" --listen 127.0.0.1:0 --db "$db" --allow-private-targets
    for ((i = 0; i < 3000; i++)); do
        [ -z "$port" ] && port=$(grep -o -m1 'port=[0-9]*' "$W/aq-scale.err" 2>/dev/null | cut -d= -f2)
        if [ -n "$port" ]; then
            code=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")
            [ "$code" = 200 ] && break
        fi
        kill -0 "${PID[aq-scale]}" 2>/dev/null || die "the daemon exited at start-up on $db: $(tail -3 "$W/aq-scale.err")"
        sleep 0.005
    done
    rec "scale.$key" "$(($(now_ms) - t0))"
    AQ_PORT=$port
}

# ================= the report =================

machine_info() {
    local cpu mem disk fs fsync
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    fs=$(df -PT "$W" | awk 'NR == 2 { print $2 " on " $1 }')
    disk=$(lsblk -dno NAME,ROTA,SIZE 2>/dev/null | awk '$1 !~ /^(zram|loop)/ { printf "%s%s (%s, %s)", sep, $1, $3, $2 == 1 ? "reported rotational" : "SSD"; sep = ", " }')
    fsync=$FSYNC_START
    cat <<EOF
| | |
|---|---|
| CPU | $(nproc) cores: ${cpu:-unknown} |
| memory | $mem |
| kernel | $(uname -sr) |
| disk | ${disk:-unknown}; the data directory is $fs |
| fsync | about ${fsync:-?} synchronous 4 KiB writes a second (\`dd oflag=dsync\`, before the run) |
| load average | at start $LOAD_START; at end $(cut -d' ' -f1-3 /proc/loadavg) |
| daemon | $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- src include migrations 2>/dev/null || echo ' (with uncommitted changes)'), $("$AQ" --version 2>/dev/null) |
| libraries | libmicrohttpd $(pkg-config --modversion libmicrohttpd), SQLite $(sqlite3 --version | cut -d' ' -f1) (CLI; the daemon links $(pkg-config --modversion sqlite3)), libcurl $(pkg-config --modversion libcurl), $(cc --version | head -1) |
| load generator | $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), on the same cores |
| peer | Quirrel $(node -p 'require("./bench/node_modules/quirrel/package.json").version' 2>/dev/null), Node.js $(node --version), $(redis-server --version | cut -d' ' -f1-3) |
EOF
}

verdict() { # CONDITION-as-awk-expression: met / missed / n/a
    local r; r=$(awk "BEGIN { print ($1) ? \"**met**\" : \"**missed**\" }" 2>/dev/null)
    printf '%s' "${r:-n/a}"
}
has() { [ -n "$(fig "$1" med)" ]; }

write_report() {
    local tmp=$W/report.md mode="full: the median of $RUNS runs, (min–max) beside it"
    [ "$QUICK" = 1 ] && mode="QUICK MODE (BENCH_QUICK=1): one short run per figure, smaller N; for development only, not for quoting"
    [ "$QUICK" != 1 ] && [ "$RUNS" -lt 3 ] && mode="$RUNS run(s) per figure"
    {
        cat <<EOF
# Benchmarks

Written by \`make bench\` (bench/run.sh) on $(date -u +%Y-%m-%dT%H:%MZ) in $(($(date +%s) - T_START)) s.
Mode: $mode.
Do not edit by hand: run \`make bench\` again. The targets come from issue 7.

## Machine

$(machine_info)

wrk, the fake target, Redis and Quirrel all share these cores with the
daemon, so every figure is for the whole box, load generator included.
If the load average above was not near zero, other work was running and
the figures are low and noisy.

## How it was run

- Everything on loopback: every server binds port 0 and reports the port
  the OS chose (Redis listens on a Unix socket only). Every load is bounded
  in count and time, and the whole run in time.
- **The daemon**: \`build/asyncqueue\` with its defaults (\`synchronous =
  full\`, group commit, \`http_threads = 2\`, \`workers = 2\`, log level
  info with stderr to a file, a fresh database file for each run on the
  disk above) plus \`--allow-private-targets\`, since the targets are on
  loopback. A \`202\` is sent after the commit.
- **The ceiling**: bench/ceiling.c, a bare libmicrohttpd server with the
  daemon's MHD mode (internal polling thread, \`poll()\`, a pool of
  $HTTP_THREADS threads, suspend/resume allowed), reading the same request body
  and answering the same \`202\` JSON body and headers (a body the daemon
  gave), but with no JSON parsing, no id and no database.
- **The peer**: Quirrel $(node -p 'require("./bench/node_modules/quirrel/package.json").version' 2>/dev/null) from npm (bench/package-lock.json)
  started like its production entry \`dist/cjs/src/api/main.js\` by
  bench/quirrel-main.js, with \`PORT\`, \`REDIS_URL\`, \`PASSPHRASES\` and
  \`DISABLE_TELEMETRY\`, on Debian's Redis with \`appendonly yes\`,
  \`appendfsync always\` (each write fsync'd before the reply). Two changes
  from its defaults, both in its favour: **its rate limiter (10,000 requests
  a minute per client) is lifted** through \`runQuirrel()\`'s \`rateLimiter\`
  option (\`max: 1e9\`), and \`LOG_LEVEL=info\` instead of its default
  \`trace\`, to log about as much as the daemon does. Requests carry a token
  issued by its \`PUT /tokens/bench\`, as its clients do.
- **The task**: $(fig accept.body_bytes med) bytes of JSON for the daemon (\`callbackUrl\`, \`headers\`,
  \`payload\`, \`webhookUrl\`, \`retries\`, \`timeout\`, \`delay\`, \`metadata\`); the
  same payload and metadata as Quirrel's \`body\` string, $(fig accept.qbody_bytes med) bytes with
  \`delay\` and \`retry\`. Accept runs schedule the task an hour ahead, so
  nothing is dispatched while they run.
- **The fake target and webhook receiver**: bench/fakesrv.c, C, one epoll
  thread, keep-alive: it answers at once (or after \`/hold/<ms>\`) and counts.
  It is not the bottleneck: it uses a fraction of one core at these rates.
- **Enqueueing for the dispatch scenarios**: bench/loadgen.c (C, plain
  sockets and one epoll loop like wrk, the request built once;
  $LOAD_CONC keep-alive connections, exactly N requests). The same for the
  daemon and Quirrel. Until 2026-11-29 it was a libcurl loop that spent
  about 16 µs of the shared cores a request (libcurl formats each
  request's headers a byte at a time); this one spends about 3.

### Commands

Ports are the ones this run got; TOKEN stands for Quirrel's token.

\`\`\`
$(awk -F'\t' '{ printf "# %s\n%s\n", $1, $2 }' "$CMDS" 2>/dev/null | sed "s#$ROOT/##g")
\`\`\`

EOF
        if has accept.daemon.128.rps; then
            cat <<EOF
## Accept: POST /v1/tasks with wrk

${ACCEPT_S} s per run. tasks/s counts 2xx answers only; latency in ms; errors
are socket errors, time-outs (5 s) and answers >= 400. "stored − 2xx" is the
number of tasks found stored afterwards (\`sqlite3 ... count(*)\`, Redis
\`ZCARD queue\`) minus the 2xx answers wrk counted: it must be between 0
(every answered task was stored) and the number of connections (requests
wrk had in flight when it stopped are stored but never counted).
"server CPU µs/task" is the user + system CPU time the server's processes
used during the run (/proc; Quirrel's includes Redis's) divided by the 2xx
answers: it depends far less than tasks/s on what else the machine runs.
The latencies are wrk's, which corrects them for coordinated omission: a
request slower than a connection's mean interval (the run's time divided
by its requests per connection) adds the samples a client sending at a
steady rate would have seen. At 1 connection that interval is about
0.2 ms, so a few stalls of 10 ms in a run (the disk's \`fdatasync\`) make
the p99 about 10 ms while nearly every request took 0.2 ms.

| connections | system | tasks/s | p50 | p99 | p99.9 | errors | stored − 2xx | server CPU µs/task |
|---:|---|---:|---:|---:|---:|---:|---:|---:|
EOF
            local c s name
            for c in $CONNS; do
                for s in ceiling daemon quirrel; do
                    case $s in ceiling) name="ceiling (bare MHD)" ;; daemon) name="**AsyncQueue**" ;; *) name="Quirrel + Redis" ;; esac
                    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" "$name" \
                        "$(cell "accept.$s.$c.rps" %.0f)" "$(cell "accept.$s.$c.p50" %.2f)" \
                        "$(cell "accept.$s.$c.p99" %.2f)" "$(cell "accept.$s.$c.p999" %.2f)" \
                        "$(cell "accept.$s.$c.errors" %.0f)" \
                        "$([ "$s" = ceiling ] && echo — || cell "accept.$s.$c.stored_minus_2xx" %.0f)" \
                        "$(cell "accept.$s.$c.cpu_us" %.1f)"
                done
            done
            echo
            echo "Daemon as a share of the ceiling (medians): $(for c in $CONNS; do printf '%s conns %s %%; ' "$c" "$(fmt %.0f "$(calc "100 * $(fig accept.daemon.$c.rps med) / $(fig accept.ceiling.$c.rps med)")")"; done)"
            echo "daemon / Quirrel: $(for c in $CONNS; do printf '%s conns %sx; ' "$c" "$(fmt %.1f "$(calc "$(fig accept.daemon.$c.rps med) / $(fig accept.quirrel.$c.rps med)")")"; done)"
            echo
            if has "accept.batch.$BATCH_C.tasks"; then
                echo "The same task $BATCH_N to a request (\`POST /v1/tasks/batch\`, all stored or none), $BATCH_C connections:"
                echo "**$(cell "accept.batch.$BATCH_C.tasks" %.0f)** tasks/s; a request's p50 $(cell "accept.batch.$BATCH_C.p50" %.2f) ms,"
                echo "p99 $(cell "accept.batch.$BATCH_C.p99" %.2f) ms; errors $(cell "accept.batch.$BATCH_C.errors" %.0f);"
                echo "stored − $BATCH_N × 2xx $(cell "accept.batch.$BATCH_C.stored_minus_2xx" %.0f) (0 to $((BATCH_N * BATCH_C)) is right);"
                echo "server CPU $(cell "accept.batch.$BATCH_C.cpu_us" %.1f) µs a task."
                echo
            fi
        fi
        if has dispatch.daemon.rps || has dispatch.quirrel.rps; then
            cat <<EOF
## Dispatch end to end

$DISPATCH_N tasks due at once, enqueued by loadgen over $LOAD_CONC connections; the
target (fakesrv) answers 200 at once. For the daemon: target called,
result stored, webhook written to the outbox and delivered, from the first
202 to the last webhook received. Quirrel has no webhooks: its figure ends
at the last target call (less work than the daemon does). When the enqueue
rate is close to the end-to-end rate, accepting (under the dispatch load)
was the limit, not dispatching. Server CPU covers accept and dispatch
(Quirrel's includes Redis's).

| system | tasks/s end to end | enqueue rate meanwhile (/s) | server CPU µs/task | bytes per task on disk |
|---|---:|---:|---:|---:|
| **AsyncQueue** | $(cell dispatch.daemon.rps %.0f) | $(cell dispatch.daemon.accept_rps %.0f) | $(cell dispatch.daemon.cpu_us %.0f) | $(cell dispatch.daemon.bytes_per_task %.0f) |
| Quirrel + Redis | $(cell dispatch.quirrel.rps %.0f) | $(cell dispatch.quirrel.accept_rps %.0f) | $(cell dispatch.quirrel.cpu_us %.0f) | — |

After each daemon run: $(fig dispatch.daemon.completed min)–$(fig dispatch.daemon.completed max) of $DISPATCH_N tasks completed, $(fig dispatch.daemon.delivered min)–$(fig dispatch.daemon.delivered max) webhooks delivered (database).
Bytes per task: the used pages of the database file (tasks, attempts,
webhook outbox and its attempts, indexes) divided by the tasks.

EOF
        fi
        if has conc.threads; then
            cat <<EOF
## Concurrency: $CONC_N slow calls at once

$CONC_N tasks, each target call held ${HOLD_MS} ms by fakesrv, daemon started with
\`--max-inflight $((CONC_N > 10000 ? CONC_N : 10000)) --max-per-host 0\` (all calls go to one host, whose default cap is 1,000; the daemon raises its own open-files limit to the hard limit;
this script raises the hard limit). Time from the first 202 to the last
webhook; threads are the most seen in /proc (sampled every 0.25 s); RSS is
the peak (VmHWM); CPU is user + system over the whole scenario.

| figure | value |
|---|---:|
| calls in flight at once (most seen by the target) | $(cell conc.max_in_flight %.0f) |
| time until all $CONC_N webhooks arrived (s) | $(cell conc.all_done_s %.2f) |
| daemon threads (most) | $(cell conc.threads %.0f) |
| daemon peak RSS (MB) | $(cell conc.rss_mb %.1f) |
| daemon CPU (s) | $(cell conc.cpu_s %.2f) |

Quirrel is not run here: its worker holds at most 100 calls at once
(\`concurrency = 100\`), so $CONC_N calls of ${HOLD_MS} ms would take $((CONC_N / 100 * HOLD_MS / 1000)) s.

EOF
        fi
        if has scale.ready_big; then
            cat <<EOF
## Scale: $SCALE_N tasks in the database

Generated by bench/gen-tasks.sql in $(fmt %.1f "$(fig scale.gen_s med)") s: 10 % queued (scheduled a day
ahead), 75 % completed, 10 % failed after 4 attempts, 5 % cancelled, with
their attempts and delivered webhooks, as the daemon writes them. Caches
were warm (the file had just been written).

| figure | empty database | $SCALE_N tasks |
|---|---:|---:|
| start to ready (\`/readyz\` 200), ms | $(cell scale.ready_empty %.0f) | $(cell scale.ready_big %.0f) |
| accept at 128 connections, tasks/s | $(cell scale.empty.rps %.0f) | $(cell scale.big.rps %.0f) |
| accept p99 at 128 connections, ms | $(cell scale.empty.p99 %.2f) | $(cell scale.big.p99 %.2f) |
| bytes per task on disk | — | $(cell scale.bytes_per_task %.0f) ($(fmt %.0f "$(fig scale.file_mb med)") MB file) |
| GET /v1/tasks/{id}, 1 connection: p50 / p99 ms | — | $(cell scale.get1.p50 %.3f) / $(cell scale.get1.p99 %.3f) |
| GET /v1/tasks/{id}, 32 connections: requests/s | — | $(cell scale.get32.rps %.0f) |
| GET /v1/tasks?limit=100 (newest page), 1 connection: p50 / p99 ms | — | $(cell scale.list1.p50 %.3f) / $(cell scale.list1.p99 %.3f) |
| GET /v1/tasks?limit=100&status=failed&queue=images, 1 connection: p50 / p99 ms | — | $(cell scale.listf.p50 %.3f) / $(cell scale.listf.p99 %.3f) |
| claim, nothing due (the usual case), ms | — | $(cell scale.claim_none_ms %.3f) |
| claim of 512 due tasks (the most in one transaction), ms | — | $(cell scale.claim_512_ms %.3f) |

The claim is the daemon's own statement (bench/claimtime.c, checked against
the binary; median of 5 tries, rolled back) for the queue \`default\`, which
holds a quarter of the waiting tasks; the GETs read 1,000 ids spread over the
whole table; the lists are newest first (three tasks in a hundred are failed ones in
\`images\`; a page scans a bounded window of the table, so a rare filter can
answer fewer than \`limit\` tasks and a cursor, as docs/api.md says).

EOF
        fi
        cat <<EOF
## Targets (issue 7)

| target | measured (median) | verdict |
|---|---|---|
EOF
        local d128 c128 q128 p99 p50 r
        d128=$(fig accept.daemon.128.rps med); c128=$(fig accept.ceiling.128.rps med); q128=$(fig accept.quirrel.128.rps med)
        p99=$(fig accept.daemon.128.p99 med); p50=$(fig accept.daemon.1.p50 med)
        if [ -n "$d128" ]; then
            echo "| accept ≥ 25,000 tasks/s at 128 connections | $(fmt %.0f "$d128") | $(verdict "$d128 >= 25000") |"
            echo "| accept p99 ≤ 15 ms at 128 connections | $(fmt %.2f "$p99") ms | $(verdict "$p99 <= 15") |"
            echo "| accept ≥ 45 % of the ceiling (128 connections) | $(fmt %.0f "$(calc "100 * $d128 / $c128")") % | $(verdict "$d128 >= 0.45 * $c128") |"
            echo "| accept ≥ 5x Quirrel (128 connections) | $(fmt %.1f "$(calc "$d128 / $q128")")x | $(verdict "$d128 >= 5 * $q128") |"
            echo "| accept p50 < 0.5 ms at 1 connection | $(fmt %.3f "$p50") ms | $(verdict "$p50 < 0.5") |"
            r=$(awk '$1 ~ /^accept\.(daemon|quirrel)\.[0-9]+\.stored_minus_2xx$/ { split($1, k, "."); if ($2 < 0 || $2 > k[3]) bad++ } END { print bad + 0 }' "$RES")
            echo "| (check) tasks stored = 2xx answers, within the requests in flight at the stop | $r run(s) outside the bounds | $(verdict "$r == 0") |"
        fi
        if has dispatch.daemon.rps; then
            local dd dq; dd=$(fig dispatch.daemon.rps med); dq=$(fig dispatch.quirrel.rps med)
            echo "| dispatch end to end ≥ 5,000 tasks/s | $(fmt %.0f "$dd") | $(verdict "$dd >= 5000") |"
            [ -n "$dq" ] && echo "| dispatch ≥ 4x Quirrel | $(fmt %.1f "$(calc "$dd / $dq")")x | $(verdict "$dd >= 4 * $dq") |"
        fi
        if has conc.threads; then
            local note=""; [ "$CONC_N" -lt 10000 ] || [ "$HOLD_MS" -ne 20000 ] && note=" (only $CONC_N calls of $HOLD_MS ms in this mode)"
            echo "| 10,000 concurrent 20 s calls: ≤ 16 threads$note | $(fig conc.threads med) | $(verdict "$(fig conc.threads max) <= 16") |"
            echo "| ... ≤ 256 MB RSS | $(fmt %.1f "$(fig conc.rss_mb med)") MB | $(verdict "$(fig conc.rss_mb med) <= 256") |"
            if has conc.all_done_s; then
                echo "| ... all done within 25 s | $(fmt %.2f "$(fig conc.all_done_s med)") s | $(verdict "$(fig conc.all_done_s med) <= 25 && $(fig conc.max_in_flight min) >= $CONC_N") |"
            else
                echo "| ... all done within 25 s | not all done | **missed** |"
            fi
        fi
        if has scale.ready_big; then
            local rb eb bb; rb=$(fig scale.ready_big med); eb=$(fig scale.empty.rps med); bb=$(fig scale.big.rps med)
            echo "| $SCALE_N tasks: ready in under 2 s | $rb ms | $(verdict "$rb < 2000") |"
            echo "| $SCALE_N tasks: accept within 20 % of an empty database | $(fmt %.0f "$(calc "100 * $bb / $eb")") % of empty | $(verdict "$bb >= 0.8 * $eb") |"
        fi
        echo
        cat <<'EOF2'
## Profiling

`bash bench/profile.sh` (after a `make bench`) runs the daemon and the
ceiling under `valgrind --tool=callgrind` with the same loads and prints
the instructions spent per accepted task and per dispatched task, and the
functions they go to. Instruction counts do not depend on what else the
machine runs, so they are the figures to compare before and after a change
when the timings above are noisy.

EOF2
        echo "What the profiles showed, each change with its effect, and the targets
still missed: [performance.md](performance.md).

Raw figures of every run: build/bench/run/results.txt (not committed)."
    } >"$tmp"
    mv "$tmp" "$ROOT/$OUT"
    log "wrote $OUT"
}

# ================= main =================

main() {
    # The time limit: TERM to this shell (its trap stops everything it
    # started, by pid), then KILL if a command does not return. Every
    # command run in the foreground is itself bounded well below the grace.
    local self=$$
    ( sleep "$MAX_SECONDS"; echo "[bench] time limit of $MAX_SECONDS s reached" >&2
      kill -TERM "$self"; sleep 60; kill -KILL "$self" ) &
    WATCHDOG=$!
    log "mode: $([ "$QUICK" = 1 ] && echo quick || echo full), $RUNS run(s) per figure; scenarios: $ONLY"
    timeout 300 sh bench/deps.sh || die "installing the benchmark's dependencies failed"
    [ -x "$AQ" ] || die "$AQ is missing: run make first"
    AQ=$(cd "$(dirname "$AQ")" && pwd)/$(basename "$AQ")
    rm -rf "$W"; mkdir -p "$W"; : >"$RES"; : >"$CMDS"
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    # The disk's fsync rate, before the benchmark loads it.
    FSYNC_START=$(dd if=/dev/zero of="$W/fsync.tmp" bs=4k count=500 oflag=dsync 2>&1 | awk -F', ' '/copied/ { split($3, a, " "); printf "%.0f", 500 / a[1] }')
    rm -f "$W/fsync.tmp"
    # Ten thousand calls in flight need descriptors: raise the limit for
    # this script and what it starts (the daemon raises its own to the hard limit).
    ulimit -Hn 65536 2>/dev/null; ulimit -n "$(ulimit -Hn)" 2>/dev/null

    local cflags=(-O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wformat=2 -Wvla -Werror)
    mkdir -p "$BIN"
    cc "${cflags[@]}" -o "$BIN/fakesrv" bench/fakesrv.c || die "building fakesrv"
    cc "${cflags[@]}" $(pkg-config --cflags libmicrohttpd) -o "$BIN/ceiling" bench/ceiling.c \
        $(pkg-config --libs libmicrohttpd) || die "building ceiling"
    cc "${cflags[@]}" -o "$BIN/loadgen" bench/loadgen.c || die "building loadgen"
    cc "${cflags[@]}" -o "$BIN/claimtime" bench/claimtime.c $(pkg-config --libs sqlite3) || die "building claimtime"
    # claimtime carries a copy of the daemon's claim statement: the daemon's
    # binary must hold the very same text, or the claim timed is not its own.
    grep -qF "$("$BIN/claimtime" --print-sql)" <(strings "$AQ") \
        || die "bench/claimtime.c's claim statement differs from src/store_sqlite.c's ST_CLAIM_TASKS"

    bg_start fakesrv "$BIN/fakesrv" --max-seconds 900
    FAKE_PORT=$(wait_port fakesrv)
    cmd_note fakesrv "$BIN/fakesrv"

    local s
    for s in $ONLY; do
        case $s in
            accept) scenario_accept ;;
            dispatch) scenario_dispatch ;;
            concurrency) scenario_concurrency ;;
            scale) scenario_scale ;;
            *) die "unknown scenario $s" ;;
        esac
    done
    bg_stop fakesrv
    write_report
    log "done in $(($(date +%s) - T_START)) s"
}

main "$@"
