#!/bin/sh
# deps.sh GROUP... : installs the Debian packages a make target needs, when
# they are missing. Groups: build (compile and run), test (everything
# `make test` uses). Needs root (or sudo) only when something is missing.
set -eu

# tzdata: the time zones (/usr/share/zoneinfo) that tz.c reads.
pkgs_build="gcc make pkg-config ca-certificates libmicrohttpd-dev libcurl4-openssl-dev
            libsqlite3-dev libcjson-dev uuid-dev libssl-dev libmimalloc-dev tzdata"
# chromium: the dashboard's browser test (driven by playwright-core, which
# never downloads a browser); prometheus: its promtool checks /metrics;
# man-db, groff-base, systemd, nginx-light: the install and nginx checks;
# iproute2: network namespaces for the SSRF tests; clang and
# libclang-rt-14-dev: libFuzzer; clang-tidy and cppcheck: `make lint`; openssl: test certificates; sqlite3: the
# fault checker reads the database; e2fsprogs (mkfs.ext4, chattr) and mount:
# the small file system of the disk-full test; faketime: the wall-clock
# jump test (libfaketime).
pkgs_test="libcmocka-dev valgrind sqlite3 curl man-db groff-base systemd nginx-light
           chromium prometheus iproute2 openssl clang libclang-rt-14-dev clang-tidy cppcheck
           e2fsprogs mount faketime"

want=""
for group in "$@"; do
    eval "want=\"\$want \$pkgs_$group\""
done
# Node.js 20 is on our machines; only a machine without node gets Debian's.
case " $* " in *" test "*) command -v node >/dev/null 2>&1 || want="$want nodejs npm" ;; esac

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "deps: run as root, or install them yourself: apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
