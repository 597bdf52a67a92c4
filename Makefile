# AsyncQueue: one non-recursive GNU Makefile.
#
#   make            build build/asyncqueue
#   make run        install missing packages, build, start on 127.0.0.1:8080
#   make test       install missing packages, build, run every test (also
#                   under AddressSanitizer + UBSan, and valgrind)
#   make test-unit | test-integration | bench | lint | format | install | clean
#   make faults     the fault-injection suite alone (FAULTS_LONG=1 for the long mode)
#   make soak       long fault suite, then SOAK_MINUTES (30) of load at 70 % of
#                   measured capacity; rewrites docs/reliability.md
#   make SANITIZE=address,undefined   a sanitized build in build/address-undefined
#   make fuzz       libFuzzer (clang) on the validator, the address policy and
#                   the config parser, FUZZ_SECONDS (300) each; fuzz-bins builds them

PREFIX    ?= /usr/local
DESTDIR   ?=
# Where `make install` puts things (see the install target).
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/asyncqueue
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
CC        ?= cc
CFLAGS    ?= -O2 -g
PKG_CONFIG ?= pkg-config
SANITIZE  ?=
WERROR    ?= -Werror
ARGS      ?=

comma := ,
ifeq ($(strip $(SANITIZE)),)
B := build
else
B := build/$(subst $(comma),-,$(SANITIZE))
override CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=$(SANITIZE)
endif

PKGS := libmicrohttpd libcurl sqlite3 libcjson uuid libcrypto
WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wvla \
        -Wpointer-arith -Wcast-qual -Wundef $(WERROR)
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
override CFLAGS += -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) $(PKG_CFLAGS) -MMD -MP
LDLIBS += $(PKG_LIBS) -lpthread -lm
# The daemon's allocator: mimalloc (Debian's libmimalloc), linked in so it
# serves every malloc in the process, libcurl's and SQLite's too. Threads
# here free what others allocated all day (the writer claims tasks, workers
# free them; workers build results, the writer frees them), which glibc's
# arenas pay for in locks and consolidation: 17 % of the daemon's CPU end to
# end (perf). docs/performance.md has the measurements. Sanitized builds keep
# glibc's malloc (ASan brings its own); so do the unit tests, which valgrind
# runs.
ALLOC_LIBS := $(if $(strip $(SANITIZE)),,-lmimalloc)

SRC        := $(wildcard src/*.c)
OBJ        := $(SRC:src/%.c=$(B)/obj/%.o) $(B)/obj/embedded.o
LIB_OBJ    := $(filter-out $(B)/obj/main.o,$(OBJ))
MIGRATIONS := $(sort $(wildcard migrations/*.sql))
DASHBOARD  := $(sort $(wildcard dashboard/*))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

.PHONY: all deps test-deps run test unit-bins test-unit test-integration test-asan test-valgrind \
        check-example bench lint format install uninstall clean fuzz fuzz-bins fuzz-smoke faults soak

all: $(B)/asyncqueue

$(B)/asyncqueue: $(OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(ALLOC_LIBS) $(LDLIBS)

$(B)/obj/%.o: src/%.c | $(B)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

# The files compiled into the binary: migrations and the dashboard.
EMBED = { sh tools/embed.sh embedded_migrations $(MIGRATIONS); \
	  sh tools/embed.sh embedded_dashboard $(DASHBOARD) | tail -n +3; } > $@.tmp && mv $@.tmp $@

$(B)/gen/embedded.c: tools/embed.sh $(MIGRATIONS) $(DASHBOARD) | $(B)/gen
	$(EMBED)

$(B)/obj/embedded.o: $(B)/gen/embedded.c | $(B)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/tests/test_%: tests/unit/test_%.c $(LIB_OBJ) | $(B)/tests
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS) -lcmocka

$(B)/obj $(B)/gen $(B)/tests:
	mkdir -p $@

# ---- fuzzing: libFuzzer harnesses in fuzz/, built with clang into build/fuzz ----
# The daemon's sources except main.c, with ASan and UBSan; crashes land in
# build/fuzz/artifacts, new inputs in build/fuzz/corpus (the committed seed
# corpus in fuzz/corpus is only read).

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 15
FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -Iinclude -g -O1 -Wall -Wextra $(FUZZ_SAN) $(PKG_CFLAGS) -MMD -MP
FUZZ_OBJ     := $(patsubst src/%.c,build/fuzz/obj/%.o,$(filter-out src/main.c,$(SRC))) build/fuzz/obj/embedded.o

fuzz-bins: $(FUZZ_BIN)

fuzz: fuzz-bins
	@bash tools/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-bins
	@bash tools/fuzz.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

build/fuzz/fuzz_%: fuzz/fuzz_%.c $(FUZZ_OBJ) | build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LDLIBS)

build/fuzz/obj/%.o: src/%.c | build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/obj/embedded.o: build/fuzz/gen/embedded.c | build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

build/fuzz/gen/embedded.c: tools/embed.sh $(MIGRATIONS) $(DASHBOARD) | build/fuzz/gen
	$(EMBED)

build/fuzz/obj build/fuzz/gen:
	mkdir -p $@

# ---- set-up ----

deps:
	@sh tools/deps.sh build

test-deps:
	@sh tools/deps.sh build test

run: deps
	@$(MAKE) --no-print-directory all
	@echo "make run: starting build/asyncqueue (on 127.0.0.1:8080 unless ARGS has --listen) with allow_private_targets on,"
	@echo "          so targets and webhooks on this machine can be called (Ctrl-C stops it)."
	exec ./build/asyncqueue --allow-private-targets $(ARGS)

# ---- tests ----

test: test-deps
	@bash tools/test.sh

unit-bins: $(UNIT_BIN)

test-unit: $(UNIT_BIN)
	@bash tools/test.sh unit $(B)

test-integration: $(B)/asyncqueue
	@bash tools/test.sh integration $(B)

faults: $(B)/asyncqueue
	@bash tools/test.sh faults $(B)

soak: test-deps
	@$(MAKE) --no-print-directory all
	@bash tools/soak.sh $(B)

check-example: $(B)/asyncqueue
	@$(B)/asyncqueue --print-config-example | diff -u asyncqueue.conf.example - \
	  && echo "asyncqueue.conf.example matches the config table"

bench: deps
	@$(MAKE) --no-print-directory all
	@AQ_BIN=$(B)/asyncqueue bash bench/run.sh

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr -Iinclude src
	printf '%s\n' $(SRC) | xargs -P "$$(nproc)" -n 4 sh -c 'clang-tidy --quiet "$$@" -- -std=c11 \
	  -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS)' clang-tidy

format:
	clang-format -i src/*.c include/*.h tests/unit/*.c

# install: the binary, the man page, the systemd unit (its paths rewritten
# for BINDIR and SYSCONFDIR), the docs with asyncqueue.conf.example, and, only
# where none exists yet, SYSCONFDIR/asyncqueue/asyncqueue.conf (from the
# example: every line commented, so the defaults) and asyncqueue.env (0600,
# for secrets). An existing configuration is never overwritten.
# PREFIX=/usr puts the configuration in /etc; any other prefix in PREFIX/etc.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR) \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/asyncqueue
	install -m 0755 $(B)/asyncqueue $(DESTDIR)$(BINDIR)/asyncqueue
	install -m 0644 docs/asyncqueue.1 $(DESTDIR)$(MANDIR)/man1/asyncqueue.1
	install -m 0644 asyncqueue.conf.example docs/api.md docs/openapi.yaml docs/production.md \
	  deploy/nginx.conf deploy/asyncqueue.env.example $(wildcard README.md) $(DESTDIR)$(DOCDIR)/
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/etc/asyncqueue/|$(SYSCONFDIR)/asyncqueue/|g' \
	  deploy/asyncqueue.service > $(DESTDIR)$(UNITDIR)/asyncqueue.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/asyncqueue.service.tmp
	mv $(DESTDIR)$(UNITDIR)/asyncqueue.service.tmp $(DESTDIR)$(UNITDIR)/asyncqueue.service
	@test -e $(DESTDIR)$(SYSCONFDIR)/asyncqueue/asyncqueue.conf \
	  && echo "install: keeping $(SYSCONFDIR)/asyncqueue/asyncqueue.conf" \
	  || install -m 0644 asyncqueue.conf.example $(DESTDIR)$(SYSCONFDIR)/asyncqueue/asyncqueue.conf
	@test -e $(DESTDIR)$(SYSCONFDIR)/asyncqueue/asyncqueue.env \
	  && echo "install: keeping $(SYSCONFDIR)/asyncqueue/asyncqueue.env" \
	  || install -m 0600 deploy/asyncqueue.env.example $(DESTDIR)$(SYSCONFDIR)/asyncqueue/asyncqueue.env

# uninstall leaves SYSCONFDIR/asyncqueue (the configuration and secrets) and
# the database alone.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/asyncqueue $(DESTDIR)$(MANDIR)/man1/asyncqueue.1 \
	  $(DESTDIR)$(UNITDIR)/asyncqueue.service
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(UNIT_BIN:=.d) $(FUZZ_OBJ:.o=.d) $(FUZZ_BIN:=.d)
