#!/usr/bin/env python3
"""Abusive NBD clients for the limits tests (issue 10, finding 4): raw sockets, many at once,
one process. Every mode prints JSON lines on stdout and, once its clients are in place, holds
them until stdin closes (the test's way of saying "stop"), then closes everything and exits.

  nbd_abuse.py trickle PORT EXPORT N [--interval S] [--reconnect] [--max-bytes B]
      N clients each send a valid handshake (client flags, GO EXPORT) one byte every S seconds
      (default 1). Prints {"event":"connected"} once all are connected and one
      {"event":"closed","peer":"host:port","sent":k} line per client the server drops. With
      --reconnect a dropped client connects again (keeps the pressure up). A client that has sent
      B bytes (default: the whole handshake) stops trickling and prints {"event":"finished"}.
  nbd_abuse.py hold PORT N
      N plain TCP connections that say nothing. Prints {"event":"held","greeted":g,"closed":c,
      "silent":s}: how many got the server's greeting, were closed without one (refused), or got
      nothing within 3 s (not accepted yet: the backlog).
  nbd_abuse.py noread PORT EXPORT N [--reads K] [--size BYTES]
      N clients negotiate (structured replies, GO EXPORT), send K reads of BYTES each (default
      64 x 32 MiB) and never read a reply. Prints {"event":"sent"} when every request is written.
  nbd_abuse.py go PORT EXPORT
      One GO; prints {"event":"go","reply":TYPE,"message":TEXT} (1 is ACK) and exits.
  nbd_abuse.py latency PORT EXPORT K BYTE
      A normal client: one connection, K reads of 4 KiB one after the other (offsets 0, 4 KiB, ...),
      each checked to hold BYTE (a pattern written before); prints {"event":"latency","ms":[...],
      "ok":true} with each read's round trip in ms, and exits.
"""
import json, selectors, socket, struct, sys, threading, time

from nbd_wire import chunk, greet, opt_bytes, reply, req_bytes

HOST = "127.0.0.1"


def out(**kv):
    sys.stdout.write(json.dumps(kv) + "\n")
    sys.stdout.flush()


def stop_event():
    """Set when stdin closes."""
    ev = threading.Event()

    def watch():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            ev.set()

    threading.Thread(target=watch, daemon=True).start()
    return ev


def go_bytes(export, structured=False):
    """Everything a client sends after the greeting: client flags, [STRUCTURED_REPLY,] GO export."""
    b = struct.pack(">I", 3)  # FIXED_NEWSTYLE | NO_ZEROES
    if structured:
        b += opt_bytes(8)
    name = export.encode()
    return b + opt_bytes(7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))


def negotiate(port, export):
    """A blocking client through GO (structured replies). Returns (sock, reply type, message)."""
    s = greet(HOST, port, 30)
    s.sendall(go_bytes(export, structured=True))
    reply(s)  # structured reply ACK
    while True:
        o, t, d = reply(s)
        if t == 1 or t & 0x80000000:
            return s, t, d.decode("utf-8", "replace") if t & 0x80000000 else ""


def nb_connect(port):
    """A non-blocking connect in progress: the selector reports how it ends. OSError if it fails at once."""
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect((HOST, port))
    except BlockingIOError:
        pass
    except OSError:
        s.close()
        raise
    return s


def trickle(port, export, n, interval, reconnect, max_bytes):
    stream = go_bytes(export)
    if max_bytes <= 0:
        max_bytes = len(stream)
    sel = selectors.DefaultSelector()
    clients = {}  # sock -> [sent, peer]

    def connect():
        s = nb_connect(port)
        clients[s] = [0, None]
        sel.register(s, selectors.EVENT_READ)

    def drop(s):
        sel.unregister(s)
        sent, peer = clients.pop(s)
        s.close()
        return sent, peer

    for _ in range(n):
        connect()
    out(event="connected", clients=n)
    stop = stop_event()
    next_tick = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_tick:
            next_tick = now + interval
            for s, st in list(clients.items()):
                if st[0] >= max_bytes:
                    continue
                try:
                    if st[1] is None:
                        st[1] = "%s:%d" % s.getsockname()
                    s.send(stream[st[0]:st[0] + 1])
                    st[0] += 1
                    if st[0] == max_bytes:
                        out(event="finished", peer=st[1], sent=st[0])
                except (BlockingIOError, OSError):
                    pass  # not connected yet, or reset: the read side reports it
        for key, _ in sel.select(timeout=max(0.0, min(0.2, next_tick - time.monotonic()))):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sent, peer = drop(s)
                out(event="closed", peer=peer, sent=sent)
                if reconnect and not stop.is_set():
                    connect()
    for s in list(clients):
        drop(s)


def hold(port, n):
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        try:
            s = nb_connect(port)
        except OSError:
            continue
        socks.append(s)
        sel.register(s, selectors.EVENT_READ)
    state = {}
    end = time.monotonic() + 3
    while len(state) < len(socks) and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                d = s.recv(64)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            state[s] = "greeted" if d else "closed"
            sel.unregister(s)
    counts = {"greeted": 0, "closed": 0, "silent": 0}
    for s in socks:
        counts[state.get(s, "silent")] += 1
    out(event="held", **counts)
    stop_event().wait()
    for s in socks:
        s.close()


def noread(port, export, n, reads, size):
    socks = []
    for i in range(n):
        s, t, msg = negotiate(port, export)
        assert t == 1, "GO refused: %s" % msg
        s.setblocking(False)
        reqs = b"".join(req_bytes(0, (k % 2) * size, size, cookie=k) for k in range(reads))
        pending = reqs
        # The server may stop reading (back-pressure): write what fits, keep the rest for later.
        socks.append([s, pending])
    deadline = time.monotonic() + 20
    while any(p for _, p in socks) and time.monotonic() < deadline:
        for e in socks:
            if e[1]:
                try:
                    k = e[0].send(e[1])
                    e[1] = e[1][k:]
                except BlockingIOError:
                    pass
        time.sleep(0.01)
    out(event="sent", clients=n, unsent_bytes=sum(len(p) for _, p in socks))
    stop_event().wait()
    for s, _ in socks:
        s.close()


def main(argv):
    mode = argv[1]
    args, opts = [], {}
    it = iter(argv[2:])
    for a in it:
        if a == "--reconnect":
            opts["reconnect"] = True
        elif a.startswith("--"):
            opts[a[2:]] = next(it)
        else:
            args.append(a)
    port = int(args[0])
    if mode == "trickle":
        trickle(port, args[1], int(args[2]), float(opts.get("interval", 1)), opts.get("reconnect", False),
                int(opts.get("max-bytes", 0)))
    elif mode == "hold":
        hold(port, int(args[1]))
    elif mode == "noread":
        noread(port, args[1], int(args[2]), int(opts.get("reads", 64)), int(opts.get("size", 32 << 20)))
    elif mode == "latency":
        s, t, msg = negotiate(port, args[1])
        assert t == 1, "GO refused: %s" % msg
        want = bytes([int(args[3], 0)]) * 4096
        ms, ok = [], True
        for k in range(int(args[2])):
            t0 = time.perf_counter()
            s.sendall(req_bytes(0, (k % 256) * 4096, 4096, cookie=k))
            fl, typ, cookie, d = chunk(s)
            ms.append(round((time.perf_counter() - t0) * 1000, 3))
            ok = ok and typ == 1 and cookie == k and d[8:] == want
        out(event="latency", ms=ms, ok=ok)
        s.close()
    elif mode == "go":
        s, t, msg = negotiate(port, args[1])
        out(event="go", reply=t, message=msg)
        s.close()
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
