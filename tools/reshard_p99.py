#!/usr/bin/env python3
"""PutRecords latency while SplitShard runs under load, on another stream and on the same stream.

Starts `kinesin serve` (the binary given) on a fresh data directory (fsync durability, limits
off), keeps PutRecords (100 records of 100 bytes, random partition keys) going from threads on
two streams, `same` and `other`, measures a baseline, then splits shards of `same` one after
another. Reports p50 / p99 / max client-side latency of the puts that overlapped a split, per
stream, and of the puts of the baseline. A rough tool for comparing two builds on one machine
(`kinesin bench --workload reshard-latency` gives the official figures).

    .venv/bin/python tools/reshard_p99.py target/release/kinesin [--splits 20] [--threads 4]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "blackbox"))
from kutil import free_port, make_client  # noqa: E402


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--threads", type=int, default=4, help="writer threads per stream")
    ap.add_argument("--baseline-secs", type=float, default=5.0)
    ap.add_argument("--same-record-bytes", type=int, default=100,
                    help="record size on `same` (large records keep appends in flight when a split drains)")
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="kinesin-p99-")
    port = free_port()
    log = open(os.path.join(data, "server.log"), "w")
    proc = subprocess.Popen(
        [args.binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(data, "d"),
         "--limits", "off", "--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", "0"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        k = make_client(endpoint)
        deadline = time.time() + 30
        while True:
            try:
                k.list_streams()
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        k.create_stream(StreamName="same", ShardCount=1)
        k.create_stream(StreamName="other", ShardCount=1)

        samples = []  # (start, end, stream)
        lock = threading.Lock()
        stop = threading.Event()
        payloads = {"other": os.urandom(100), "same": os.urandom(args.same_record_bytes)}

        def writer(stream):
            c = make_client(endpoint)
            mine = []
            while not stop.is_set():
                recs = [{"PartitionKey": uuid.uuid4().hex, "Data": payloads[stream]} for _ in range(100)]
                t0 = time.perf_counter()
                out = c.put_records(StreamName=stream, Records=recs)
                t1 = time.perf_counter()
                assert out["FailedRecordCount"] == 0, out
                mine.append((t0, t1, stream))
            with lock:
                samples.extend(mine)

        threads = [threading.Thread(target=writer, args=(s,)) for s in ("same", "other") for _ in range(args.threads)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # warm-up
        base_start = time.perf_counter()
        time.sleep(args.baseline_secs)
        base_end = time.perf_counter()

        windows = []
        for _ in range(args.splits):
            shards = k.list_shards(StreamName="same")["Shards"]
            open_shards = [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
            widest = max(open_shards, key=lambda s: int(s["HashKeyRange"]["EndingHashKey"])
                         - int(s["HashKeyRange"]["StartingHashKey"]))
            lo = int(widest["HashKeyRange"]["StartingHashKey"])
            hi = int(widest["HashKeyRange"]["EndingHashKey"])
            t0 = time.perf_counter()
            k.split_shard(StreamName="same", ShardToSplit=widest["ShardId"], NewStartingHashKey=str((lo + hi) // 2 + 1))
            t1 = time.perf_counter()
            windows.append((t0, t1))
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join()

        def during(s):
            return any(s[0] < w1 and s[1] > w0 for (w0, w1) in windows)

        def report(label, lat):
            ms = [x * 1000 for x in lat]
            print(f"{label:<34} n={len(ms):5d}  p50={percentile(ms, 50):7.1f} ms  "
                  f"p99={percentile(ms, 99):7.1f} ms  max={max(ms) if ms else float('nan'):7.1f} ms")

        split_ms = [(w1 - w0) * 1000 for (w0, w1) in windows]
        print(f"binary: {args.binary}")
        print(f"SplitShard calls: {len(windows)}, p50 {percentile(split_ms, 50):.1f} ms, max {max(split_ms):.1f} ms")
        for stream in ("other", "same"):
            base = [e - s for (s, e, st) in samples if st == stream and s >= base_start and e <= base_end]
            dur = [e - s for (s, e, st) in samples if st == stream and during((s, e))]
            report(f"{stream}: baseline", base)
            report(f"{stream}: overlapping a split", dur)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
