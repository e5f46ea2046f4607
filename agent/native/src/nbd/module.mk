# NBD module: the target (server.c connections and API, handshake.c
# negotiation, transmission.c requests and replies), the nbd:// child bdev
# on libnbd (client.c; client_ident.c its identity across reconnects), and
# the dp-nbd-serve tool.
.DEFAULT_GOAL := all
all: $(BUILD)/dp-nbd-serve

MODULE_LIBS += -lnbd

# dp-nbd-serve: serve one device over NBD through the public API only.
$(BUILD)/dp-nbd-serve: tools/dp-nbd-serve.c include/datapath.h $(BUILD)/libdatapath.so
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -o $@ $< \
	  -L$(BUILD) -ldatapath -Wl,-rpath,'$$ORIGIN'

# The protocol fuzz harness is fuzz/fuzz_nbd.c (fuzz/fuzz.mk).

# The same tool built from the ASan+UBSan objects (hostile-input integration tests).
# (ASAN_OBJS is defined after this file is included: spell it out.)
NBD_ASAN_OBJS = $(SRCS:%.c=$(BUILD)/asan/%.o)
$(BUILD)/dp-nbd-serve-asan: tools/dp-nbd-serve.c include/datapath.h $(SRCS:%.c=$(BUILD)/asan/%.o)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(NBD_ASAN_OBJS) $(LIBS) $(MODULE_LIBS)
