"""Disk full (ENOSPC) at the process level: the data dir lives on a small tmpfs that fills up.

Puts must fail with a clear InternalFailure naming the cause, nothing acknowledged may be lost
or damaged, and writes must resume once space returns — without a restart, and after one.
"""

import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from kutil import list_all_shards, read_shard, unique_name, wait_status

DISK_MB = 24
RECORD = 32 * 1024  # 32 KiB records fill the disk in a few dozen calls


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"needs root to mount a small tmpfs: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _payload(i):
    head = f"rec-{i:06d}-".encode()
    return head + bytes([i % 251]) * (RECORD - len(head))


def _read_all(client, name):
    got = {}
    for sh in list_all_shards(client, name):
        recs = read_shard(client, name, sh["ShardId"], limit=200)
        got[sh["ShardId"]] = [(r["SequenceNumber"], bytes(r["Data"])) for r in recs]
    return got


def _check(got, acked):
    """Every acknowledged record exactly once, in put order per shard; nothing else but acked."""
    for sid, recs in got.items():
        seqs = [int(s) for s, _ in recs]
        assert seqs == sorted(seqs), f"{sid}: out of order"
        assert len(set(seqs)) == len(seqs), f"{sid}: duplicate sequence numbers"
    stored = {(sid, s): d for sid, recs in got.items() for s, d in recs}
    for (sid, seq), data in acked.items():
        assert (sid, seq) in stored, f"acknowledged record {seq} on {sid} is missing"
        assert stored[(sid, seq)] == data, f"acknowledged record {seq} on {sid} is damaged"
    # Nothing unacknowledged became visible (failed entries were never stored).
    assert len(stored) == len(acked), f"{len(stored)} stored, {len(acked)} acknowledged"


def test_disk_full_fails_clearly_and_recovers(server_factory, small_disk):
    srv = server_factory(data_dir=small_disk, args=["--create-stream-ms", "0", "--delete-stream-ms", "0"])
    client = srv.client()
    name = unique_name("full")
    client.create_stream(StreamName=name, ShardCount=2)
    wait_status(client, name)

    # A filler file takes part of the disk so that space can be given back later.
    filler = small_disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * (6 * 1024 * 1024))

    acked = {}
    failures = []
    i = 0
    for _ in range(400):
        entries = [{"Data": _payload(i + k), "PartitionKey": f"pk-{i + k}"} for k in range(8)]
        resp = client.put_records(StreamName=name, Records=entries)
        for k, r in enumerate(resp["Records"]):
            if "SequenceNumber" in r:
                acked[(r["ShardId"], r["SequenceNumber"])] = entries[k]["Data"]
            else:
                failures.append(r)
        i += 8
        if failures:
            break
    assert failures, f"the {DISK_MB} MiB disk never filled after {i} records"
    assert acked, "no put succeeded before the disk filled"
    f0 = failures[0]
    assert f0["ErrorCode"] == "InternalFailure", f0
    assert "No space left on device" in f0["ErrorMessage"], f0["ErrorMessage"]
    assert "full" in f0["ErrorMessage"], f0["ErrorMessage"]

    # A single PutRecord also fails clearly (InternalFailure, HTTP 500) while the disk is full.
    # (A smaller write may still fit in what the failed batch left, so keep going until one fails.)
    err = None
    for j in range(64):
        data = _payload(900_000 + j)
        try:
            r = client.put_record(StreamName=name, Data=data, PartitionKey=f"single-{j}")
        except ClientError as e:
            err = e.response
            break
        acked[(r["ShardId"], r["SequenceNumber"])] = data
    assert err is not None, "PutRecord kept succeeding on a full disk"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 500, err
    assert err["Error"]["Code"] == "InternalFailureException", err
    assert "No space left on device" in err["Error"]["Message"], err

    # Control-plane writes (metadata) on a full disk fail cleanly or succeed; none may break the server.
    for j in range(3):
        try:
            client.create_stream(StreamName=f"{name}-more-{j}", ShardCount=1)
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 500, 503), e.response
    assert client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"

    # Everything acknowledged is readable, intact and exactly once while the disk is still full.
    _check(_read_all(client, name), acked)

    # Space returns: writes resume without a restart.
    os.unlink(filler)
    resumed = 0
    for j in range(20):
        data = _payload(500_000 + j)
        r = client.put_record(StreamName=name, Data=data, PartitionKey=f"again-{j}")
        acked[(r["ShardId"], r["SequenceNumber"])] = data
        resumed += 1
    assert resumed == 20
    _check(_read_all(client, name), acked)

    # And after a restart, the same set: nothing lost, nothing damaged, nothing doubled.
    assert srv.stop() == 0
    srv.start()
    client = srv.client()
    _check(_read_all(client, name), acked)
    assert "panicked" not in srv.log_text()
