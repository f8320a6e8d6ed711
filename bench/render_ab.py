#!/usr/bin/env python3
"""Turn bench/compare.sh --before/--after's ab.jsonl (one `kinesin bench --json` line per build,
workload and round; label "before" or "after") into a Markdown table: per workload and figure,
each build's median (min–max) over the rounds, after ÷ before of the medians, and whether the two
ranges overlap. Puts it into BENCHMARKS.md between the ab-results markers."""

import argparse
import datetime
import json
import statistics
import sys

BEGIN = "<!-- ab-results:begin (written by bench/compare.sh --before/--after; edit the script, not this block) -->"
END = "<!-- ab-results:end -->"

# (workload, figure, JSON field, higher is better)
FIGURES = [
    ("put-1k", "MiB/s", "mib_per_s", True),
    ("put-1k", "records/s", "records_per_s", True),
    ("put-1k", "PutRecords p99 ms", "request_p99_ms", False),
    ("put-100b", "records/s", "records_per_s", True),
    ("put-100b", "PutRecords p99 ms", "request_p99_ms", False),
    ("get", "records/s drained", "records_per_s", True),
    ("latency", "put-to-get p50 ms", "put_to_get_p50_ms", False),
    ("latency", "put-to-get p99 ms", "put_to_get_p99_ms", False),
    ("many-shards", "records/s (1,000 shards)", "records_per_s", True),
    ("many-shards", "MiB/s (1,000 shards)", "mib_per_s", True),
    ("reshard-latency", "other stream, during reshard: p50 ms", "other_stream_during_p50_ms", False),
    ("reshard-latency", "other stream, during reshard: **p99 ms**", "other_stream_during_p99_ms", False),
    ("reshard-latency", "other stream, during reshard: max ms", "other_stream_during_max_ms", False),
    ("reshard-latency", "other stream, outside: p50 ms", "other_stream_outside_p50_ms", False),
    ("reshard-latency", "other stream, outside: p99 ms", "other_stream_outside_p99_ms", False),
    ("reshard-latency", "same stream, during reshard: p50 ms", "same_stream_during_p50_ms", False),
    ("reshard-latency", "same stream, during reshard: **p99 ms**", "same_stream_during_p99_ms", False),
    ("reshard-latency", "same stream, during reshard: max ms", "same_stream_during_max_ms", False),
    ("reshard-latency", "same stream, outside: p50 ms", "same_stream_outside_p50_ms", False),
    ("reshard-latency", "same stream, outside: p99 ms", "same_stream_outside_p99_ms", False),
    ("reshard-latency", "reshard call to ACTIVE p50 ms", "reshard_p50_ms", False),
    ("reshard-latency", "reshards (split + merge) per run", "reshards", True),
    ("reshard-latency", "records/s (both streams)", "records_per_s", True),
]


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(vals):
    if not vals:
        return "—"
    if len(vals) == 1:
        return fmt(vals[0])
    return f"{fmt(statistics.median(vals))} ({fmt(min(vals))}–{fmt(max(vals))})"


def spread(vals):
    """(max − min) ÷ median, the run-to-run noise of one build."""
    if len(vals) < 2:
        return None
    m = statistics.median(vals)
    return (max(vals) - min(vals)) / m if m else None


def verdict(b, a, higher):
    if not b or not a:
        return ""
    if max(b) >= min(a) and max(a) >= min(b):
        return "ranges overlap: within noise"
    after_better = min(a) > max(b) if higher else max(a) < min(b)
    return "after better" if after_better else "**after worse**"


def render(results, command, machine, before, after):
    runs = {}
    for r in results:
        runs.setdefault((r.get("label"), r.get("workload")), []).append(r)
    rounds = max((r.get("round", 0) for r in results), default=0)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        BEGIN,
        "",
        f"Measured {now} on {machine}; {rounds} round(s), the order of the two builds alternating "
        "from round to round, with:",
        "",
        "```sh",
        command,
        "```",
        "",
        f"- before: `{before}`",
        f"- after: `{after}`",
        "",
        "Each cell: median over the rounds (min–max). after ÷ before: of the medians; for "
        "throughput > 1 means the after build is faster, for latency < 1 means it is faster. "
        "Spread: (max − min) ÷ median of each build's runs, the noise on this machine; a difference "
        "whose ranges overlap is within it.",
        "",
    ]
    head = ["workload", "figure", "before", "after", "after ÷ before", "spread before / after", "verdict"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for workload, label, field, higher in FIGURES:
        b = [r[field] for r in runs.get(("before", workload), []) if r.get(field) is not None]
        a = [r[field] for r in runs.get(("after", workload), []) if r.get(field) is not None]
        if not b and not a:
            continue
        ratio = "—"
        if b and a and statistics.median(b):
            ratio = f"{statistics.median(a) / statistics.median(b):.2f}×"
        sb, sa = spread(b), spread(a)
        noise = " / ".join("—" if s is None else f"{s:.0%}" for s in (sb, sa))
        out.append("| " + " | ".join([workload, label, cell(b), cell(a), ratio, noise, verdict(b, a, higher)]) + " |")

    out += ["", "Every run, in the order run:", ""]
    head = ["round", "build", "workload", "records/s", "MiB/s", "req p50 ms", "req p99 ms",
            "other during p99", "same during p99", "errors"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for r in results:
        err = r.get("errors", 0) or 0
        failed = r.get("failed_records", 0) or 0
        note = f"{err} req, {failed} rec" if (err or failed) else "0"
        if r.get("first_error"):
            note += f": {str(r['first_error'])[:80].replace('|', '/')}"
        out.append("| " + " | ".join([
            str(r.get("round", "—")), str(r.get("label")), str(r.get("workload")),
            fmt(r.get("records_per_s")), fmt(r.get("mib_per_s")),
            fmt(r.get("request_p50_ms")), fmt(r.get("request_p99_ms")),
            fmt(r.get("other_stream_during_p99_ms")), fmt(r.get("same_stream_during_p99_ms")), note,
        ]) + " |")
    out += ["", END]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--command", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--print-only", action="store_true")
    a = ap.parse_args()
    with open(a.results) as f:
        results = [json.loads(line) for line in f if line.strip()]
    block = render(results, a.command, a.machine, a.before, a.after)
    print(block)
    if a.print_only:
        return
    with open(a.markdown) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        sys.exit(f"{a.markdown}: before/after markers not found; add\n{BEGIN}\n{END}")
    pre, rest = text.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    with open(a.markdown, "w") as f:
        f.write(pre + block + post)
    print(f"wrote {a.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
