# py_threads.py: python threading under `mtcp launch`.
#
# Two threads increment shared counters under one threading.Lock (each its own counter
# and a common total, which must always equal their sum); a third waits on a
# threading.Event with a timeout in a loop. Main prints `start PID`, then every ~50 ms
# `count N` (N = 1, 2, ...) and `py A B` (the two counters), after checking the counters
# never went down and the total agrees. Once the file STOP (argv[1]) exists it stops the
# threads, joins them, checks the totals and prints `done OK`. `BAD ...` and exit 3 on
# any problem.
import os
import sys
import threading
import time

stop_file = sys.argv[1]
lock = threading.Lock()
counts = [0, 0]
total = [0]
stop = threading.Event()
waits = [0]


def bad(what):
    print('BAD', what, flush=True)
    os._exit(3)


def worker(i):
    local = 0
    while not stop.is_set():
        with lock:
            counts[i] += 1
            total[0] += 1
            local += 1
            if counts[i] != local:
                bad('worker %d: %d != %d' % (i, counts[i], local))
        if local % 1000 == 0:
            time.sleep(0.001)
    return local


def waiter():
    while not stop.wait(0.02):
        waits[0] += 1


print('start %d' % os.getpid(), flush=True)
threads = [threading.Thread(target=worker, args=(i,), name='worker%d' % i) for i in range(2)]
threads.append(threading.Thread(target=waiter, name='waiter'))
for t in threads:
    t.start()

last = [0, 0]
n = 0
while True:
    n += 1
    with lock:
        a, b, tot = counts[0], counts[1], total[0]
    if a < last[0] or b < last[1]:
        bad('counters went down: %d %d after %d %d' % (a, b, last[0], last[1]))
    if tot != a + b:
        bad('total %d != %d + %d' % (tot, a, b))
    last = [a, b]
    print('count %d' % n, flush=True)
    print('py %d %d' % (a, b), flush=True)
    if os.path.exists(stop_file):
        break
    if n > 4000:
        bad('no stop file after 4000 counts')
    time.sleep(0.05)

stop.set()
for t in threads:
    t.join(30)
    if t.is_alive():
        bad('thread %s did not end' % t.name)
if total[0] != counts[0] + counts[1] or waits[0] == 0:
    bad('final totals %d %d %d waits %d' % (total[0], counts[0], counts[1], waits[0]))
print('done OK', flush=True)
