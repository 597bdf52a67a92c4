#!/bin/sh
# known-bugs.sh: builds the unit tests with -DAQ_KNOWN_BUGS into
# build/known-bugs/ and runs them. Tests named known_bug_* reproduce bugs
# found in src/ that are not fixed yet: each fails until its bug is fixed,
# so they stay out of the normal suite. Run from anywhere:
#   sh tests/unit/known-bugs.sh
set -u
cd "$(dirname "$0")/../.."
# Link against the sanitized objects, so memory errors show as such.
make --no-print-directory -s -j2 SANITIZE=address,undefined all >/dev/null || exit 1
out=build/known-bugs
mkdir -p "$out"
objs=$(ls build/address-undefined/obj/*.o | grep -v '/main\.o$')
for src in tests/unit/test_*.c; do
    grep -q AQ_KNOWN_BUGS "$src" || continue
    bin=$out/$(basename "$src" .c)
    cc -O1 -g -fsanitize=address,undefined -std=c11 -D_GNU_SOURCE -DAQ_KNOWN_BUGS -Iinclude \
        $(pkg-config --cflags libmicrohttpd libcurl sqlite3 libcjson uuid libcrypto) \
        -o "$bin" "$src" $objs \
        $(pkg-config --libs libmicrohttpd libcurl sqlite3 libcjson uuid libcrypto) -lpthread -lm -lcmocka \
        || exit 1
    # A failing cmocka test longjmps past its frees: leaks are expected here.
    ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 "$bin" 2>&1 \
        | sed -n '/^\[ RUN .*known_bug/,/^\[ *\(OK\|FAILED\) *\]/p' | grep -E 'known_bug|ERROR|SUMMARY|FAILED'
done
