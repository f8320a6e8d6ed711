"""Records over 1 MiB under AWS's limits (`--limits aws`), as AWS's large-records documentation
describes them: a shard admits a record up to the stream's MaxRecordSizeInKiB (10 MiB at most) by
bursting beyond its 1 MiB/s, then pays the burst back at 1 MiB/s before it takes more writes.
Regression: the write bucket held one second of rate, so after UpdateMaxRecordSize a 1 MiB + 1
byte PutRecord was throttled forever.
"""

import os
import time

import pytest

from kutil import MAX_HASH, expect_client_error, make_client, shard_id, stream_arn, unique_name, wait_status

AWS = ["--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", "0", "--limits", "aws"]
MIB = 1024 * 1024
# ExplicitHashKeys that pin a record to shard 0 or 1 of a two-shard stream.
SHARD0, SHARD1 = "0", str(MAX_HASH)


@pytest.fixture
def k(server_factory):
    srv = server_factory(ephemeral=True, args=AWS)
    return make_client(srv.endpoint, timeout=120)


def read_shard(k, name, sid, want):
    """The first `want` records of a shard (GetRecords is throttled for a while after a large
    response: 2 MiB/s per shard)."""
    it = k.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out, deadline = [], time.monotonic() + 20
    while len(out) < want:
        assert time.monotonic() < deadline, f"read {len(out)} of {want} records"
        try:
            r = k.get_records(ShardIterator=it)
        except k.exceptions.ProvisionedThroughputExceededException:
            time.sleep(0.25)
            continue
        out += r["Records"]
        it = r["NextShardIterator"]
    return out


def test_just_over_1_mib_after_update_max_record_size(k):
    name = unique_name("big")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    k.update_max_record_size(StreamARN=stream_arn(name), MaxRecordSizeInKiB=2048)
    data = os.urandom(MIB + 1 - 1)  # data + the 1-byte partition key: 1 MiB + 1
    first = k.put_record(StreamName=name, PartitionKey="a", Data=data)
    # The burst is paid back at 1 MiB/s: the next large record waits for the bucket to refill.
    t0 = time.monotonic()
    expect_client_error(k.put_record, "ProvisionedThroughputExceededException", StreamName=name,
                        PartitionKey="a", Data=data)
    while True:
        try:
            second = k.put_record(StreamName=name, PartitionKey="a", Data=data)
            break
        except k.exceptions.ProvisionedThroughputExceededException:
            assert time.monotonic() - t0 < 5, "a 1 MiB + 1 record was still refused after 5 s"
            time.sleep(0.05)
    waited = time.monotonic() - t0
    assert 0.5 < waited < 3.0, f"paid back in {waited:.2f} s, expected about 1 s"
    got = read_shard(k, name, shard_id(0), 2)
    assert [r["SequenceNumber"] for r in got] == [first["SequenceNumber"], second["SequenceNumber"]]
    assert all(r["Data"] == data for r in got)


def test_10_mib_records_by_put_record_and_put_records(k):
    name = unique_name("huge")
    k.create_stream(StreamName=name, ShardCount=2, MaxRecordSizeInKiB=10240)
    wait_status(k, name)
    a = os.urandom(10 * MIB - 1)
    b = os.urandom(10 * MIB - 1)
    one = k.put_record(StreamName=name, PartitionKey="a", ExplicitHashKey=SHARD0, Data=a)
    assert one["ShardId"] == shard_id(0)
    # Shard 0 is 9 MiB in debt now: even a one-byte record waits (about 9 s).
    expect_client_error(k.put_record, "ProvisionedThroughputExceededException", StreamName=name,
                        PartitionKey="a", ExplicitHashKey=SHARD0, Data=b"x")
    many = k.put_records(StreamName=name, Records=[{"PartitionKey": "b", "ExplicitHashKey": SHARD1, "Data": b}])
    assert many["FailedRecordCount"] == 0
    assert many["Records"][0]["ShardId"] == shard_id(1)
    again = k.put_records(StreamName=name, Records=[{"PartitionKey": "b", "ExplicitHashKey": SHARD1, "Data": b"y"}])
    assert again["FailedRecordCount"] == 1
    assert again["Records"][0]["ErrorCode"] == "ProvisionedThroughputExceededException"
    got0 = read_shard(k, name, shard_id(0), 1)
    assert [(r["SequenceNumber"], r["Data"] == a) for r in got0] == [(one["SequenceNumber"], True)]
    got1 = read_shard(k, name, shard_id(1), 1)
    assert [(r["SequenceNumber"], r["Data"] == b) for r in got1] == [(many["Records"][0]["SequenceNumber"], True)]


def test_records_over_the_stream_limit_are_still_refused(k):
    name = unique_name("lim")
    k.create_stream(StreamName=name, ShardCount=1, MaxRecordSizeInKiB=2048)
    wait_status(k, name)
    expect_client_error(k.put_record, "ValidationException", StreamName=name, PartitionKey="a",
                        Data=os.urandom(2 * MIB + 1))
