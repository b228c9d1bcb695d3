#!/usr/bin/env python3
"""Flotilla against a peer, side by side, from the JSON reports both benches write.

    compare.py FLOTILLA_JSON... --peer PEER_JSON... [--markdown OUT]

Every metric is the median over the runs given for a system, per (scenario, variant).
The Markdown goes to stdout, and to OUT as well when --markdown is given.
"""

import argparse
import json
import statistics
import sys

DISPLAY_NAMES = {"flotilla": "Flotilla", "bullmq": "BullMQ"}
DASH = "–"


def load(paths):
    reports = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                reports.append(json.load(f))
        except (OSError, json.JSONDecodeError) as e:
            sys.exit(f"compare.py: cannot read {path}: {e}")
    systems = {r.get("system") for r in reports}
    if len(systems) > 1:
        print(f"compare.py: warning: one side mixes systems {sorted(map(str, systems))}", file=sys.stderr)
    return reports


def display_name(reports):
    system = str(reports[0].get("system", "?"))
    return DISPLAY_NAMES.get(system, system)


def median(values):
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def metric(row, name):
    if name == "p99":
        latency = row.get("latency_ms")
        return latency.get("p99") if latency else None
    return row.get(name)


METRICS = [
    "jobs_per_s",
    "redis_cpu_us_per_job",
    "redis_calls_per_job",
    "redis_bytes_per_job",
    "worker_rss_mb",
    "p99",
]


def medians(reports):
    """{(scenario, variant): {metric: median over runs}}, in the order rows first appear."""
    runs = {}
    for report in reports:
        for row in report.get("results", []):
            key = (row["scenario"], str(row["variant"]))
            runs.setdefault(key, []).append(row)
    return {key: {m: median([metric(r, m) for r in rows]) for m in METRICS} for key, rows in runs.items()}


def distinct(values):
    seen = []
    for v in values:
        if v is not None and v not in seen:
            seen.append(v)
    return seen


def joined(values):
    values = distinct(values)
    return "; ".join(str(v) for v in values) if values else "unknown"


def header(ours, peer, our_name, peer_name):
    everyone = ours + peer
    machines = [r.get("machine") or {} for r in everyone]
    # Each runtime spells the OS its own way; the CPU, core count and Redis must agree.
    same = [{k: m.get(k) for k in ("cpu", "cores", "redis")} for m in machines]
    if len(distinct([json.dumps(m, sort_keys=True) for m in same])) > 1:
        print("compare.py: warning: the reports come from different machines or Redis versions", file=sys.stderr)
    cpu = joined([m.get("cpu") for m in machines])
    cores = joined([m.get("cores") for m in machines])
    os_name = joined([m.get("os") for m in machines])
    redis = joined([m.get("redis") for m in machines])
    params = [r.get("params") or {} for r in everyone]
    jobs = joined([p.get("jobs") for p in params])
    payload = joined([p.get("payload_bytes") for p in params])
    pinned = joined(["yes" if p.get("pinned") else "no" for p in params])
    return [
        f"# {our_name} vs {peer_name}",
        "",
        f"- Machine: {cpu}, {cores} cores, {os_name}",
        f"- Redis: {redis}",
        f"- Versions: {our_name} {joined([r.get('version') for r in ours])}, "
        f"{peer_name} {joined([r.get('version') for r in peer])}",
        f"- Runs: {len(ours)} {our_name}, {len(peer)} {peer_name} (each figure is the median over the runs)",
        f"- Jobs: {jobs}, payload {payload} bytes, pinned: {pinned}",
        f"- {our_name[0]} = {our_name}, {peer_name[0]} = {peer_name}; {DASH} = not measured",
    ]


def row_order(keys):
    """Rows grouped by scenario, scenarios and variants in the order they first appear."""
    scenarios, variants = [], {}
    for scenario, variant in keys:
        if scenario not in variants:
            scenarios.append(scenario)
            variants[scenario] = []
        if variant not in variants[scenario]:
            variants[scenario].append(variant)
    return [(s, v) for s in scenarios for v in variants[s]]


def fmt(value, digits):
    return DASH if value is None else f"{value:.{digits}f}"


def table(ours, peer, our_name, peer_name):
    a, b = our_name[0], peer_name[0]
    columns = [
        "scenario",
        "variant",
        f"{our_name} jobs/s",
        f"{peer_name} jobs/s",
        f"ratio {a}/{b}",
        f"Redis µs/job {a}",
        f"Redis µs/job {b}",
        f"Redis calls/job {a}",
        f"Redis calls/job {b}",
        f"bytes/job {a}",
        f"bytes/job {b}",
        f"worker RSS MB {a}",
        f"worker RSS MB {b}",
        f"p99 ms {a}",
        f"p99 ms {b}",
    ]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|---|---|" + "--:|" * (len(columns) - 2),
    ]
    empty = dict.fromkeys(METRICS)
    for key in row_order(list(ours) + list(peer)):
        x, y = ours.get(key, empty), peer.get(key, empty)
        ratio = None
        if x["jobs_per_s"] is not None and y["jobs_per_s"]:
            ratio = x["jobs_per_s"] / y["jobs_per_s"]
        cells = [
            key[0],
            key[1],
            fmt(x["jobs_per_s"], 0),
            fmt(y["jobs_per_s"], 0),
            fmt(ratio, 2),
            fmt(x["redis_cpu_us_per_job"], 1),
            fmt(y["redis_cpu_us_per_job"], 1),
            fmt(x["redis_calls_per_job"], 2),
            fmt(y["redis_calls_per_job"], 2),
            fmt(x["redis_bytes_per_job"], 0),
            fmt(y["redis_bytes_per_job"], 0),
            fmt(x["worker_rss_mb"], 1),
            fmt(y["worker_rss_mb"], 1),
            fmt(x["p99"], 2),
            fmt(y["p99"], 2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def notes(reports, name):
    found = distinct([n for r in reports for n in (r.get("notes") or [])])
    if not found:
        return []
    return ["", f"{name} notes:", ""] + [f"- {n}" for n in found]


def main():
    parser = argparse.ArgumentParser(
        description="Flotilla against a peer system, side by side, from bench JSON reports.",
    )
    parser.add_argument("flotilla", nargs="+", metavar="FLOTILLA_JSON", help="Flotilla reports (one per run)")
    parser.add_argument("--peer", nargs="+", required=True, metavar="PEER_JSON", help="the peer's reports (one per run)")
    parser.add_argument("--markdown", metavar="OUT", help="also write the Markdown here")
    args = parser.parse_args()

    ours, peer = load(args.flotilla), load(args.peer)
    our_name, peer_name = display_name(ours), display_name(peer)
    lines = header(ours, peer, our_name, peer_name)
    lines += [""] + table(medians(ours), medians(peer), our_name, peer_name)
    lines += notes(ours, our_name) + notes(peer, peer_name)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
