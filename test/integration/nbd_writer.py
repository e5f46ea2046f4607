"""A client from another host, for the writer-lease test (export-writer.test.ts): it binds its source
address (e.g. 127.0.0.2: Linux routes all of 127/8 to lo, so a second host identity needs no setup),
negotiates one export with NBD_OPT_GO (simple replies), runs the requests given and prints one JSON
object: {"size", "flags", "results": [{"op", "offset", "length", "error"[, "sha256"]}]}.

usage: nbd_writer.py SRC HOST PORT EXPORT OP...
  OP: read:OFF:LEN  write:OFF:LEN:BYTE  trim:OFF:LEN  zero:OFF:LEN  flush
A read's sha256 covers the bytes it returned (only when error is 0)."""
import hashlib, json, socket, struct, sys

from nbd_wire import NBDMAGIC, SIMPLE_REPLY_MAGIC, opt, recvn, reply, req_bytes

OPT_GO = 7
REP_ACK, REP_INFO = 1, 3
INFO_EXPORT = 0
CMD = {"read": 0, "write": 1, "flush": 3, "trim": 4, "zero": 6}


def connect(src, host, port, name):
    s = socket.create_connection((host, port), timeout=30, source_address=(src, 0))
    m, _, _ = struct.unpack(">QQH", recvn(s, 18))
    assert m == NBDMAGIC, "bad greeting"
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES
    n = name.encode()
    opt(s, OPT_GO, struct.pack(">I", len(n)) + n + struct.pack(">H", 0))
    size, flags = None, None
    while True:
        _, t, data = reply(s)
        if t == REP_INFO and struct.unpack(">H", data[:2])[0] == INFO_EXPORT:
            size, flags = struct.unpack(">QH", data[2:12])
        elif t == REP_ACK:
            return s, size, flags
        elif t & 0x80000000:
            raise SystemExit("export %r refused: reply type 0x%x %s" % (name, t, data[4:].decode(errors="replace")))


def run(s, op, cookie):
    parts = op.split(":")
    typ = CMD[parts[0]]
    off = int(parts[1]) if len(parts) > 1 else 0
    ln = int(parts[2]) if len(parts) > 2 else 0
    payload = bytes([int(parts[3], 0)]) * ln if parts[0] == "write" else b""
    s.sendall(req_bytes(typ, off, ln, cookie=cookie, payload=payload))
    m, err, got = struct.unpack(">IIQ", recvn(s, 16))
    assert m == SIMPLE_REPLY_MAGIC and got == cookie, "bad reply magic 0x%x or cookie %d" % (m, got)
    r = {"op": parts[0], "offset": off, "length": ln, "error": err}
    if parts[0] == "read" and err == 0:
        r["sha256"] = hashlib.sha256(recvn(s, ln)).hexdigest()
    return r


def main():
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    src, host, port, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    s, size, flags = connect(src, host, port, name)
    results = [run(s, op, i + 1) for i, op in enumerate(sys.argv[5:])]
    s.sendall(req_bytes(2, 0, 0))  # NBD_CMD_DISC
    s.close()
    print(json.dumps({"size": size, "flags": flags, "results": results}))


if __name__ == "__main__":
    main()
