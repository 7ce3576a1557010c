#!/usr/bin/env python3
"""Memory per idle live stream (issue 20's goal: at most 8 KiB).

Starts the release build (journal off, rate limit off, per-address shares
lifted: every stream comes from loopback), creates event 1, opens WARMUP
streams, reads the server's VmRSS, opens STREAMS more (each reads its first
message, then stays idle), waits for the resident size to settle and reads
it again. Prints one JSON object; results in bench/results/idle_streams.json.

    python3 bench/idle_streams.py            # STREAMS=9000
    STREAMS=18000 python3 bench/idle_streams.py

Each stream is a socket of this process and one of the server's: both need
an open-file limit above STREAMS (this machine's hard limit is 20,000).
"""

import json
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "boxoffice")
STREAMS = int(os.environ.get("STREAMS", "9000"))
WARMUP = int(os.environ.get("WARMUP", "100"))
DEADLINE_S = 120


def resident_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def settle(pid):
    """The resident size once it stops moving (bounded: 5 s)."""
    last = resident_bytes(pid)
    for _ in range(50):
        time.sleep(0.1)
        now = resident_bytes(pid)
        if now == last:
            return now
        last = now
    return last


def open_streams(host, port, count):
    """Opens `count` streams; returns the sockets once each has its first
    message (the status event), so every stream is set up and then idle."""
    request = (
        f"GET /api/events/1/live HTTP/1.1\r\nHost: {host}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    selector = selectors.DefaultSelector()
    sockets, waiting = [], 0
    deadline = time.monotonic() + DEADLINE_S
    for _ in range(count):
        conn = socket.create_connection((host, port))
        conn.sendall(request)
        conn.setblocking(False)
        selector.register(conn, selectors.EVENT_READ, bytearray())
        sockets.append(conn)
        waiting += 1
        # Keep the accept queue short: drain answers as we go.
        waiting -= drain(selector, 0)
    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{waiting} streams sent no first message")
        waiting -= drain(selector, 1)
    selector.close()
    return sockets


def drain(selector, timeout):
    """Reads what arrived; unregisters a socket once its first status
    message is complete. Returns how many completed."""
    done = 0
    for key, _ in selector.select(timeout):
        data = key.fileobj.recv(65536)
        if not data:
            raise RuntimeError("the server closed a stream")
        key.data.extend(data)
        # The body is chunked: the message's blank line ends it, whatever
        # chunk framing follows.
        start = key.data.find(b"event: status")
        if start >= 0 and b"\n\n" in key.data[start:]:
            selector.unregister(key.fileobj)
            done += 1
    return done


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = STREAMS + WARMUP + 100
    if hard < needed:
        sys.exit(f"open-file limit {hard} is below {needed}: lower STREAMS")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = tempfile.mkdtemp()
    env = dict(
        os.environ,
        RUST_LOG="warn,boxoffice=info",
        BOXOFFICE__SERVER__PORT="0",
        BOXOFFICE__RATE_LIMIT__ENABLED="false",
        BOXOFFICE__LOG__ACCESS_LOG="false",
        BOXOFFICE__SNAPSHOT__DIR=work,
        BOXOFFICE__JOURNAL__ENABLED="false",
        BOXOFFICE__LIVE__MAX_STREAMS_PER_IP="0",
        BOXOFFICE__LIVE__MAX_STREAMS=str(STREAMS + WARMUP + 100),
        BOXOFFICE__SERVER__MAX_CONNECTIONS_PER_IP="0",
        BOXOFFICE__SERVER__MAX_CONNECTIONS=str(STREAMS + WARMUP + 100),  # per worker
    )
    log = open(os.path.join(work, "server.log"), "w+")
    server = subprocess.Popen([BIN], env=env, stdout=log, stderr=subprocess.STDOUT,
                              preexec_fn=lambda: resource.setrlimit(
                                  resource.RLIMIT_NOFILE, (hard, hard)))
    try:
        address = None
        for _ in range(600):
            log.seek(0)
            found = re.search(r"listening on http://([0-9.]+):(\d+)", log.read())
            if found:
                address = (found.group(1), int(found.group(2)))
                break
            if server.poll() is not None:
                sys.exit("boxoffice exited:\n" + open(log.name).read())
            time.sleep(0.1)
        if address is None:
            sys.exit("boxoffice did not start")
        host, port = address
        create = urllib.request.Request(
            f"http://{host}:{port}/api/initialize",
            data=b'{"totalTickets": 10, "eventId": 1}',
            headers={"content-type": "application/json"})
        urllib.request.urlopen(create).read()
        warm = open_streams(host, port, WARMUP)
        before = settle(server.pid)
        started = time.monotonic()
        streams = open_streams(host, port, STREAMS)
        opened_s = time.monotonic() - started
        after = settle(server.pid)
        result = {
            "streams": STREAMS,
            "rss_before_bytes": before,
            "rss_after_bytes": after,
            "bytes_per_stream": round((after - before) / STREAMS),
            "open_seconds": round(opened_s, 2),
        }
        for conn in streams + warm:
            conn.close()
    finally:
        server.terminate()
        server.wait(30)
    print(json.dumps(result))
    out = os.path.join(ROOT, "bench", "results", "idle_streams.json")
    with open(out, "w") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")


if __name__ == "__main__":
    main()
