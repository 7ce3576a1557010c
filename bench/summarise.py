"""Summarises oha JSON results: medians over rounds per variant, as JSON and a markdown table.

usage: summarise.py NAME RAW_DIR OUT_JSON VARIANT... (files RAW_DIR/VARIANT-ROUND.json)
"""
import datetime
import glob
import json
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import combine  # noqa: E402  (one reader of oha's JSON for both scripts)


def main():
    name, raw, out, *variants = sys.argv[1:]
    rows = {}
    for v in variants:
        med = combine(glob.glob(os.path.join(raw, f"{v}-*.json")))
        if med:
            rows[v] = med
    base = rows.get(variants[0], {}).get("rps") or 1
    result = {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "results": rows,
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"{name} ({result['machine']}, {result['date']}), medians of {rows and next(iter(rows.values()))['rounds']} rounds")
    print(f"| variant | req/s | vs {variants[0]} | p50 ms | p99 ms | p99.9 ms | non-2xx | errors | req/s of each round |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for v, r in rows.items():
        rounds = ", ".join(str(x) for x in r["runs_rps"])
        print(f"| {v} | {r['rps']:.0f} | {r['rps'] / base:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['non_2xx']} | {r['errors']} | {rounds} |")


if __name__ == "__main__":
    main()
