"""NBD wire pieces shared by the raw-socket test clients (nbd_hostile.py, nbd_abuse.py): the
magics, the greeting, option requests and replies, transmission requests and structured chunks.
Each reader checks the magic it expects: a server that answers out of protocol fails the client."""
import socket, struct

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPMAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
CHUNK_MAGIC = 0x668E33EF


def recvn(s, n):
    """Exactly n bytes, or EOFError naming how many came."""
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += c
    return b


def greet(host, port, timeout):
    """A blocking connection whose 18-byte newstyle greeting has been read and checked."""
    s = socket.create_connection((host, port), timeout=timeout)
    hello = recvn(s, 18)
    assert struct.unpack(">QQH", hello)[0] == NBDMAGIC, "bad greeting"
    return s


def opt_bytes(o, data=b""):
    return struct.pack(">QII", IHAVEOPT, o, len(data)) + data


def opt(s, o, data=b""):
    s.sendall(opt_bytes(o, data))


def reply(s):
    """One option reply: (option, reply type, data)."""
    m, o, t, l = struct.unpack(">QIII", recvn(s, 20))
    assert m == REPMAGIC, "bad reply magic"
    return o, t, recvn(s, l)


def req_bytes(typ, off, ln, flags=0, cookie=1, payload=b"", magic=REQUEST_MAGIC):
    return struct.pack(">IHHQQI", magic, flags, typ, cookie, off, ln) + payload


def chunk(s):
    """One structured reply chunk: (flags, type, cookie, payload)."""
    m, fl, typ, cookie, ln = struct.unpack(">IHHQI", recvn(s, 20))
    assert m == CHUNK_MAGIC, "expected a structured chunk, magic %x" % m
    return fl, typ, cookie, recvn(s, ln)
