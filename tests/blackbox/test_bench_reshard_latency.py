"""`kinesin bench --workload reshard-latency`, end to end against a server: it reshards the first
stream (split + merge cycles), leaves the second alone, and reports PutRecords latency on both,
during the reshards and outside them, as a table and as one `--json` line. Issue 14's
before/after comparison (`bench/compare.sh --before/--after`) depends on it, so it must not rot.
"""

import json
import subprocess

from kutil import kinesin_bin, list_all_shards, unique_name

SHARDS = 2


def test_reshard_latency_reports_both_streams_during_and_outside(server_factory):
    srv = server_factory(ephemeral=True, args=["--create-stream-ms", "0", "--update-stream-ms", "0"])
    name = unique_name("rl")
    p = subprocess.run(
        [kinesin_bin(), "bench", "--endpoint", srv.endpoint, "--workload", "reshard-latency",
         "--stream", name, "--shards", str(SHARDS), "--duration", "3s", "--connections", "4",
         "--batch", "50", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["workload"] == "reshard-latency"
    assert r["errors"] == 0 and r["failed_records"] == 0, r.get("first_error")
    assert r["records"] > 0 and r["records"] % 50 == 0
    # Whole cycles: a split, then the merge of its children.
    assert r["reshards"] >= 2 and r["reshards"] % 2 == 0
    assert 0 < r["reshard_p50_ms"] <= r["reshard_max_ms"]
    assert r["reshard_window_s"] > 0
    for stream in ("same_stream", "other_stream"):
        for when in ("during", "outside"):
            k = f"{stream}_{when}"
            # Every connection always has a call in flight, so each window overlaps some call.
            assert r[f"{k}_requests"] > 0, k
            assert 0 < r[f"{k}_p50_ms"] <= r[f"{k}_p99_ms"] <= r[f"{k}_max_ms"], k
    calls = sum(r[f"{s}_{w}_requests"] for s in ("same_stream", "other_stream") for w in ("during", "outside"))
    assert calls == r["requests"]
    for row in ("other stream, during reshard", "other stream, outside", "same stream, during reshard",
                "same stream, outside", "reshards"):
        assert row in p.stderr, row

    # The reshards happened on the first stream only: each cycle leaves the split parent, its two
    # children (closed by the merge) and the merged shard; the other stream keeps its shards.
    kinesis = srv.client()
    cycles = r["reshards"] // 2
    a = list_all_shards(kinesis, name)
    assert len(a) == SHARDS + 3 * cycles
    assert sum("EndingSequenceNumber" not in s["SequenceNumberRange"] for s in a) == SHARDS
    b = list_all_shards(kinesis, f"{name}-other")
    assert len(b) == SHARDS


def test_reshard_latency_refuses_a_record_budget(server_factory):
    srv = server_factory(ephemeral=True, args=["--create-stream-ms", "0"])
    p = subprocess.run(
        [kinesin_bin(), "bench", "--endpoint", srv.endpoint, "--workload", "reshard-latency",
         "--records", "1000"],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode != 0
    assert "--records" in p.stderr and "--duration" in p.stderr
