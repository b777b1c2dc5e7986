# understudy: one Makefile, out-of-tree build in build/ (sanitized test build in
# build/asan/). `make V=1` shows the commands.

V ?= 0
ifeq ($(V),1)
Q :=
else
Q := @
endif

ARCH := $(shell uname -m | sed 's/aarch64/arm64/')
BPF_ARCH := $(subst x86_64,x86,$(ARCH))
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

SAN ?= 0
ifeq ($(SAN),1)
B := build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B := build
SANFLAGS :=
endif
# BUILD=DIR puts objects and binaries elsewhere (parallel builds in one tree)
ifneq ($(BUILD),)
B := $(BUILD)
endif
G := build/gen
BPFOUT := build/bpf

CC := gcc
CLANG ?= clang
BPFTOOL ?= bpftool
PROTOC_C ?= protoc-c

PKGS := libzmq libprotobuf-c sqlite3 yaml-0.1 libbpf zlib libdeflate gsl json-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter \
	-D_GNU_SOURCE -DUS_VERSION='"$(VERSION)"' -Ilib -Iagent -Icoordinator -I$(G) \
	$(PKG_CFLAGS) $(SANFLAGS)
LDFLAGS := $(SANFLAGS)
LIBS := $(PKG_LIBS) -lhttp_parser -lelf -lm -lpthread
# gRPC core (API server and CLI client) only where it is used
GRPC_LIBS := $(shell pkg-config --libs grpc 2>/dev/null)

LIB_SRCS := $(wildcard lib/*.c)
AGENT_SRCS := $(wildcard agent/*.c)
COORD_SRCS := $(filter-out coordinator/cli%.c,$(wildcard coordinator/*.c))
CLI_SRCS := $(wildcard coordinator/cli*.c)
CLI_SRCS += coordinator/anomaly.c  # the offline `anomalies` verb runs the detector
CLI_SRCS += coordinator/report_html.c  # `compare --html`
LOADGEN_SRCS := tools/loadgen/loadgen.c
HTTPLOAD_SRCS := $(wildcard tools/httpload/*.c)
BENCH_AGENT_SRCS := $(wildcard tools/bench_agent/*.c)
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BPFOUT)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(G)/%.skel.h,$(BPF_SRCS))
PROTOS := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(G)/%.pb-c.c,$(PROTOS))
PROTO_H := $(patsubst proto/%.proto,$(G)/%.pb-c.h,$(PROTOS))

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
LIB_OBJS := $(call obj,$(LIB_SRCS)) $(patsubst $(G)/%.c,$(B)/obj/gen/%.o,$(PROTO_C))
AGENT_LIB_OBJS := $(call obj,$(filter-out agent/main.c,$(AGENT_SRCS)))
COORD_LIB_OBJS := $(call obj,$(filter-out coordinator/main.c,$(COORD_SRCS)))

BINS := $(B)/bin/understudy-agent $(B)/bin/understudy-coordinator $(B)/bin/understudy \
	$(B)/bin/us-loadgen $(B)/bin/us-httpload $(B)/bin/understudy-keygen

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))
KTEST_SRCS := $(wildcard tests/kernel/ktest_*.c)
KTEST_BINS := $(patsubst tests/kernel/%.c,$(B)/tests/%,$(KTEST_SRCS))
E2E_HELPER_SRCS := $(wildcard tests/e2e/*.c)
E2E_HELPER_BINS := $(patsubst tests/e2e/%.c,$(B)/tests/%,$(E2E_HELPER_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))

.PHONY: all deps build test test-build fuzz fuzz-build bench bench-ingest bench-query bench-agent bench-mirror bench-compare demo vmlinux clean
.DEFAULT_GOAL := all

all: deps
	$(Q)$(MAKE) --no-print-directory build

deps:
	$(Q)tools/install-deps

build: $(BINS) $(B)/man/understudy.1

# the man page is the CLI's --help texts, regenerated with the binary
$(B)/man/understudy.1: $(B)/bin/understudy tools/gen-man
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  MAN     $@")
	$(Q)tools/gen-man $(B)/bin/understudy $@ $(VERSION)

# ---- generated code -------------------------------------------------------
$(G)/%.pb-c.c $(G)/%.pb-c.h: proto/%.proto
	@mkdir -p $(G)
	$(if $(filter 0,$(V)),@echo "  PROTOC  $<")
	$(Q)$(PROTOC_C) --proto_path=proto --c_out=$(G) $<

$(BPFOUT)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) lib/hist_scheme.h vmlinux/$(ARCH)/vmlinux.h
	@mkdir -p $(BPFOUT)
	$(if $(filter 0,$(V)),@echo "  BPF     $<")
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -Wall -Werror \
		-Ivmlinux/$(ARCH) -Ibpf -Ilib -c $< -o $@
	$(Q)llvm-strip -g $@

$(G)/%.skel.h: $(BPFOUT)/%.bpf.o
	@mkdir -p $(G)
	$(if $(filter 0,$(V)),@echo "  SKEL    $@")
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# ---- C objects ------------------------------------------------------------
$(B)/obj/gen/%.o: $(G)/%.c
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  CC      $<")
	$(Q)$(CC) $(filter-out -Wextra,$(CFLAGS)) -c $< -o $@

$(B)/obj/%.o: %.c $(PROTO_H) $(SKELS)
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

$(B)/libus.a: $(LIB_OBJS)
	$(Q)ar rcs $@ $^

$(B)/bin/understudy-agent: $(call obj,agent/main.c) $(AGENT_LIB_OBJS) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

$(B)/bin/understudy-coordinator: $(call obj,coordinator/main.c) $(COORD_LIB_OBJS) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) $(GRPC_LIBS) -o $@

$(B)/bin/understudy: $(call obj,$(CLI_SRCS)) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) $(GRPC_LIBS) -o $@

$(B)/bin/us-loadgen: $(call obj,$(LOADGEN_SRCS)) $(AGENT_LIB_OBJS) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

$(B)/bin/us-httpload: $(call obj,$(HTTPLOAD_SRCS)) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

# the agent package's keygen (it ships no CLI): tools/packaging/keygen.c
$(B)/bin/understudy-keygen: $(call obj,tools/packaging/keygen.c) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

# ---- tests ----------------------------------------------------------------
$(B)/tests/test_%: $(call obj,tests/unit/test_%.c) $(AGENT_LIB_OBJS) $(COORD_LIB_OBJS) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) $(GRPC_LIBS) -lcmocka -o $@

KTEST_LIB_OBJS := $(call obj,$(wildcard tests/kernel/lib/*.c))
$(B)/tests/ktest_%: $(call obj,tests/kernel/ktest_%.c) $(KTEST_LIB_OBJS) $(AGENT_LIB_OBJS) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -lcmocka -o $@

$(B)/tests/%: $(call obj,tests/e2e/%.c) $(COORD_LIB_OBJS) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) $(GRPC_LIBS) -o $@

test-build: $(BINS) $(B)/man/understudy.1 $(UNIT_BINS) $(KTEST_BINS) $(E2E_HELPER_BINS)

test: deps
	$(Q)$(MAKE) --no-print-directory SAN=1 test-build
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)tests/run build/asan

# ---- fuzzing (clang libFuzzer + ASan/UBSan) -------------------------------
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Ilib -I$(G) $(PKG_CFLAGS) \
	-fsanitize=fuzzer,address,undefined -DUS_VERSION='"$(VERSION)"'
FUZZ_LIB_SRCS := $(LIB_SRCS) $(PROTO_C)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_SRCS) $(PROTO_H)
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  FUZZ    $@")
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $< $(FUZZ_LIB_SRCS) $(PKG_LIBS) -lhttp_parser -lelf -lm -lpthread -o $@

fuzz-build: $(FUZZ_BINS)

FUZZ_SECONDS ?= 300
fuzz: deps fuzz-build
	$(Q)for f in $(FUZZ_BINS); do n=$$(basename $$f); \
		mkdir -p build/fuzz/corpus-$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build/fuzz/$$n- build/fuzz/corpus-$$n tests/fuzz/corpus/$${n#fuzz_} || exit 1; \
	done

# ---- benchmarks, demo, maintenance ----------------------------------------
bench: bench-ingest bench-query bench-agent bench-mirror

bench-ingest: all
	$(Q)tools/bench-ingest

$(B)/bin/us-bench-query: $(call obj,tools/bench_query/bench_query.c) $(COORD_LIB_OBJS) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) $(GRPC_LIBS) -o $@

bench-query: all $(B)/bin/us-bench-query
	$(Q)tools/bench-query

$(B)/bin/us-bench-agent: $(call obj,$(BENCH_AGENT_SRCS)) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

bench-agent: all $(B)/bin/us-bench-agent
	$(Q)tools/bench-agent

bench-mirror: all
	$(Q)tools/bench-mirror

bench-compare: all
	$(Q)tools/bench-compare

# NAB scoring of the anomaly detector (tools/nab, docs/anomalies.md)
NAB_OBJS := $(call obj,tools/nab/nab.c)
$(B)/tests/test_anomaly: $(NAB_OBJS)
$(B)/tests/ktest_steer: $(call obj,coordinator/steer.c coordinator/bpf_pin.c)
$(B)/tests/ktest_egress: $(call obj,coordinator/egress.c coordinator/bpf_pin.c)
$(B)/bin/us-nab-score: $(call obj,tools/nab/nab_score.c coordinator/anomaly.c) $(NAB_OBJS) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ -lm -o $@

# migration controller and local provider (tools/bench-migrate, docs/migrate.md)
.PHONY: bench-migrate
bench-migrate: all
	$(Q)tools/bench-migrate

.PHONY: bench-anomaly
bench-anomaly: all $(B)/bin/us-nab-score
	$(Q)tools/bench-anomaly

demo: all
	$(Q)BIN=$(B)/bin tools/demo

vmlinux:
	$(Q)tools/gen-vmlinux vmlinux/$(ARCH)/vmlinux.h

clean:
	$(Q)rm -rf build

# forecasting accuracy and speed (tools/bench-forecast, docs/forecast.md)
$(B)/bin/us-bench-forecast: $(call obj,$(wildcard tools/bench_forecast/*.c)) $(B)/libus.a
	@mkdir -p $(dir $@)
	$(if $(filter 0,$(V)),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

.PHONY: bench-forecast
bench-forecast: all $(B)/bin/us-bench-forecast
	$(Q)tools/bench-forecast

# .deb and .rpm packages from the normal build (tools/packaging/README.md)
.PHONY: deb rpm
deb: all
	$(Q)tools/packaging/build-deb

rpm: all
	$(Q)tools/packaging/build-rpm
