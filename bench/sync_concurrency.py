#!/usr/bin/env python3
"""How many fdatasyncs a second this disk completes with 1 to 4 threads syncing
one file at once (600-byte writes into a zero-filled 64 MiB file, as the journal
writes into a segment zeroed ahead). Decides whether two syncs in flight can
beat one. Writes target/syncpar.bin and removes it."""
import os, threading, time, sys
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "syncpar.bin")
os.makedirs(os.path.dirname(path), exist_ok=True)
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
os.pwrite(fd, b"\0" * (64 << 20), 0); os.fsync(fd)
def run(n_threads, secs=3):
    count = [0] * n_threads; stop = time.time() + secs; off = [0]; lock = threading.Lock()
    def worker(i):
        while time.time() < stop:
            with lock:
                o = off[0]; off[0] = (off[0] + 4096) % (60 << 20)
            os.pwrite(fd, b"x" * 600, o)
            os.fdatasync(fd)
            count[i] += 1
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    [t.start() for t in ts]; [t.join() for t in ts]
    return sum(count) / secs
for n in (1, 2, 3, 4, 1, 2):
    print(n, "threads:", round(run(n)), "syncs/s", flush=True)
os.close(fd); os.unlink(path)
