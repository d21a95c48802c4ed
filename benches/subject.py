# Benchmark subject in Python: the same protocol as subject.c (`beat N` every
# millisecond; SIGUSR1 prints `gap MICROSECONDS`, the longest gap a watcher thread saw
# between two of its 200 us naps since the last report).
import signal
import sys
import threading
import time

sys.setswitchinterval(0.0002)
max_gap = 0.0
report = False


def watch():
    global max_gap
    last = time.monotonic()
    while True:
        time.sleep(0.0002)
        now = time.monotonic()
        max_gap = max(max_gap, now - last)
        last = now


def on_usr1(signum, frame):
    global report
    report = True


signal.signal(signal.SIGUSR1, on_usr1)
threading.Thread(target=watch, daemon=True).start()
beat = 0
while True:
    if report:
        report = False
        gap, max_gap = max_gap, 0.0
        print(f"gap {int(gap * 1e6)}")
    print(f"beat {beat}", flush=True)
    beat += 1
    time.sleep(0.001)
