#!/usr/bin/env python3
"""The failover window of a 3-node cluster on loopback: SIGKILL the leader,
then time until a booking is answered 2xx by a node (asked directly, every
20 ms; no proxy in front), restart the killed node with its disk, repeat.

usage: bench/cluster_failover.py [BINARY] [ROUNDS]   (target/release/boxoffice, 10)
Peer ports 7201-7203 and HTTP ports 8201-8203 must be free. Every loop is
bounded: 30 s per round, 20 s for an election.
"""
import json, os, shutil, signal, subprocess, sys, tempfile, time, urllib.request

B = sys.argv[1] if len(sys.argv) > 1 else "target/release/boxoffice"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
root = tempfile.mkdtemp(prefix="boxoffice-failover-")
members=", ".join('{ id = %d, peer = "127.0.0.1:%d", http = "http://127.0.0.1:%d" }'%(i,7200+i,8200+i) for i in (1,2,3))
procs={}
def start(i):
    d=f"{root}/n{i}"; os.makedirs(d,exist_ok=True)
    open(f"{d}/config.toml","w").write(f'[server]\nport = {8200+i}\n[rate_limit]\nenabled = false\n[log]\naccess_log = false\nlevel = "warn"\n[snapshot]\ndir = "{d}/data"\n[cluster]\nnode_id = {i}\nsecret = "0123456789abcdef0123456789abcdef"\nnodes = [{members}]\n')
    procs[i]=subprocess.Popen([B,"--config",f"{d}/config.toml"],stdout=subprocess.DEVNULL,stderr=open(f"{d}/log","a"))
def req(i,method,path,body=None,timeout=1):
    r=urllib.request.Request(f"http://127.0.0.1:{8200+i}{path}",method=method,data=(json.dumps(body).encode() if body is not None else None),headers={"content-type":"application/json"})
    try:
        with urllib.request.urlopen(r,timeout=timeout) as res: return res.status, json.loads(res.read() or b'null')
    except urllib.error.HTTPError as e: return e.code, None
    except Exception as e: return 0, None
def leader():
    for _ in range(400):
        for i in procs:
            if procs[i].poll() is None and req(i,"GET","/leader")[0]==200: return i
        time.sleep(0.05)
    raise SystemExit("no leader")
for i in (1,2,3): start(i)
L=leader(); s,_=req(L,"POST","/api/events",{"name":"f","totalTickets":100000})
times=[]; u=0
for r in range(ROUNDS):
    L=leader(); procs[L].send_signal(signal.SIGKILL); procs[L].wait(); t0=time.time(); dead=L
    while True:
        u+=1; ok=False
        for i in procs:
            if i!=dead and req(i,"PUT",f"/api/events/1/bookings/u{u}",{},timeout=0.5)[0] in (200,201): ok=True
        if ok: break
        time.sleep(0.02)
        if time.time()-t0>30: raise SystemExit("no 2xx in 30 s")
    times.append(time.time()-t0); print(f"round {r+1}: next 2xx after {times[-1]:.2f} s",flush=True)
    start(dead); time.sleep(1.5)
for p in procs.values(): p.kill()
times.sort(); print("failover over %d rounds: median %.2f s, max %.2f s"%(len(times), times[len(times)//2], times[-1]))
shutil.rmtree(root, ignore_errors=True)
