# NVMe/TCP module: target (tcp.c, ctrlr.c, admin.c, io.c; wire format in
# proto.h and pdu.c, shared with the initiator), the nvmf:// child (host*.c)
# and the tools dp-nvmf-serve and dp-nvmf-check.
all: $(BUILD)/dp-nvmf-serve $(BUILD)/dp-nvmf-check

# dp-nvmf-serve: serve one device over NVMe/TCP through the public API only.
$(BUILD)/dp-nvmf-serve: tools/dp-nvmf-serve.c include/datapath.h $(BUILD)/libdatapath.so
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -o $@ $< \
	  -L$(BUILD) -ldatapath -Wl,-rpath,'$$ORIGIN'

# dp-nvmf-check: write a pattern to an nvmf:// device and read it back by checksum (public API only).
$(BUILD)/dp-nvmf-check: tools/dp-nvmf-check.c include/datapath.h $(BUILD)/libdatapath.so
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -o $@ $< \
	  -L$(BUILD) -ldatapath -Wl,-rpath,'$$ORIGIN'
