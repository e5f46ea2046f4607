# Nexus module: dp-nexus-bench, the write cost of a nexus against a single
# device through the public API (no NBD in the way).
all: $(BUILD)/dp-nexus-bench
# Snapshot uuids of a volume snapshot's parts are SHA-1 name-based (snapshot.c).
MODULE_LIBS += -lcrypto

$(BUILD)/dp-nexus-bench: tools/dp-nexus-bench.c include/datapath.h $(BUILD)/libdatapath.so
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -o $@ $< \
	  -L$(BUILD) -ldatapath -Wl,-rpath,'$$ORIGIN'
