#!/usr/bin/env python3
# The floor of moving file bytes through a process over loopback TCP, for BENCHMARKS.md "Local
# cost": one process relays N MiB from one socket to another (recv_into a 256 KB buffer, then
# sendall: no HTTP, no TLS, no copy in user space) and reports its own CPU a MB. Upload mode's
# cost above `urls` mode is the same work done by the engine, so this bounds what any program
# can save on it.
#
#   python3 scripts/relay-floor.py 8000
import os
import resource
import socket
import sys
import time

TOTAL = int(sys.argv[1] if len(sys.argv) > 1 else "8000") * 1024 * 1024
BUF = 256 * 1024


def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


sink = listener()
source = listener()
if os.fork() == 0:  # the receiving end: discards what arrives
    conn, _ = sink.accept()
    view = memoryview(bytearray(BUF))
    while conn.recv_into(view):
        pass
    os._exit(0)
if os.fork() == 0:  # the sending end: TOTAL bytes of zeros
    conn = socket.create_connection(("127.0.0.1", source.getsockname()[1]))
    chunk = b"\0" * BUF
    for _ in range(TOTAL // BUF):
        conn.sendall(chunk)
    conn.close()
    os._exit(0)

# The relay, this process: only its own CPU is counted.
inbound, _ = source.accept()
outbound = socket.create_connection(("127.0.0.1", sink.getsockname()[1]))
view = memoryview(bytearray(BUF))
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.time()
moved = 0
while True:
    n = inbound.recv_into(view)
    if not n:
        break
    outbound.sendall(view[:n])
    moved += n
outbound.close()
after = resource.getrusage(resource.RUSAGE_SELF)
user = after.ru_utime - before.ru_utime
system = after.ru_stime - before.ru_stime
mb = moved / 1e6
print(
    f"relayed {mb:.0f} MB in {time.time() - started:.1f} s: user {user:.2f} s, "
    f"system {system:.2f} s, {(user + system) * 1000 / mb:.3f} ms a MB"
)
os.wait()
os.wait()
