# libFuzzer harnesses (clang, -fsanitize=fuzzer,address,undefined) for the
# parsers that read hostile bytes: the network (NBD server negotiation and
# transmission; NVMe/TCP target PDUs, commands and receive state machine;
# NVMe/TCP host receive path and controller bring-up) and disks another
# machine wrote (pool labels and metadata slots, nexus child labels). The
# nbd:// child has none: libnbd parses the server's bytes (it only compares
# label bytes).
#   make fuzz                     build every harness
#   make fuzz-smoke               run each for FUZZ_SMOKE_TIME s (CI; ~70 s for the 10)
#   make fuzz-run FUZZ_TIME=600   run each for FUZZ_TIME s (npm run fuzz)
# A harness is fuzz/<name>.c, linked with the pure sources <name>_SRCS names;
# its seeds are fuzz/seeds/<name>/ (the working corpus grows in $(BUILD)).
# A crash leaves its input as ./crash-* (or FUZZ_ARTIFACTS/crash-*).

FUZZ_CC         ?= clang
FUZZ_TIME       ?= 300
FUZZ_SMOKE_TIME ?= 6
FUZZ_ARTIFACTS  ?= $(BUILD)/fuzz/artifacts/
FUZZ_CFLAGS     := -std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc -Iinclude -Wall -Wextra -Werror \
                   -Wno-unused-parameter -fsanitize=fuzzer,address,undefined \
                   -fno-sanitize-recover=undefined

FUZZ_NAMES := $(sort $(basename $(notdir $(wildcard fuzz/fuzz_*.c))))
POOL_FORMAT_SRCS := src/pool/format.c src/util/crc32c.c src/util/uuid.c
fuzz_nbd_SRCS          := src/nbd/proto.c
# fuzz_nbd_tx #includes transmission.c (the server's request stream) with the device and reactor modelled.
fuzz_nbd_tx_SRCS       := src/nbd/proto.c
$(BUILD)/fuzz/fuzz_nbd_tx: src/nbd/transmission.c src/nbd/server.h src/nbd/proto.h
fuzz_pool_label_SRCS   := $(POOL_FORMAT_SRCS)
fuzz_pool_meta_SRCS    := $(POOL_FORMAT_SRCS)
fuzz_nexus_label_SRCS  := src/nexus/label.c src/util/crc32c.c
fuzz_nvmf_host_SRCS    := src/nvmf/host_rx.c src/util/uuid.c
fuzz_nvmf_SRCS         := src/nvmf/pdu.c src/util/crc32c.c
# fuzz_nvmf_setup #includes host_setup.c (the controller bring-up) with sockets and clock replaced.
fuzz_nvmf_setup_SRCS   := src/nvmf/host_rx.c src/util/uuid.c
$(BUILD)/fuzz/fuzz_nvmf_setup: src/nvmf/host_setup.c src/nvmf/host.h src/nvmf/proto.h
# fuzz_nvmf_tcp #includes tcp.c (the target's receive state machine) with the handlers modelled.
fuzz_nvmf_tcp_SRCS     := src/nvmf/pdu.c src/util/crc32c.c src/util/error.c
$(BUILD)/fuzz/fuzz_nvmf_tcp: src/nvmf/tcp.c src/nvmf/target.h src/nvmf/proto.h
# fuzz_nvmf_cmd #includes the target's command handlers (and links nothing else): rebuild when they change.
$(BUILD)/fuzz/fuzz_nvmf_cmd: $(wildcard src/nvmf/*.c src/nvmf/*.h src/target/*.c src/target/*.h)

FUZZ_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)

define fuzz_rules
$(BUILD)/fuzz/$(1): fuzz/$(1).c fuzz/fuzz.h $$($(1)_SRCS)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ $$< $$($(1)_SRCS)
endef
$(foreach f,$(FUZZ_NAMES),$(eval $(call fuzz_rules,$(f))))

# Run every harness in turn on a copy of its seeds: $(1) = seconds each,
# $(2) = the largest input. Quiet unless a harness fails.
fuzz_loop = @set -e; mkdir -p $(FUZZ_ARTIFACTS); for f in $(FUZZ_NAMES); do \
	  c=$(BUILD)/fuzz/corpus/$$f; log=$(BUILD)/fuzz/$$f.log; mkdir -p $$c; \
	  if [ -d fuzz/seeds/$$f ]; then cp fuzz/seeds/$$f/* $$c/; fi; \
	  if ! $(BUILD)/fuzz/$$f -max_total_time=$(1) -max_len=$(2) -timeout=5 -rss_limit_mb=2048 \
	      -print_final_stats=1 -artifact_prefix=$(FUZZ_ARTIFACTS) $$c >$$log 2>&1; then \
	    tail -n 60 $$log; echo "fuzz $$f FAILED: input in $(FUZZ_ARTIFACTS), log $$log"; exit 1; fi; \
	  echo "fuzz $$f: $$(grep -o 'number_of_executed_units: [0-9]*' $$log) runs in $(1) s, \
	    $$(ls $$c | wc -l) corpus inputs"; done

.PHONY: fuzz fuzz-smoke fuzz-run
fuzz: $(FUZZ_BINS)
fuzz-smoke: $(FUZZ_BINS)
	$(call fuzz_loop,$(FUZZ_SMOKE_TIME),8192)
fuzz-run: $(FUZZ_BINS)
	$(call fuzz_loop,$(FUZZ_TIME),65536)
