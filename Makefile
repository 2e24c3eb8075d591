# SPDX-License-Identifier: MIT
# tunshim: `make` builds build/libtunshim.so and build/tunshim; `make test` runs all CI runs.
CC ?= cc
BUILD ?= build
SANITIZE ?=
V ?= 0
ifeq ($(V),1)
  Q :=
  say = @true
else
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2)
endif

LWIP_VERSION := 2.1.3
LWIP_SRC ?= $(BUILD)/lwip-$(LWIP_VERSION)

CFLAGS ?= -O2 -g
WARN := -Wall -Wextra
BASE_CFLAGS := $(CFLAGS) $(WARN) -std=gnu11 -fPIC -fvisibility=hidden -pthread -D_GNU_SOURCE
LDLIBS_CRYPTO := -lsodium -lb2
comma := ,
# A sanitized build lives beside the plain one, never over it: its objects, its library
# and wrapper (OUT: `make SANITIZE=thread build/san-thread/libtunshim.so`) and its tests.
ifneq ($(SANITIZE),)
  SAN := $(subst $(comma),-,$(SANITIZE))
  OBJ := $(BUILD)/san-obj-$(SAN)
  OUT := $(BUILD)/san-$(SAN)
  BASE_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
  SAN_LDFLAGS := -fsanitize=$(SANITIZE)
  TESTBIN := $(BUILD)/san-tests-$(SAN)
else
  OBJ := $(BUILD)/obj
  OUT := $(BUILD)
  TESTBIN := $(BUILD)/tests
endif

# ---- layers: each directory compiles with only the include paths it may use ----
#   stack/include  the stack's public headers: all that shim/ and the tools may see
#   stack/base     logging, socket addresses, the runtime directory, the OS boundary
#   stack/wg       the WireGuard core (config, noise, cookie, replay, peers, timers):
#                  byte arrays in and out, no lwIP, no sockets
#   stack/net      the lwIP glue: netif, the stack thread, bridges, inbound, relay,
#                  and the session other processes attach to (session_*.c)
#   shim, shim/dns the LD_PRELOAD layer and its DNS layer
#   shim/cli       the tunshim command (nothing of ours but libsodium)
# One direction only: shim -> stack/include -> (stack/net -> stack/wg -> stack/base).
LWIP_INC := -Istack/lwip -I$(LWIP_SRC)/src/include
PUB_INC := -Istack/include
BASE_CF := $(BASE_CFLAGS) $(PUB_INC)
WG_CF := $(BASE_CFLAGS) $(PUB_INC)
NET_CF := $(BASE_CFLAGS) $(PUB_INC) -Istack/wg $(LWIP_INC)
SHIM_CF := $(BASE_CFLAGS) $(PUB_INC) -Ishim
# lwIP's own code trips warnings we do not own; keep them out of our -Wall -Wextra view.
LWIP_CF := $(BASE_CFLAGS) -w $(LWIP_INC)
# lwIP 2.1.3 reads the TCP timestamp option by shifting a byte, promoted to int, left
# by 24 (tcp_parseopt): undefined in C for bytes >= 128, and a UBSan report on a live
# connection's first segments. It is lwIP's code, not ours to patch; gcc does the
# obvious there.
ifneq ($(findstring undefined,$(SANITIZE)),)
  LWIP_CF += -fno-sanitize=shift-base
endif

BASE_SRCS := $(filter-out stack/base/sys_libc.c,$(wildcard stack/base/*.c))
WG_SRCS := $(wildcard stack/wg/*.c)
NET_SRCS := $(wildcard stack/net/*.c) stack/lwip/sys_arch.c stack/lwip/chksum.c
SHIM_SRCS := $(wildcard shim/*.c shim/dns/*.c)
# The DNS layer that knows nothing of the preload layer (test_dns links it alone).
DNS_SRCS := shim/dns/dns.c shim/dns/dns_send.c shim/dns/hosts.c
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
TOOL_SRCS := $(wildcard tests/tools/*.c)
# lwIP 2.1.3's core, IPv4 and IPv6 (named, so the list is known before the fetch).
LWIP_FILES := altcp altcp_alloc altcp_tcp def dns inet_chksum init ip mem memp netif pbuf \
  raw stats sys tcp tcp_in tcp_out timeouts udp \
  ipv4/autoip ipv4/dhcp ipv4/etharp ipv4/icmp ipv4/igmp ipv4/ip4 ipv4/ip4_addr ipv4/ip4_frag \
  ipv6/dhcp6 ipv6/ethip6 ipv6/icmp6 ipv6/inet6 ipv6/ip6 ipv6/ip6_addr ipv6/ip6_frag ipv6/mld6 ipv6/nd6
LWIP_REL := $(LWIP_FILES:%=$(LWIP_SRC)/src/core/%.c)

STACK_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(BASE_SRCS) $(WG_SRCS) $(NET_SRCS))
SHIM_OBJS := $(SHIM_SRCS:%.c=$(OBJ)/%.o)
LWIP_OBJS := $(patsubst $(LWIP_SRC)/%.c,$(OBJ)/lwip/%.o,$(LWIP_REL))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(TESTBIN)/%)
# Micro-benchmarks beside the unit tests: make test builds them, never runs them.
BENCH_BINS := $(TESTBIN)/bench_transport
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(TESTBIN)/tools/%)
STACK_LIB := $(OBJ)/libtsstack.a
# The stack's default OS boundary (sys.h) is libc itself: an object of its own on the
# unit tests' and tools' link lines, never in libtunshim.so, where libc's names are
# the shim's interposers (the shim sets its own table). An object, not an archive
# member, because sys.c only refers to it weakly, and a weak reference does not pull
# a member out of an archive.
SYS_LIBC_OBJ := $(OBJ)/stack/base/sys_libc.o
.SECONDARY: $(SYS_LIBC_OBJ)
# What libtunshim.so may export: the libc names the shim interposes, and nothing else
# (a version script made from the list enforces it; tests/check-exports.sh confirms).
EXPORTS_LIST := shim/exports.list
EXPORTS_MAP := $(OBJ)/exports.map

# Everything in libtunshim.so is static and hidden; only interposed libc names are exported.
SO_LDFLAGS := -shared -Wl,--exclude-libs,ALL -Wl,-z,defs -Wl,-z,now
SO_LIBS := -Wl,-Bstatic $(LDLIBS_CRYPTO) -Wl,-Bdynamic -ldl -lpthread -lresolv

# ---- the packages each goal needs (tests/deps.sh), checked before anything compiles ----
# `make test`, `make bench`, `make demo` and `make fuzz` install what is missing when run
# as root (saying so); a plain `make` never installs anything: it checks, and prints the
# apt-get line that would.
ifneq ($(filter bench,$(MAKECMDGOALS)),)
  DEPS_SET := bench
else ifneq ($(filter test interop,$(MAKECMDGOALS)),)
  DEPS_SET := test
else ifneq ($(filter demo,$(MAKECMDGOALS)),)
  DEPS_SET := demo
else ifneq ($(filter fuzz fuzz-long fuzz-build,$(MAKECMDGOALS)),)
  DEPS_SET := fuzz
else
  DEPS_SET := --check build
endif
# Scripts run from other directories: they get the build directory as an absolute path.
export TUNSHIM_BUILD := $(abspath $(BUILD))

.PHONY: all deps test unit interop bench demo clean check-layers
all: $(OUT)/libtunshim.so $(OUT)/tunshim $(STACK_LIB).objs

deps:
	@tests/deps.sh $(DEPS_SET)

$(LWIP_SRC)/.fetched: | deps
	@mkdir -p $(BUILD)
	@if [ "$(LWIP_SRC)" = "$(BUILD)/lwip-$(LWIP_VERSION)" ]; then stack/lwip/fetch.sh $(LWIP_SRC); fi
	@test -f $(LWIP_SRC)/src/core/tcp.c || { echo "no lwIP source in $(LWIP_SRC)" >&2; exit 1; }
	@touch $@

# The sources appear with the fetch; make must not treat them as intermediates.
.SECONDARY: $(LWIP_REL)
$(LWIP_SRC)/%.c: $(LWIP_SRC)/.fetched
	@true

$(OBJ)/lwip/%.o: $(LWIP_SRC)/%.c stack/lwip/lwipopts.h stack/lwip/arch/cc.h
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(LWIP_CF) -c $< -o $@

define compile
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(1) -MMD -MP -c $< -o $@
endef

$(OBJ)/stack/base/%.o: stack/base/%.c | deps
	$(call compile,$(BASE_CF))
$(OBJ)/stack/wg/%.o: stack/wg/%.c | deps
	$(call compile,$(WG_CF))
$(OBJ)/stack/net/%.o: stack/net/%.c $(LWIP_SRC)/.fetched
	$(call compile,$(NET_CF))
$(OBJ)/stack/lwip/%.o: stack/lwip/%.c $(LWIP_SRC)/.fetched
	$(call compile,$(NET_CF))
$(OBJ)/shim/%.o: shim/%.c | deps
	$(call compile,$(SHIM_CF))

$(STACK_LIB): $(STACK_OBJS) $(LWIP_OBJS)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# The archive's members by path, for tests/check-layers.sh (member names alone are
# ambiguous: two netif.o).
$(STACK_LIB).objs: $(STACK_OBJS) $(LWIP_OBJS)
	$(Q)printf '%s\n' $^ > $@

$(EXPORTS_MAP): $(EXPORTS_LIST)
	@mkdir -p $(dir $@)
	$(Q){ echo '{ global:'; sed -e 's/#.*//' -e '/^[[:space:]]*$$/d' -e 's/.*/  &;/' $<; \
	      echo 'local: *; };'; } > $@

$(OUT)/libtunshim.so: $(SHIM_OBJS) $(STACK_LIB) $(EXPORTS_MAP)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(BASE_CFLAGS) $(SO_LDFLAGS) -Wl,--version-script=$(EXPORTS_MAP) -o $@ \
		$(SHIM_OBJS) -Wl,--whole-archive $(STACK_LIB) -Wl,--no-whole-archive $(SO_LIBS) \
		$(SAN_LDFLAGS)

$(OUT)/tunshim: shim/cli/wrapper.c shim/cli/ping.c shim/cli/ping.h | deps
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(BASE_CFLAGS) -fPIE -o $@ $(filter %.c,$^) -Wl,-Bstatic -lsodium \
		-Wl,-Bdynamic $(SAN_LDFLAGS)

# Unit tests see the stack's internals; test_dns links the DNS layer alone (and libresolv).
UNIT_CF := $(BASE_CFLAGS) $(PUB_INC) -Istack/wg -Itests/unit
$(TESTBIN)/test_dns: $(DNS_SRCS) shim/dns/dns.h
$(TESTBIN)/test_dns: UNIT_CF += -Ishim/dns
$(TESTBIN)/test_ackhold: UNIT_CF += -Istack/net
$(TESTBIN)/test_dns: UNIT_LIBS := -lresolv

$(TESTBIN)/%: tests/unit/%.c tests/unit/check.h $(STACK_LIB) $(SYS_LIBC_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(UNIT_CF) -o $@ $< $(filter shim/%.c,$^) $(SYS_LIBC_OBJ) $(STACK_LIB) \
		$(LDLIBS_CRYPTO) $(UNIT_LIBS) -lpthread $(SAN_LDFLAGS)

$(TESTBIN)/tools/%: tests/tools/%.c $(STACK_LIB) $(SYS_LIBC_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(BASE_CFLAGS) $(PUB_INC) -Istack/wg -Itests/tools -o $@ $< $(SYS_LIBC_OBJ) \
		$(STACK_LIB) $(LDLIBS_CRYPTO) -lpthread $(SAN_LDFLAGS)

# ---- fuzzing (tests/fuzz/README.md): libFuzzer targets built by clang with ASan and
# UBSan, from objects of their own under $(BUILD)/fuzz (the gcc build is not touched) ----
FUZZ_CC ?= clang
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SECONDS ?= 600
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CF := -O1 -g $(WARN) -std=gnu11 -pthread -D_GNU_SOURCE $(FUZZ_SAN) $(PUB_INC)
FUZZ_TARGETS := receive config dns
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
# What each target links: the WireGuard core and the bits of base it uses (its OS
# boundary is libc itself, as for the unit tests), or the DNS layer alone.
FUZZ_WG_OBJS := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(WG_SRCS) stack/base/log.c \
	stack/base/sys.c stack/base/sys_libc.c)
FUZZ_DNS_OBJS := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(DNS_SRCS) stack/base/sockaddr.c)

$(FUZZ_DIR)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(call say,FUZZCC,$<)
	$(Q)$(FUZZ_CC) $(FUZZ_CF) -fsanitize=fuzzer-no-link -Istack/wg -Ishim/dns -MMD -MP \
		-c $< -o $@

$(FUZZ_DIR)/fuzz_receive $(FUZZ_DIR)/fuzz_config: $(FUZZ_WG_OBJS)
$(FUZZ_DIR)/fuzz_dns: $(FUZZ_DNS_OBJS)
$(FUZZ_DIR)/fuzz_dns: FUZZ_LIBS := -lresolv
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c | deps
	@mkdir -p $(dir $@)
	$(call say,FUZZLD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CF) -fsanitize=fuzzer -Istack/wg -Ishim/dns -MMD -MP -MF $@.d \
		-o $@ $< $(filter %.o,$^) $(LDLIBS_CRYPTO) $(FUZZ_LIBS)

.PHONY: fuzz-build fuzz fuzz-long
fuzz-build: $(FUZZ_BINS)

# Replays every corpus and regression input, then fuzzes each target for a bounded
# time (what make test runs); fuzz-long gives each target FUZZ_SECONDS.
fuzz: fuzz-build
	@tests/fuzz/run.sh $(TUNSHIM_BUILD)

fuzz-long: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(TUNSHIM_BUILD) $(FUZZ_TARGETS)

unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

# The layering and export checks alone (make test runs them first).
check-layers: all
	@tests/check-layers.sh $(TUNSHIM_BUILD)
	@tests/check-exports.sh $(TUNSHIM_BUILD)/libtunshim.so

interop: all $(TOOL_BINS)
	@tests/run-interop.sh

# Everything CI runs: the layer and export checks, unit tests (also under ASan/UBSan),
# then the namespace suites (some also under a ThreadSanitizer build of the library,
# preloaded after libtsan).
test: all $(UNIT_BINS) $(TOOL_BINS) $(BENCH_BINS)
	@$(MAKE) --no-print-directory SANITIZE=address,undefined $(BUILD)/san-tests-address-undefined/.built \
		$(BUILD)/san-address-undefined/libtunshim.so
	@$(MAKE) --no-print-directory SANITIZE=thread $(BUILD)/san-thread/libtunshim.so
	@$(MAKE) --no-print-directory fuzz-build
	@tests/run-all.sh $(TUNSHIM_BUILD)

# The README's first command: two wrapped programs talk over WireGuard, no root needed.
demo: all
	@TUNSHIM=$(TUNSHIM_BUILD)/tunshim examples/demo.sh

# Benchmarks: ours against the kernel path through wireguard-go, in one run (ratios).
bench: all $(TOOL_BINS)
	@bench/run.sh

$(BUILD)/san-tests-address-undefined/.built: $(UNIT_BINS)
	@touch $@

clean:
	rm -rf $(BUILD)/obj $(BUILD)/san-* $(BUILD)/fuzz $(BUILD)/tests $(BUILD)/libtunshim.so \
		$(BUILD)/tunshim

-include $(shell find $(OBJ) $(FUZZ_DIR) -name '*.d' 2>/dev/null)
