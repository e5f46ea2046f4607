#!/usr/bin/env python3
"""Hostile NBD clients against a running target: every case must end in a
protocol error or a closed connection, and the server must keep serving.
usage: nbd_hostile.py PORT EXPORT   (export: a >= 1 MiB device, 512-byte blocks)"""
import socket, struct, sys

from nbd_wire import IHAVEOPT, chunk, greet, opt, recvn, reply, req_bytes

HOST, PORT, EXPORT = "127.0.0.1", int(sys.argv[1]), sys.argv[2].encode()
failures = []

def conn():
    return greet(HOST, PORT, 10)

def closed(s):
    """True if the server closes the connection (EOF or reset) within 10 s."""
    try:
        while True:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False

def go(s, name=EXPORT, structured=True):
    if structured:
        opt(s, 8); assert reply(s)[1] == 1
    opt(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">HH", 1, 3))
    size = None
    while True:
        o, t, d = reply(s)
        if t == 3 and struct.unpack(">H", d[:2])[0] == 0:
            size = struct.unpack(">Q", d[2:10])[0]
        if t == 1:
            return size
        if t & 0x80000000:
            return None

def req(s, typ, off, ln, flags=0, cookie=1, payload=b"", magic=0x25609513):
    s.sendall(req_bytes(typ, off, ln, flags, cookie, payload, magic))

def simple_reply(s):
    m, err, cookie = struct.unpack(">IIQ", recvn(s, 16))
    assert m == 0x67446698, "expected a simple reply, magic %x" % m
    return err, cookie

def case(name):
    def wrap(fn):
        try:
            fn()
            print("ok   ", name)
        except Exception as e:  # noqa
            print("FAIL ", name, "-", repr(e))
            failures.append(name)
    return wrap

@case("bad client flags -> close")
def _():
    s = conn(); s.sendall(struct.pack(">I", 0xfffffff0)); assert closed(s)

@case("bad option magic -> close")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3)); s.sendall(struct.pack(">QII", 0x1234, 7, 0)); assert closed(s)

@case("oversized option length (4 GiB) -> close")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3)); s.sendall(struct.pack(">QII", IHAVEOPT, 7, 0xffffffff)); assert closed(s)

@case("unknown option -> NBD_REP_ERR_UNSUP, then GO works")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3))
    opt(s, 0x4242, b"whatever"); o, t, _d = reply(s); assert (o, t) == (0x4242, 0x80000001), (o, t)
    opt(s, 5); assert reply(s)[1] == 0x80000001  # STARTTLS
    assert go(s) is not None
    req(s, 2, 0, 0)  # DISC
    assert closed(s)

@case("oversized export name -> NBD_REP_ERR_INVALID")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3))
    name = b"x" * 5000
    opt(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    assert reply(s)[1] == 0x80000003

@case("name length beyond the option -> NBD_REP_ERR_INVALID")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3))
    opt(s, 7, struct.pack(">I", 1000) + b"abc" + struct.pack(">H", 0)); assert reply(s)[1] == 0x80000003

@case("unknown export -> NBD_REP_ERR_UNKNOWN; EXPORT_NAME unknown -> close")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3))
    assert go(s, b"no-such-export") is None
    opt(s, 1, b"no-such-export"); assert closed(s)

@case("truncated handshake then disconnect")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3) + struct.pack(">QII", IHAVEOPT, 7, 100) + b"abc"); s.close()

@case("request beyond the end -> EINVAL (read) / ENOSPC (write), connection stays")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3)); size = go(s)
    req(s, 0, size, 512, cookie=7); fl, typ, ck, d = chunk(s)
    assert typ == 0x8001 and ck == 7 and struct.unpack(">I", d[:4])[0] == 22, (typ, d)
    req(s, 1, size - 512, 1024, cookie=8, payload=b"\0" * 1024); assert simple_reply(s) == (28, 8)
    req(s, 0, 2**64 - 512, 1024, cookie=9); assert struct.unpack(">I", chunk(s)[3][:4])[0] == 22
    req(s, 0, 0, 512, cookie=10); fl, typ, ck, d = chunk(s); assert typ == 1 and ck == 10 and len(d) == 520

@case("unaligned request -> EINVAL; unknown command -> EINVAL; oversized read -> EOVERFLOW")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3)); go(s)
    req(s, 0, 1, 512, cookie=1); assert struct.unpack(">I", chunk(s)[3][:4])[0] == 22
    req(s, 1, 0, 100, cookie=2, payload=b"z" * 100); assert simple_reply(s) == (22, 2)
    req(s, 0x77, 0, 512, cookie=3); assert simple_reply(s) == (22, 3)
    req(s, 5, 0, 512, cookie=4); assert simple_reply(s) == (22, 4)  # CACHE not advertised
    req(s, 0, 0, 64 << 20, cookie=5); assert struct.unpack(">I", chunk(s)[3][:4])[0] == 75
    req(s, 7, 0, 512, cookie=6); fl, typ, ck, d = chunk(s)  # BLOCK_STATUS without meta context
    assert typ == 0x8001 and struct.unpack(">I", d[:4])[0] == 22

@case("bad request magic -> close")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3)); go(s)
    req(s, 0, 0, 512, magic=0xdeadbeef); assert closed(s)

@case("write above the maximum payload -> close")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3)); go(s)
    req(s, 1, 0, 0xfffffe00); assert closed(s)

@case("disconnect in mid-request (partial write payload)")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3)); go(s)
    req(s, 1, 0, 65536, payload=b"q" * 1000); s.close()

@case("disconnect with 64 reads in flight")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3)); go(s)
    s.sendall(b"".join(struct.pack(">IHHQQI", 0x25609513, 0, 0, i, (i % 16) * 65536, 65536) for i in range(64)))
    s.close()

@case("truncated request header then disconnect")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3)); go(s)
    s.sendall(struct.pack(">IHH", 0x25609513, 0, 0)); s.close()

@case("garbage after GO")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3)); go(s)
    s.sendall(bytes(range(256)) * 8); assert closed(s)

@case("server still serves: write, flush, read back")
def _():
    s = conn(); s.sendall(struct.pack(">I", 3)); go(s, structured=False)
    req(s, 1, 4096, 4096, flags=1, cookie=11, payload=b"\xa5" * 4096); assert simple_reply(s) == (0, 11)
    req(s, 3, 0, 0, cookie=12); assert simple_reply(s) == (0, 12)
    req(s, 0, 4096, 4096, cookie=13); assert simple_reply(s) == (0, 13); assert recvn(s, 4096) == b"\xa5" * 4096
    req(s, 2, 0, 0); assert closed(s)

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
