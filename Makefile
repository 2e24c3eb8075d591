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
ifneq ($(SANITIZE),)
  OBJ := $(BUILD)/san-obj
  BASE_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
  SAN_LDFLAGS := -fsanitize=$(SANITIZE)
  TESTBIN := $(BUILD)/san-tests
else
  OBJ := $(BUILD)/obj
  TESTBIN := $(BUILD)/tests
endif

LWIP_INC := -Istack/lwip -I$(LWIP_SRC)/src/include
STACK_CFLAGS := $(BASE_CFLAGS) -Istack $(LWIP_INC)
# lwIP's own code trips warnings we do not own; keep them out of our -Wall -Wextra view.
LWIP_CFLAGS := $(BASE_CFLAGS) -w $(LWIP_INC)

STACK_SRCS := $(wildcard stack/*.c) stack/lwip/sys_arch.c
SHIM_SRCS := $(filter-out shim/wrapper.c,$(wildcard shim/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
TOOL_SRCS := $(wildcard tests/tools/*.c)
# lwIP 2.1.3's core, IPv4 and IPv6 (named, so the list is known before the fetch).
LWIP_FILES := altcp altcp_alloc altcp_tcp def dns inet_chksum init ip mem memp netif pbuf \
  raw stats sys tcp tcp_in tcp_out timeouts udp \
  ipv4/autoip ipv4/dhcp ipv4/etharp ipv4/icmp ipv4/igmp ipv4/ip4 ipv4/ip4_addr ipv4/ip4_frag \
  ipv6/dhcp6 ipv6/ethip6 ipv6/icmp6 ipv6/inet6 ipv6/ip6 ipv6/ip6_addr ipv6/ip6_frag ipv6/mld6 ipv6/nd6
LWIP_REL := $(LWIP_FILES:%=$(LWIP_SRC)/src/core/%.c)

STACK_OBJS := $(STACK_SRCS:%.c=$(OBJ)/%.o)
SHIM_OBJS := $(SHIM_SRCS:%.c=$(OBJ)/%.o)
LWIP_OBJS := $(patsubst $(LWIP_SRC)/%.c,$(OBJ)/lwip/%.o,$(LWIP_REL))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(TESTBIN)/%)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(TESTBIN)/tools/%)
STACK_LIB := $(OBJ)/libtsstack.a

# Everything in libtunshim.so is static and hidden; only interposed libc names are exported.
SO_LDFLAGS := -shared -Wl,--exclude-libs,ALL -Wl,-z,defs -Wl,-z,now
SO_LIBS := -Wl,-Bstatic $(LDLIBS_CRYPTO) -Wl,-Bdynamic -ldl -lpthread -lresolv

.PHONY: all deps test unit interop bench demo clean
all: $(BUILD)/libtunshim.so $(BUILD)/tunshim

deps:
	@tests/deps.sh build

$(LWIP_SRC)/.fetched:
	@mkdir -p $(BUILD)
	@tests/deps.sh build
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
	$(Q)$(CC) $(LWIP_CFLAGS) -c $< -o $@

$(OBJ)/stack/%.o: stack/%.c $(wildcard stack/*.h) $(LWIP_SRC)/.fetched
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(STACK_CFLAGS) -MMD -c $< -o $@

$(OBJ)/shim/%.o: shim/%.c $(wildcard shim/*.h stack/*.h)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(STACK_CFLAGS) -Ishim -MMD -c $< -o $@

$(STACK_LIB): $(LWIP_SRC)/.fetched $(STACK_OBJS) $(LWIP_OBJS)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $(STACK_OBJS) $(LWIP_OBJS)

$(BUILD)/libtunshim.so: $(SHIM_OBJS) $(STACK_LIB)
	$(call say,LD,$@)
	$(Q)$(CC) $(BASE_CFLAGS) $(SO_LDFLAGS) -o $@ $(SHIM_OBJS) \
		-Wl,--whole-archive $(STACK_LIB) -Wl,--no-whole-archive $(SO_LIBS) $(SAN_LDFLAGS)

$(BUILD)/tunshim: shim/wrapper.c $(wildcard shim/*.h)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(BASE_CFLAGS) -fPIE -o $@ $< -Wl,-Bstatic -lsodium -Wl,-Bdynamic $(SAN_LDFLAGS)

# Unit tests of shim pieces that stand alone: the sources they link, and libresolv.
$(TESTBIN)/test_dns: shim/dns.c shim/dns_send.c shim/hosts.c shim/dns.h
$(TESTBIN)/test_dns: UNIT_LIBS := -lresolv

$(TESTBIN)/%: tests/unit/%.c tests/unit/check.h $(STACK_LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(STACK_CFLAGS) -Itests/unit -Ishim -o $@ $< $(filter shim/%.c,$^) $(STACK_LIB) \
		$(LDLIBS_CRYPTO) $(UNIT_LIBS) -lpthread $(SAN_LDFLAGS)

$(TESTBIN)/tools/%: tests/tools/%.c $(STACK_LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(STACK_CFLAGS) -Itests/tools -o $@ $< $(STACK_LIB) $(LDLIBS_CRYPTO) -lpthread $(SAN_LDFLAGS)

unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

interop: all $(TOOL_BINS)
	@tests/deps.sh test
	@tests/run-interop.sh

# Everything CI runs: unit tests (also under ASan/UBSan), then the namespace suites.
test: all $(UNIT_BINS) $(TOOL_BINS)
	@tests/deps.sh test
	@$(MAKE) --no-print-directory SANITIZE=address,undefined $(BUILD)/san-tests/.built
	@tests/run-all.sh $(BUILD)

# The README's first command: two wrapped programs talk over WireGuard, no root needed.
demo: all
	@tests/deps.sh demo
	@TUNSHIM=$(BUILD)/tunshim examples/demo.sh

# Benchmarks: ours against the kernel path through wireguard-go, in one run (ratios).
bench: all $(TOOL_BINS)
	@tests/deps.sh test
	@bench/run.sh

$(BUILD)/san-tests/.built: $(UNIT_BINS)
	@touch $@

clean:
	rm -rf $(BUILD)/obj $(BUILD)/san-obj $(BUILD)/tests $(BUILD)/san-tests $(BUILD)/libtunshim.so $(BUILD)/tunshim

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
