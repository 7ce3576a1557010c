#!/usr/bin/env python3
"""Issue 24's "measure O_DSYNC / RWF_DSYNC against fdatasync": what one durable
batch costs on this disk by each way of making a write durable, one writer, as
the journal writes (sequential batches into a segment zeroed ahead).

  fdatasync  pwrite, then fdatasync (what the journal does today)
  O_DSYNC    pwrite on a descriptor opened with O_DSYNC
  RWF_DSYNC  pwritev2 with RWF_DSYNC on a plain descriptor

Each way runs ROUNDS times for SECS seconds, in turn, so they share the
disk's changes of pace; per way it prints batches/s of each round and the
median and p99 of a batch's latency over all rounds. Batch sizes: 1 record
and 17 records (the mean batch at 64 connections in bench/README.md), 128
bytes a record. Writes target/dsync.bin and removes it.

  python3 bench/dsync.py            # ROUNDS=3 SECS=3
"""
import os
import statistics
import time

ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECS = float(os.environ.get("SECS", "3"))
SEGMENT = 64 << 20
RECORD = 128

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "dsync.bin")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "wb") as f:
    f.write(b"\0" * SEGMENT)
    f.flush()
    os.fsync(f.fileno())


def run(way, batch_bytes):
    """Batches written and made durable for SECS seconds; their latencies."""
    flags = os.O_RDWR | (os.O_DSYNC if way == "O_DSYNC" else 0)
    fd = os.open(path, flags)
    buf = b"x" * batch_bytes
    offset, latencies = 0, []
    stop = time.monotonic() + SECS
    try:
        while time.monotonic() < stop:
            if offset + batch_bytes > SEGMENT:
                offset = 0
            start = time.perf_counter()
            if way == "RWF_DSYNC":
                os.pwritev(fd, [buf], offset, os.RWF_DSYNC)
            else:
                os.pwrite(fd, buf, offset)
                if way == "fdatasync":
                    os.fdatasync(fd)
            latencies.append(time.perf_counter() - start)
            offset += batch_bytes
    finally:
        os.close(fd)
    return latencies


def main():
    ways = ("fdatasync", "O_DSYNC", "RWF_DSYNC")
    for records in (1, 17):
        batch = records * RECORD
        rates = {w: [] for w in ways}
        lat = {w: [] for w in ways}
        for _ in range(ROUNDS):
            for way in ways:
                got = run(way, batch)
                rates[way].append(round(len(got) / SECS))
                lat[way].extend(got)
        print(f"batch of {records} record(s), {batch} bytes:")
        for way in ways:
            ordered = sorted(lat[way])
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            print(
                f"  {way:10} batches/s per round {rates[way]}, "
                f"median {statistics.median(ordered) * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms",
                flush=True,
            )
    os.unlink(path)


if __name__ == "__main__":
    main()
