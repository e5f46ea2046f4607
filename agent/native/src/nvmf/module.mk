# NVMe/TCP module: target (tcp.c, ctrlr.c, admin.c, io.c; wire format in
# proto.h and pdu.c, shared with the initiator) and the dp-nvmf-serve tool.
all: $(BUILD)/dp-nvmf-serve

# dp-nvmf-serve: serve one device over NVMe/TCP through the public API only.
$(BUILD)/dp-nvmf-serve: tools/dp-nvmf-serve.c include/datapath.h $(BUILD)/libdatapath.so
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -o $@ $< \
	  -L$(BUILD) -ldatapath -Wl,-rpath,'$$ORIGIN'
