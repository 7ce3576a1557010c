#!/usr/bin/env python3
"""Two boxoffice binaries and the lean server, side by side in one run.

usage: bench/ab.py BEFORE_BIN AFTER_BIN LIMIT_BIN MODE ROUTE
MODE: off, interval, always. ROUTE: put (PUT booking for random new users),
status (GET /api/status/{id}) or booking (GET /api/events/{id}/bookings/u1,
a confirmed booking made before the run). Environment: ROUNDS (3), CONNS (64), SECS (5).
The setup of ../shared/tools/ratio/ratio.py (2 workers, rate limit and access
log off, fresh data directories, one event of 10,000,000 tickets), with both
builds started once and every round running the three in turn, the first one
rotating. Prints each round, then medians, both ratios to the lean server and
the median of after/before. Cheaper than bench/compare_builds.sh when both
binaries are built already (keep the old one: cp target/release/boxoffice /tmp/before).
"""
import json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request
a_bin, b_bin, lean = sys.argv[1], sys.argv[2], sys.argv[3]
mode, route = sys.argv[4], sys.argv[5]
ROUNDS = int(os.environ.get("ROUNDS", "3")); CONNS = os.environ.get("CONNS", "64"); SECS = os.environ.get("SECS", "5")
OHA = shutil.which("oha") or os.path.expanduser("~/.cargo/bin/oha")
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def wait(p):
    for _ in range(200):
        try: socket.create_connection(("127.0.0.1", p), 0.2).close(); return True
        except OSError: time.sleep(0.05)
    return False
def start_box(binary):
    work = tempfile.mkdtemp(prefix="ab-"); p = port()
    journal = "\n[journal]\nenabled = false\n" if mode == "off" else f'\n[journal]\nenabled = true\nfsync = "{mode}"\n'
    cfg = os.path.join(work, "c.toml")
    open(cfg, "w").write(f"""[server]\nhost = "127.0.0.1"\nport = {p}\nworkers = 2\n[rate_limit]\nenabled = false\n
[snapshot]\ndir = "{work}/snap"\ninterval_secs = 5\nkeep = 2\n[log]\nlevel = "warn"\naccess_log = false\n{journal}""")
    proc = subprocess.Popen([binary, "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
    assert wait(p)
    r = urllib.request.Request(f"http://127.0.0.1:{p}/api/events", data=b'{"totalTickets": 10000000}', method="POST", headers={"Content-Type": "application/json"})
    eid = json.loads(urllib.request.urlopen(r).read())["event"]["id"]
    if route == "booking":
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{p}/api/events/{eid}/bookings/u1", method="PUT")).read()
    return proc, p, eid, work
def oha(url):
    args = ["-m", "PUT", "--rand-regex-url", url] if route == "put" else [url]
    d = json.loads(subprocess.run([OHA, "--no-tui", "-z", f"{SECS}s", "-c", CONNS, *args, "--output-format", "json"], capture_output=True, text=True).stdout)
    bad = sum(v for k, v in d.get("statusCodeDistribution", {}).items() if not k.startswith("2"))
    return d["summary"]["requestsPerSec"], d["latencyPercentiles"]["p99"] * 1000, bad
A = start_box(a_bin); B = start_box(b_bin)
lp = port(); L = subprocess.Popen([lean, str(lp), "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); wait(lp)
def path(eid):
    if route == "put": return f"/api/events/{eid}/bookings/u[0-9]{{12}}"
    if route == "booking": return f"/api/events/{eid}/bookings/u1"
    return f"/api/{route}/{eid}"
res = {"a": [], "b": [], "l": []}
try:
    for r in range(ROUNDS):
        order = [("a", A), ("b", B), ("l", None)]
        order = order[r % 3:] + order[:r % 3]
        for name, box in order:
            if box: res[name].append(oha(f"http://127.0.0.1:{box[1]}{path(box[2])}"))
            else: res[name].append(oha(f"http://127.0.0.1:{lp}{path(A[2])}"))
        print(f"round {r}: a {res['a'][-1][0]:.0f} (p99 {res['a'][-1][1]:.2f}) b {res['b'][-1][0]:.0f} (p99 {res['b'][-1][1]:.2f}) lean {res['l'][-1][0]:.0f}", flush=True)
    med = lambda k, i=0: statistics.median(x[i] for x in res[k])
    ra = statistics.median(a[0] / l[0] for a, l in zip(res["a"], res["l"]))
    rb = statistics.median(b[0] / l[0] for b, l in zip(res["b"], res["l"]))
    bab = statistics.median(b[0] / a[0] for a, b in zip(res["a"], res["b"]))
    print(f"{route} {mode} c={CONNS}: a {med('a'):.0f}/s p99 {med('a',1):.2f} ms ratio {ra:.2f} | b {med('b'):.0f}/s p99 {med('b',1):.2f} ms ratio {rb:.2f} | b/a {bab:.2f} | non-2xx a {sum(x[2] for x in res['a'])} b {sum(x[2] for x in res['b'])}")
finally:
    for p in (A[0], B[0], L):
        p.terminate(); p.wait(10)
    for w in (A[3], B[3]): shutil.rmtree(w, ignore_errors=True)
