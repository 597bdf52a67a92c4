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

PREFIX    ?= /usr/local
DESTDIR   ?=
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

SRC        := $(wildcard src/*.c)
OBJ        := $(SRC:src/%.c=$(B)/obj/%.o) $(B)/obj/embedded.o
LIB_OBJ    := $(filter-out $(B)/obj/main.o,$(OBJ))
MIGRATIONS := $(sort $(wildcard migrations/*.sql))
DASHBOARD  := $(sort $(wildcard dashboard/*))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

.PHONY: all deps test-deps run test unit-bins test-unit test-integration test-asan test-valgrind \
        check-example bench lint format install uninstall clean faults soak

all: $(B)/asyncqueue

$(B)/asyncqueue: $(OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/obj/%.o: src/%.c | $(B)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/gen/embedded.c: tools/embed.sh $(MIGRATIONS) $(DASHBOARD) | $(B)/gen
	{ sh tools/embed.sh embedded_migrations $(MIGRATIONS); \
	  sh tools/embed.sh embedded_dashboard $(DASHBOARD) | tail -n +3; } > $@.tmp && mv $@.tmp $@

$(B)/obj/embedded.o: $(B)/gen/embedded.c | $(B)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/tests/test_%: tests/unit/test_%.c $(LIB_OBJ) | $(B)/tests
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS) -lcmocka

$(B)/obj $(B)/gen $(B)/tests:
	mkdir -p $@

# ---- set-up ----

deps:
	@sh tools/deps.sh build

test-deps:
	@sh tools/deps.sh build test

run: deps
	@$(MAKE) --no-print-directory all
	@echo "make run: starting build/asyncqueue on 127.0.0.1:8080 with allow_private_targets on,"
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
	@sh bench/run.sh

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr -Iinclude src
	clang-tidy --quiet $(SRC) -- -std=c11 -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS)

format:
	clang-format -i src/*.c include/*.h tests/unit/*.c

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/asyncqueue
	install -m 0755 $(B)/asyncqueue $(DESTDIR)$(PREFIX)/bin/asyncqueue
	install -m 0644 asyncqueue.conf.example README.md $(DESTDIR)$(PREFIX)/share/doc/asyncqueue/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/asyncqueue
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/asyncqueue

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(UNIT_BIN:=.d)
