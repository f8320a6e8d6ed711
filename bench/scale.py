"""10,000 shards on one node: creation time of 1,000-shard streams, idle RSS and open files.

    .venv/bin/python bench/scale.py                 # 10 streams x 1,000 shards
    KINESIN_BIN=... .venv/bin/python bench/scale.py --streams 10 --shards 1000

Starts `kinesin serve` on a fresh data dir, creates the streams (timing each CreateStream until
ACTIVE), writes one record to every shard (so every shard has a segment file), waits, then reads
the server's RSS and open descriptors from /proc.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "blackbox"))
from kutil import Server, wait_status  # noqa: E402


def proc_status(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--shards", type=int, default=1000)
    args = ap.parse_args()
    total = args.streams * args.shards
    data = Path(tempfile.mkdtemp(prefix="kinesin-scale-"))
    srv = Server(
        data_dir=data,
        args=["--create-stream-ms", "0", "--shard-limit", str(total), "--limits", "off", "--log-level", "warn"],
    )
    srv.start()
    try:
        k = srv.client()
        pid = srv.proc.pid
        rss0 = proc_status(pid, "VmRSS")
        create = []
        for i in range(args.streams):
            t = time.perf_counter()
            k.create_stream(StreamName=f"scale-{i}", ShardCount=args.shards)
            wait_status(k, f"scale-{i}", timeout=60)
            create.append(time.perf_counter() - t)
        rss_created = proc_status(pid, "VmRSS")
        t = time.perf_counter()
        for i in range(args.streams):
            # One record per shard: ExplicitHashKey at each shard's starting hash key.
            shards = []
            resp = k.list_shards(StreamName=f"scale-{i}", MaxResults=1000)
            shards += resp["Shards"]
            while resp.get("NextToken"):
                resp = k.list_shards(NextToken=resp["NextToken"], MaxResults=1000)
                shards += resp["Shards"]
            for j in range(0, len(shards), 500):
                batch = shards[j : j + 500]
                r = k.put_records(
                    StreamName=f"scale-{i}",
                    Records=[
                        {"Data": b"x" * 100, "PartitionKey": "p", "ExplicitHashKey": s["HashKeyRange"]["StartingHashKey"]}
                        for s in batch
                    ],
                )
                assert r["FailedRecordCount"] == 0, r
        write_s = time.perf_counter() - t
        time.sleep(2)
        rss = proc_status(pid, "VmRSS")
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        files = sum(1 for _ in data.rglob("*") if _.is_file())
        print(f"shards: {total} ({args.streams} streams x {args.shards})")
        print(
            f"CreateStream of {args.shards} shards until ACTIVE: min {min(create) * 1000:.0f} ms, "
            f"max {max(create) * 1000:.0f} ms, mean {sum(create) / len(create) * 1000:.0f} ms"
        )
        print(f"one record to every shard: {write_s:.1f} s")
        print(f"RSS: {rss0 // 1024} MiB at start, {rss_created // 1024} MiB after creating, "
              f"{rss // 1024} MiB idle after writing to every shard")
        print(f"open descriptors: {fds} (files in the data dir: {files})")
    finally:
        srv.stop()
        subprocess.run(["rm", "-rf", str(data)])


if __name__ == "__main__":
    main()
