# NBD module: target (server.c), nbd:// child bdev on libnbd (client.c),
# the protocol fuzz harness and the dp-nbd-serve tool.
.DEFAULT_GOAL := all
all: $(BUILD)/dp-nbd-serve

MODULE_LIBS += -lnbd
# The libFuzzer entry point is not part of the library.
SRCS := $(filter-out src/nbd/fuzz_nbd.c,$(SRCS))

# dp-nbd-serve: serve one device over NBD through the public API only.
$(BUILD)/dp-nbd-serve: tools/dp-nbd-serve.c include/datapath.h $(BUILD)/libdatapath.so
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -o $@ $< \
	  -L$(BUILD) -ldatapath -Wl,-rpath,'$$ORIGIN'

# Fuzzing (clang + libFuzzer): `make fuzz` builds, `make fuzz-smoke` runs ~20 s
# (CI), FUZZ_TIME=600 make fuzz-run for longer (npm run fuzz).
FUZZ_CC   ?= clang
FUZZ_TIME ?= 300
FUZZ_BIN  := $(BUILD)/fuzz/fuzz_nbd
FUZZ_CORPUS := $(BUILD)/fuzz/corpus
.PHONY: fuzz fuzz-smoke fuzz-run
fuzz: $(FUZZ_BIN)
$(FUZZ_BIN): src/nbd/fuzz_nbd.c src/nbd/proto.c src/nbd/proto.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc -Iinclude -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=undefined -o $@ src/nbd/fuzz_nbd.c src/nbd/proto.c
$(FUZZ_CORPUS): src/nbd/fuzz_seeds
	@mkdir -p $@ && cp src/nbd/fuzz_seeds/* $@/
fuzz-smoke: $(FUZZ_BIN) $(FUZZ_CORPUS)
	$(FUZZ_BIN) -max_total_time=20 -max_len=8192 -timeout=5 $(FUZZ_CORPUS)
fuzz-run: $(FUZZ_BIN) $(FUZZ_CORPUS)
	$(FUZZ_BIN) -max_total_time=$(FUZZ_TIME) -max_len=65536 -timeout=5 $(FUZZ_CORPUS)

# The same tool built from the ASan+UBSan objects (hostile-input integration tests).
# (ASAN_OBJS is defined after this file is included: spell it out.)
NBD_ASAN_OBJS = $(SRCS:%.c=$(BUILD)/asan/%.o)
$(BUILD)/dp-nbd-serve-asan: tools/dp-nbd-serve.c include/datapath.h $(SRCS:%.c=$(BUILD)/asan/%.o)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(NBD_ASAN_OBJS) $(LIBS) $(MODULE_LIBS)
