"""tcp_client.py: holds a TCP connection to 127.0.0.1:PORT and prints `count N` every
50 ms; every 10 counts it sends `ping N` and reads the answer line. A connection that
fails prints `lost E` (the exception's name) and is made again: `connected K`.
usage: python3 tcp_client.py PORT"""
import socket
import sys
import time

port = int(sys.argv[1])
connections = 0


def connect():
    global connections
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    connections += 1
    print("connected", connections, flush=True)
    return s, s.makefile("rb")


conn, lines = connect()
n = 0
while True:
    n += 1
    print("count", n, flush=True)
    if n % 10 == 0:
        try:
            conn.sendall(b"ping %d\n" % n)
            answer = lines.readline()
            if not answer:
                raise ConnectionAbortedError("end of file")
        except (ConnectionError, OSError) as e:
            print("lost", type(e).__name__, flush=True)
            conn.close()
            conn, lines = connect()
    time.sleep(0.05)
