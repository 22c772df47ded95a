# salespipeline: C operator + C data-plane workers.
#
#   make            build every binary into build/bin/
#   make test       install what is missing, build normal + ASan/UBSan, run unit and integration tests
#   make run        the whole pipeline locally under a Locust scenario, then the dashboard
#   make bench      throughput/latency/RSS measurements into build/bench/ (not part of `make test`);
#                   make bench-compare (or BASELINE=<rev> make bench): the same, A/B against 25d93d3
#   make report     the technical report's measurements: CSV, tables and plots into docs/report/,
#                   spliced into docs/informe.md (not part of `make test`)
#   make valkey-disk     the Valkey VMs' disk (qcow2 + KubeVirt containerDisk) into build/vm/
#   make valkey-vm-test  boot that disk here (QEMU) as primary and replica (`make test` runs it too)
#   make fuzz       every libFuzzer harness (tests/fuzz/) for FUZZ_SECONDS each
#   make format     lays the C files out as .clang-format says (make test checks it: format-check)
#   make images     the container images (buildah, no daemon, nothing pulled); make push sends
#                   them and the catalog artifact to $REGISTRY (make registry-up: a local one)
#   make e2e-k8s    the pipeline for real on a local node under the in-cluster operator, with
#                   faults (part of `make test` too); make hpa-demo: the api's HPA under Locust
#
# Binaries: one folder each under workers/ (plus operator/); every .c there except *_test.c is
# linked with libcommon.a (common/ and the generated protobuf code, as an archive: a program
# carries only the modules it calls) and the folder's *.lua files, embedded as C strings. A file
# `foo_test.c` beside the code is a cmocka unit test linked with that folder's objects (main.c
# excepted).

O        ?= build
SANITIZE ?=
CC       ?= cc
PKGS     := libcurl libcjson libmicrohttpd grpc rdkafka hiredis libprotobuf-c yaml-0.1 openssl

# `make V=1` prints whole command lines; by default one short line per file.
Q        := $(if $(V),,@)
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c17 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -MMD -MP \
            -Icommon -Ibuild/gen $(shell pkg-config --cflags $(PKGS))
LDLIBS   += -Wl,--as-needed $(shell pkg-config --libs $(PKGS)) -lm
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif
# SANITIZE=fuzz (with CC=clang): also libFuzzer's coverage instrumentation.
ifeq ($(SANITIZE),fuzz)
CFLAGS   += -fsanitize=fuzzer-no-link
endif

PROGRAMS := api bridge writer consumer salesctl
PROTOS   := blackfriday health intake
GEN_SRC  := $(PROTOS:%=build/gen/%.pb-c.c)
GEN_HDR  := $(PROTOS:%=build/gen/%.pb-c.h)
LUA_GEN  := $(patsubst %.lua,build/gen/lua/%.c,$(wildcard workers/*/*.lua))
.SECONDARY: $(GEN_SRC) $(GEN_HDR) $(LUA_GEN)

lib_src   = $(filter-out %_test.c %/main.c,$(wildcard $(1)/*.c))
obj_of    = $(patsubst %.c,$(O)/obj/%.o,$(1))
# A folder's Lua scripts, each compiled from build/gen/lua/<folder>/<name>.c.
lua_obj   = $(patsubst %.lua,$(O)/obj/gen/lua/%.o,$(wildcard $(1)/*.lua))
COMMON_OBJ := $(call obj_of,$(call lib_src,common)) $(patsubst build/gen/%.c,$(O)/obj/gen/%.o,$(GEN_SRC))
LIBCOMMON  := $(O)/lib/libcommon.a

BINS       := $(PROGRAMS:%=$(O)/bin/%) $(O)/bin/operator

# libFuzzer harnesses: tests/fuzz/<name>_fuzz.c, linked with libcommon.a and the operator's and
# the consumer's objects (mains excepted), built by clang into build/fuzz/bin/ (see tests/fuzz/README.md).
FUZZ_SRC     := $(wildcard tests/fuzz/*_fuzz.c)
FUZZ_BINS    := $(patsubst tests/fuzz/%.c,build/fuzz/bin/%,$(FUZZ_SRC))
FUZZ_LIB_OBJ := $(call obj_of,$(call lib_src,operator) $(call lib_src,workers/consumer))
FUZZ_LUA_OBJ := $(call lua_obj,operator) $(call lua_obj,workers/consumer)
FUZZ_SECONDS ?= 300
.SECONDARY: $(patsubst tests/fuzz/%.c,build/fuzz/obj/tests/fuzz/%.o,$(FUZZ_SRC))
UNIT_SRC   := $(wildcard common/*_test.c workers/*/*_test.c operator/*_test.c)
UNIT_BINS  := $(patsubst %.c,$(O)/test/%,$(notdir $(UNIT_SRC)))

.PHONY: all bins unit-bins asan fuzz-bins fuzz deps deps-base deps-images test unit-test run up \
        down bench bench-compare report clean cluster-up cluster-down operator-run valkey-disk valkey-vm-test images \
        push registry-up registry-down format format-check e2e-k8s hpa-demo
all: bins
bins: $(BINS)
unit-bins: $(UNIT_BINS)

# --- generated protobuf code (never committed) ---
build/gen/%.pb-c.c build/gen/%.pb-c.h: proto/%.proto
	@mkdir -p build/gen
	@echo "  PROTOC  $<"
	$(Q)protoc-c --proto_path=proto --c_out=build/gen $<

$(O)/obj/gen/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -Wno-unused-parameter -c -o $@ $<

# --- Lua scripts as C strings: const char <folder>_<name>_lua[] (never committed) ---
build/gen/lua/%.c: %.lua
	@mkdir -p $(dir $@)
	@echo "  EMBED   $<"
	$(Q)awk -v sym="$(subst /,_,$(notdir $(patsubst %/,%,$(dir $*))))_$(notdir $*)_lua" \
	  'BEGIN { print "/* Generated from $< by the Makefile. */"; print "const char " sym "[] =" } \
	   { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); print "    \"" $$0 "\\n\"" } \
	   END { print "    ;" }' $< > $@.tmp && mv $@.tmp $@

$(O)/obj/gen/lua/%.o: build/gen/lua/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	@echo "  AR      $@"
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(O)/obj/%.o: %.c | $(GEN_HDR)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# --- programs ---
define program_rule
$(O)/bin/$(1): $(call obj_of,$(filter-out %_test.c,$(wildcard $(2)/*.c))) $(call lua_obj,$(2)) $(LIBCOMMON)
	@mkdir -p $$(dir $$@)
	@echo "  LINK    $$@"
	$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p),workers/$(p))))
$(eval $(call program_rule,operator,operator))

# --- unit tests: foo_test.c + its folder's objects (main.c excluded) + libcommon.a ---
define unit_rule
$(O)/test/$(notdir $(basename $(1))): $(call obj_of,$(1) $(call lib_src,$(patsubst %/,%,$(dir $(1))))) $(call lua_obj,$(patsubst %/,%,$(dir $(1)))) $(LIBCOMMON)
	@mkdir -p $$(dir $$@)
	@echo "  LINK    $$@"
	$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $$(LIBCOMMON) $$(LDLIBS) -lcmocka
endef
$(foreach t,$(UNIT_SRC),$(eval $(call unit_rule,$(t))))

asan:
	$(MAKE) -j2 O=build/asan SANITIZE=1 bins unit-bins

# --- fuzzing ---
$(O)/obj/tests/fuzz/%.o: CFLAGS += -Ioperator -Iworkers/consumer
$(O)/bin/%_fuzz: $(O)/obj/tests/fuzz/%_fuzz.o $(FUZZ_LIB_OBJ) $(FUZZ_LUA_OBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(LIBCOMMON) $(LDLIBS)

fuzz-bins:
	$(MAKE) -j2 O=build/fuzz CC=clang SANITIZE=fuzz $(FUZZ_BINS)

# Each harness for FUZZ_SECONDS (default 300) from the committed corpus; `make test` runs them
# for a few seconds each.
fuzz: fuzz-bins
	scripts/fuzz.sh $(FUZZ_SECONDS)

# --- installs, tests, the main job ---
deps:
	scripts/deps.sh all

# What the local pipeline needs (no Kubernetes control plane).
deps-base:
	scripts/deps.sh base

test: deps
	$(MAKE) format-check
	$(MAKE) -j2 bins unit-bins
	$(MAKE) asan
	$(MAKE) fuzz-bins
	scripts/test.sh

unit-test: bins unit-bins
	scripts/test.sh unit

# Sub-makes after the install step: pkg-config flags are read when a make starts, and on a
# fresh machine the libraries only exist once deps has run.
run: deps-base
	$(MAKE) -j2 bins
	scripts/run.sh

up: deps-base
	$(MAKE) -j2 bins
	scripts/local.sh up

down:
	scripts/local.sh down

# Containers, the local registry and ORAS (not needed by `make run`).
deps-images:
	scripts/deps.sh images

images: deps-images
	scripts/images.sh build

push: deps-images
	scripts/images.sh push

registry-up: deps-images
	scripts/registry.sh up

registry-down:
	scripts/registry.sh down

# `make -s print-PKGS`: the pkg-config packages, for scripts/images.sh.
print-%:
	@echo $($*)

bench: deps
	$(MAKE) -j2 bins
	scripts/bench.sh

# About 10-15 minutes; `scripts/report.sh kafka|valkey|hops|writers` runs one comparison.
report: deps-base
	$(MAKE) -j2 bins
	scripts/report.sh

# A/B against the baseline of issue 13 (or BASELINE=<rev>): both measured alternately in one run.
bench-compare: deps
	$(MAKE) -j2 bins
	BASELINE=$(or $(BASELINE),25d93d3) scripts/bench.sh

# Debian bookworm + Valkey + cloud-init, built from Debian packages; cached by content.
valkey-disk: deps-base
	scripts/valkey-disk.sh build

valkey-vm-test: deps-base
	$(MAKE) -j2 bins
	$(MAKE) asan
	scripts/valkey-disk.sh build
	scripts/test.sh -k test_valkey_vm

# The pipeline on a real local node (tests/e2e); needs root, like the node.
e2e-k8s: deps
	$(MAKE) -j2 bins
	scripts/e2e-k8s.sh

# The api's HPA under Locust on the local node, recorded into docs/report/hpa.{csv,png,md,json}.
hpa-demo: deps
	$(MAKE) -j2 bins
	scripts/hpa-demo.sh

# The local cluster with its node; `make cluster-up SP_CLUSTER_NODE=0`: the control plane alone.
cluster-up:
	SP_CLUSTER_NODE=$${SP_CLUSTER_NODE:-1} scripts/cluster.sh up

cluster-down:
	scripts/cluster.sh down

# The pause program of the test node's pod sandboxes (scripts/cluster-node.sh): static, so that
# it runs alone in a FROM-scratch image.
build/node/pause: tools/pause/pause.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) -std=c17 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static -s -o $@ $<

operator-run: cluster-up
	$(MAKE) -j2 bins
	build/cluster/kubectl apply --server-side -f crds/
	KUBECONFIG=build/cluster/kubeconfig $(O)/bin/operator

# The C layout is .clang-format's, as clang-format 14 (Debian bookworm) lays it out: versions
# differ. `make format` applies it; `make format-check` (in `make test`) lists what differs.
CLANG_FORMAT ?= clang-format-14
format:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "format needs $(CLANG_FORMAT) (make deps)"; exit 2; }
	@git ls-files '*.c' '*.h' | xargs $(CLANG_FORMAT) -i

format-check:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "format-check needs $(CLANG_FORMAT) (make deps)"; exit 2; }
	@bad=$$(for f in $$(git ls-files '*.c' '*.h'); do $(CLANG_FORMAT) "$$f" | cmp -s - "$$f" || echo "$$f"; done); \
	if [ -n "$$bad" ]; then echo "differ from .clang-format (make format, or see: $(CLANG_FORMAT) FILE | diff FILE -):"; echo "$$bad"; exit 1; fi; \
	echo "format-check: every C file matches .clang-format"

clean:
	rm -rf build/bin build/obj build/lib build/test build/gen build/asan build/fuzz

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
