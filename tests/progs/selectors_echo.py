"""selectors_echo.py: a TCP echo server on 127.0.0.1 (port 0: the kernel picks one) on
the `selectors` module's default selector (epoll), which also keeps the time: it prints
`count N` every 50 ms. Prints `port P` once listening; each line a client sends comes
back as `echo N LINE`, N being the count.
usage: python3 selectors_echo.py"""
import selectors
import socket
import time

sel = selectors.DefaultSelector()
ticks = 0


def accept(listener):
    conn, _ = listener.accept()
    conn.setblocking(False)
    sel.register(conn, selectors.EVENT_READ, (serve, bytearray()))


def serve(conn, pending):
    try:
        data = conn.recv(4096)
    except ConnectionError:
        data = b""
    if not data:
        sel.unregister(conn)
        conn.close()
        return
    pending += data
    while b"\n" in pending:
        line, _, rest = pending.partition(b"\n")
        conn.sendall(b"echo %d %s\n" % (ticks, bytes(line)))
        pending[:] = rest


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen()
listener.setblocking(False)
sel.register(listener, selectors.EVENT_READ, (accept, None))
print("port", listener.getsockname()[1], flush=True)
next_tick = time.monotonic()
while True:
    for key, _ in sel.select(max(0.0, next_tick - time.monotonic())):
        handler, state = key.data
        if state is None:
            handler(key.fileobj)
        else:
            handler(key.fileobj, state)
    if time.monotonic() >= next_tick:
        ticks += 1
        print("count", ticks, flush=True)
        next_tick += 0.05
