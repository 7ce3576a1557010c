#!/usr/bin/env python3
"""A 3-node cluster behind HAProxy against one node behind the same HAProxy.

1. Throughput: PUT bookings (a fresh user each, oha --rand-regex-url) with
   64 connections through the proxy, ROUNDS alternating rounds of SECS
   seconds each (cluster, single, cluster, single, ...); medians and their
   ratio. Every node runs with journal.fsync = "always" (the default).
2. Failover: FAILOVERS times, SIGKILL the leader, then book through the
   proxy every 20 ms until one is answered 2xx; the time from the kill to
   that answer; the killed node restarts with its disk before the next.

The proxy config is deploy/cluster/haproxy.cfg with its ports rewritten
(for the single node, its one server line). Everything is on 127.0.0.1,
every process is ours and stopped by its PID, every loop is bounded.

usage: bench/cluster.py [BINARY (target/release/boxoffice)]
env:   CLUSTER_SECS (5) CLUSTER_ROUNDS (3) CLUSTER_FAILOVERS (10) CLUSTER_CONNS (64)
       CLUSTER_OUT (bench/results/cluster.json)
needs: haproxy, oha, python3.
"""
import json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/boxoffice")
SECS = int(os.environ.get("CLUSTER_SECS", "5"))
ROUNDS = int(os.environ.get("CLUSTER_ROUNDS", "3"))
FAILOVERS = int(os.environ.get("CLUSTER_FAILOVERS", "10"))
CONNS = int(os.environ.get("CLUSTER_CONNS", "64"))
OUT = os.environ.get("CLUSTER_OUT", os.path.join(ROOT, "bench/results/cluster.json"))
SECRET = "bench-cluster-secret-of-32-bytes-or-more"
TEMPLATE = open(os.path.join(ROOT, "deploy/cluster/haproxy.cfg")).read()

work = tempfile.mkdtemp(prefix="boxoffice-cluster-bench-")
children = []  # every process we started


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args, log):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "a"))
    children.append(p)
    return p


def request(base, method, path, body=None, timeout=1.0):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(base + path, method=method, data=data,
                               headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(r, timeout=timeout) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None
    except Exception:
        return 0, None


def wait_for(what, check, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise SystemExit(f"{what}: not within {seconds} s")


class Node:
    def __init__(self, name, port, cluster=None):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.proc = port, None
        config = (f'[server]\nport = {port}\n[rate_limit]\nenabled = false\n'
                  f'[log]\naccess_log = false\nlevel = "warn"\n'
                  f'[journal]\nfsync = "always"\n[snapshot]\ndir = "{self.dir}/data"\n')
        if cluster:
            config += cluster
        self.config = os.path.join(self.dir, "config.toml")
        open(self.config, "w").write(config)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.proc = spawn([BIN, "--config", self.config], os.path.join(self.dir, "log"))
        wait_for(f"node on {self.port}", lambda: request(self.base, "GET", "/health")[0] == 200)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def proxy(servers):
    """HAProxy from the deploy config, its listener and servers moved."""
    port = free_port()
    cfg = TEMPLATE.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    lines = []
    for line in cfg.splitlines():
        stripped = line.strip()
        if stripped.startswith("server node"):
            n = int(stripped.split()[1][4:])
            if n > len(servers):
                continue
            line = line.replace(f"127.0.0.1:810{n}", f"127.0.0.1:{servers[n - 1].port}")
        lines.append(line)
    path = os.path.join(work, f"haproxy-{port}.cfg")
    open(path, "w").write("\n".join(lines) + "\n")
    spawn(["haproxy", "-db", "-f", path], os.path.join(work, f"haproxy-{port}.log"))
    return f"http://127.0.0.1:{port}"


def book_rate(base, label):
    """oha's successful bookings per second through `base`."""
    out = subprocess.run(
        ["oha", "-z", f"{SECS}s", "-c", str(CONNS), "-m", "PUT", "--no-tui",
         "--output-format", "json", "--rand-regex-url", f"{base}/api/events/1/bookings/u[0-9]{{12}}"],
        capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    codes = result.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    total = sum(codes.values()) or 1
    rps = result["summary"]["requestsPerSec"] * ok / total
    p99 = (result.get("latencyPercentiles", {}).get("p99") or 0) * 1000
    print(f"  {label}: {rps:,.0f} bookings/s, p99 {p99:.1f} ms, {ok}/{total} 2xx", flush=True)
    return rps, p99


def create_event(base):
    wait_for("an event created through the proxy", lambda: request(
        base, "POST", "/api/events", {"name": "bench", "totalTickets": 10_000_000})[0] == 201)


try:
    ports = [(free_port(), free_port()) for _ in range(3)]
    members = ", ".join(
        f'{{ id = {i + 1}, peer = "127.0.0.1:{peer}", http = "http://127.0.0.1:{http}" }}'
        for i, (http, peer) in enumerate(ports))
    nodes = [Node(f"node{i + 1}", http, f'[cluster]\nnode_id = {i + 1}\nsecret = "{SECRET}"\nnodes = [{members}]\n')
             for i, (http, _) in enumerate(ports)]
    for n in nodes:
        n.start()
    single = Node("single", free_port())
    single.start()
    cluster_proxy, single_proxy = proxy(nodes), proxy([single])
    create_event(cluster_proxy)
    create_event(single_proxy)
    # A new cluster may change leader once while it forms (openraft's
    # first election can be contested); measure a settled one.
    time.sleep(3)
    create_event(cluster_proxy)

    print(f"throughput: {ROUNDS} alternating rounds of {SECS} s, {CONNS} connections, fsync always", flush=True)
    cluster_runs, single_runs = [], []
    for r in range(ROUNDS):
        cluster_runs.append(book_rate(cluster_proxy, f"round {r + 1} cluster"))
        single_runs.append(book_rate(single_proxy, f"round {r + 1} single"))
    c = statistics.median(x[0] for x in cluster_runs)
    s = statistics.median(x[0] for x in single_runs)
    print(f"median: cluster {c:,.0f}/s, single {s:,.0f}/s, ratio {c / s:.2f}", flush=True)

    def leader():
        for _ in range(400):
            for n in nodes:
                if n.proc.poll() is None and request(n.base, "GET", "/leader")[0] == 200:
                    return n
            time.sleep(0.05)
        raise SystemExit("no leader")

    windows, user = [], 0
    for r in range(FAILOVERS):
        dead = leader()
        dead.kill()
        killed = time.time()
        while True:
            user += 1
            status, _ = request(cluster_proxy, "PUT", f"/api/events/1/bookings/f{user}", {}, timeout=0.5)
            if 200 <= status < 300:
                break
            if time.time() - killed > 30:
                raise SystemExit("no 2xx through the proxy within 30 s")
            time.sleep(0.02)
        windows.append(time.time() - killed)
        print(f"failover {r + 1}: next 2xx through the proxy after {windows[-1]:.2f} s", flush=True)
        dead.start()
        time.sleep(1.5)
    if windows:
        print(f"failover over {len(windows)} rounds: median {statistics.median(windows):.2f} s, "
              f"max {max(windows):.2f} s", flush=True)

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    json.dump({
        "secs": SECS, "rounds": ROUNDS, "conns": CONNS, "fsync": "always",
        "cluster_bookings_per_sec": [x[0] for x in cluster_runs],
        "cluster_p99_ms": [x[1] for x in cluster_runs],
        "single_bookings_per_sec": [x[0] for x in single_runs],
        "single_p99_ms": [x[1] for x in single_runs],
        "ratio_of_medians": c / s,
        "failover_secs": windows,
    }, open(OUT, "w"), indent=1)
finally:
    for p in children:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(work, ignore_errors=True)
