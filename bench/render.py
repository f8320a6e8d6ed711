#!/usr/bin/env python3
"""Turn bench/compare.sh's results.jsonl (one `kinesin bench --json` line per server and workload)
into Markdown tables, and put them into BENCHMARKS.md between the results markers."""

import argparse
import datetime
import json
import sys

BEGIN = "<!-- results:begin (written by bench/compare.sh; edit the script, not this block) -->"
END = "<!-- results:end -->"
SERVERS = ["kinesin", "ferrokinesis", "kinesalite"]

# (workload, metric label, field, higher is better, target or None, target text)
HEADLINE = [
    ("put-1k", "MiB/s of 1 KiB records", "mib_per_s", True, 200.0, "≥ 200"),
    ("put-1k", "records/s", "records_per_s", True, None, ""),
    ("put-100b", "records/s (100 B)", "records_per_s", True, 1_000_000.0, "≥ 1,000,000"),
    ("get", "records/s drained", "records_per_s", True, 1_000_000.0, "≥ 1,000,000"),
    ("latency", "put-to-get p50 ms", "put_to_get_p50_ms", False, 1.0, "≤ 1"),
    ("latency", "put-to-get p99 ms", "put_to_get_p99_ms", False, None, ""),
    ("latency", "PutRecord p50 ms", "request_p50_ms", False, None, ""),
    ("many-shards", "records/s (1,000 shards)", "records_per_s", True, None, ""),
    ("many-shards", "MiB/s (1,000 shards)", "mib_per_s", True, None, ""),
]


def fmt(v):
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def render(results, command, machine, commit):
    by = {(r.get("label"), r.get("workload")): r for r in results}
    servers = [s for s in SERVERS if any(r.get("label") == s for r in results)]
    peers = [s for s in servers if s != "kinesin"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        BEGIN,
        "",
        f"Measured {now} on {machine}, kinesin at commit `{commit}`, with:",
        "",
        "```sh",
        command,
        "```",
        "",
        "Ratios say how many times better kinesin is than the peer on that line (throughput: kinesin ÷",
        "peer; latency: peer ÷ kinesin), so > 1 means kinesin is ahead.",
        "",
    ]
    head = ["workload", "metric", "target"] + servers + [f"vs {p}" for p in peers] + ["target met?"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for workload, label, field, higher, target, target_text in HEADLINE:
        vals = {s: by.get((s, workload), {}).get(field) for s in servers}
        if all(v is None for v in vals.values()):
            continue
        row = [workload, label, target_text] + [fmt(vals[s]) for s in servers]
        k = vals.get("kinesin")
        for p in peers:
            v = vals.get(p)
            if k is None or v is None or k == 0 or v == 0:
                row.append("—")
            else:
                row.append(f"{(k / v if higher else v / k):.2f}×")
        if target is None or k is None:
            row.append("")
        elif (k >= target) if higher else (k <= target):
            row.append("yes")
        else:
            share = (k / target) if higher else (target / k)
            row.append(f"no ({share:.0%} of target)")
        out.append("| " + " | ".join(row) + " |")

    out += ["", "Every run:", ""]
    head = ["server", "workload", "shards", "conns", "record B", "records", "s", "records/s", "MiB/s",
            "req p50 ms", "req p99 ms", "errors"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for r in results:
        err = r.get("errors", 0) or 0
        failed = r.get("failed_records", 0) or 0
        note = f"{err} req, {failed} rec" if (err or failed) else "0"
        if r.get("first_error"):
            note += f": {str(r['first_error'])[:80].replace('|', '/')}"
        out.append("| " + " | ".join([
            str(r.get("label")), str(r.get("workload")), str(r.get("shards", "—")),
            str(r.get("connections", "—")), str(r.get("record_bytes", "—")), str(r.get("records", "—")),
            fmt(r.get("elapsed_s")), fmt(r.get("records_per_s")), fmt(r.get("mib_per_s")),
            fmt(r.get("request_p50_ms")), fmt(r.get("request_p99_ms")), note,
        ]) + " |")
    out += ["", END]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--command", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--print-only", action="store_true")
    a = ap.parse_args()
    with open(a.results) as f:
        results = [json.loads(line) for line in f if line.strip()]
    block = render(results, a.command, a.machine, a.commit)
    print(block)
    if a.print_only:
        return
    try:
        with open(a.markdown) as f:
            text = f.read()
    except FileNotFoundError:
        text = f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        sys.exit(f"{a.markdown}: results markers not found; add\n{BEGIN}\n{END}")
    pre, rest = text.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    with open(a.markdown, "w") as f:
        f.write(pre + block + post)
    print(f"wrote {a.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
