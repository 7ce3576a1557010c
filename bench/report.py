"""Turns the harness's raw oha JSON into results: medians over rounds, ratios
to the speed-limit server, a markdown table (also written into
bench/README.md between its markers) and an SVG of throughput and p99
against connections.

usage: report.py RAW_DIR OUT_DIR [--smoke] [--lean]
(--lean: the limit variant was the lean server of ../shared/tools, except s5)
RAW_DIR/SCENARIO/CONNECTIONS/VARIANT-ROUND.json
"""
import datetime
import glob
import json
import os
import platform
import statistics
import sys

VARIANTS = ["limit", "off", "interval", "always"]
TITLES = {
    "s1": "1. PUT booking, unique users, 10M tickets",
    "s2": "2. PUT booking, sold-out event, queue past 1M",
    "s3": "3. POST /api/book, unique bodies",
    "s4a": "4a. GET /api/status/1",
    "s4b": "4b. GET /api/booking-status/1/u1",
    "s5": "5. mixed: 1,000 events, 80% reads, 20% books/cancels",
    "s6": "6. s1 by connections",
}


def load(path):
    with open(path) as f:
        r = json.load(f)
    codes = r.get("statusCodeDistribution", {})
    dist = r.get("errorDistribution", {})
    # oha cancels the requests in flight when its -z window closes.
    deadline = dist.get("aborted due to deadline", 0)
    lat = r.get("latencyPercentiles", {})
    return {
        "rps": r["summary"]["requestsPerSec"],
        "p50_ms": (lat.get("p50") or 0) * 1000,
        "p99_ms": (lat.get("p99") or 0) * 1000,
        "p999_ms": (lat.get("p99.9") or 0) * 1000,
        "non_2xx": sum(n for c, n in codes.items() if not c.startswith("2")),
        "errors": sum(dist.values()) - deadline,
    }


def combine(paths):
    """Medians over rounds of one variant's result files, with totals of what
    must be zero; None when there are none."""
    runs = [load(p) for p in sorted(paths)]
    if not runs:
        return None
    med = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_ms", "p99_ms", "p999_ms")}
    med["non_2xx"] = sum(r["non_2xx"] for r in runs)
    med["errors"] = sum(r["errors"] for r in runs)
    med["rounds"] = len(runs)
    med["runs_rps"] = [round(r["rps"]) for r in runs]
    return med


def summarise(raw):
    results = {}
    for scen_dir in sorted(glob.glob(os.path.join(raw, "*"))):
        scenario = os.path.basename(scen_dir)
        for conn_dir in sorted(glob.glob(os.path.join(scen_dir, "*")), key=lambda p: int(os.path.basename(p))):
            conns = os.path.basename(conn_dir)
            row = {}
            for v in VARIANTS:
                med = combine(glob.glob(os.path.join(conn_dir, f"{v}-*.json")))
                if med:
                    row[v] = med
            limit = row.get("limit", {}).get("rps")
            for v, med in row.items():
                med["ratio_to_limit"] = med["rps"] / limit if limit else None
            results.setdefault(scenario, {})[conns] = row
    # s6 at 64 connections is s1.
    if "s1" in results and "64" in results["s1"]:
        results.setdefault("s6", {}).setdefault("64", results["s1"]["64"])
    return results


def table(results):
    lines = [
        "| scenario | conns | variant | req/s | ratio to limit | p50 ms | p99 ms | p99.9 ms | non-2xx | errors |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in sorted(results, key=lambda s: list(TITLES).index(s) if s in TITLES else 99):
        for conns in sorted(results[scenario], key=int):
            for v, m in results[scenario][conns].items():
                ratio = f"{m['ratio_to_limit']:.2f}" if m["ratio_to_limit"] is not None else "-"
                lines.append(
                    f"| {TITLES.get(scenario, scenario)} | {conns} | {v} | {m['rps']:.0f} | {ratio} | "
                    f"{m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['p999_ms']:.2f} | {m['non_2xx']} | {m['errors']} |"
                )
    return "\n".join(lines)


def svg(results, path):
    curve = results.get("s6", {})
    conns = sorted(curve, key=int)
    if len(conns) < 2:
        return False
    colours = {"limit": "#888888", "off": "#1f77b4", "interval": "#2ca02c", "always": "#d62728"}
    w, h, pad = 460, 300, 50
    panels = [("throughput (req/s)", "rps"), ("p99 latency (ms)", "p99_ms")]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w}" height="{h + 40}" font-family="sans-serif" font-size="12">']
    xs = {c: pad + i * (w - 2 * pad) / (len(conns) - 1) for i, c in enumerate(conns)}
    for p, (title, key) in enumerate(panels):
        ox = p * w
        top = max(m[key] for c in conns for m in curve[c].values()) * 1.1 or 1
        out.append(f'<text x="{ox + w / 2}" y="18" text-anchor="middle" font-weight="bold">{title} vs connections (scenario 1)</text>')
        out.append(f'<line x1="{ox + pad}" y1="{h - pad + 30}" x2="{ox + w - pad}" y2="{h - pad + 30}" stroke="black"/>')
        out.append(f'<line x1="{ox + pad}" y1="40" x2="{ox + pad}" y2="{h - pad + 30}" stroke="black"/>')
        for i in range(5):
            val = top * i / 4
            y = h - pad + 30 - (h - pad - 10) * i / 4
            out.append(f'<text x="{ox + pad - 5}" y="{y + 4}" text-anchor="end">{val:.0f}</text>')
        for c in conns:
            out.append(f'<text x="{ox + xs[c]}" y="{h - pad + 46}" text-anchor="middle">{c}</text>')
        for v, colour in colours.items():
            pts = [(ox + xs[c], h - pad + 30 - (h - pad - 10) * curve[c][v][key] / top) for c in conns if v in curve[c]]
            if len(pts) > 1:
                out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}"/>')
            for x, y in pts:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
    for i, (v, colour) in enumerate(colours.items()):
        out.append(f'<rect x="{pad + i * 150}" y="{h + 20}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{pad + i * 150 + 16}" y="{h + 31}">{"limit server" if v == "limit" else "journal " + v}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))
    return True


def main():
    raw, out = sys.argv[1], sys.argv[2]
    smoke = "--smoke" in sys.argv
    results = summarise(raw)
    reference = (
        "the lean server of ../shared/tools/limit-server (s5: bench/tools' limit, which serves its routes)"
        if "--lean" in sys.argv
        else "bench/tools' limit server (../shared/tools not found)"
    )
    meta = {
        "limit": reference,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "smoke": smoke,
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "latest.json"), "w") as f:
        json.dump({**meta, "results": results}, f, indent=2)
    text = table(results)
    print(f"{meta['machine']}, {meta['date']}; limit: {reference}")
    print(text)
    made_svg = svg(results, os.path.join(out, "connections.svg"))
    bad = [(s, c, v) for s in results for c in results[s] for v, m in results[s][c].items() if m["non_2xx"] or m["errors"]]
    if bad:
        print(f"non-2xx answers or errors in: {bad}", file=sys.stderr)
    if not smoke:
        readme = os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")
        with open(readme) as f:
            doc = f.read()
        start, end = "<!-- bench:table:start -->", "<!-- bench:table:end -->"
        if start in doc and end in doc:
            block = (
                f"{start}\nRun {meta['date']} ({meta['machine']}), medians of the rounds; "
                f"limit: {reference}:\n\n{text}\n{end}"
            )
            doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end):]
            with open(readme, "w") as f:
                f.write(doc)
    # The smoke pass asserts no speed, but a non-2xx answer is a bug.
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
