#!/bin/sh
# bench/deps.sh: installs what `make bench` needs beyond the build, when it
# is missing: Debian's wrk, redis-server (with redis-cli), sqlite3, curl
# (and Node.js with npm on a machine that has none), then Quirrel from npm
# into bench/node_modules exactly as bench/package-lock.json pins it.
# Needs root (or sudo) only when a Debian package is missing.
set -eu
cd "$(dirname "$0")"

want="wrk redis-server redis-tools sqlite3 curl"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || want="$want nodejs npm"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "bench deps: installing Debian packages:$missing"
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
    elif command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "bench deps: run as root, or install them yourself: apt-get install$missing" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# redis-server's package may start a system instance; the benchmark starts
# its own on a Unix socket and never talks to that one.

if ! { [ -d node_modules/quirrel ] && [ node_modules/.package-lock.json -nt package-lock.json ]; }; then
    echo "bench deps: npm ci (Quirrel, the peer)"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
