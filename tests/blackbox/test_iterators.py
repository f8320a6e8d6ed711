"""GetShardIterator / GetRecords."""

import base64
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from kutil import (
    ACCOUNT,
    NAME_PATTERN,
    SEQ_PATTERN,
    ITERATOR_TYPES,
    assert_error,
    assert_validation,
    expect_client_error,
    read_shard,
    shard_id,
    stream_arn,
    unique_name,
    v_enum,
    v_max,
    v_max_len,
    v_min,
    v_min_len,
    v_null,
    v_pattern,
    v_pattern_any,
    wait_gone,
)

MUST_EITHER = (
    "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or "
    "(2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. "
)


def put_n(kinesis, name, n, shard=0, shards=1, prefix=b"r"):
    """Put n records on one shard (via ExplicitHashKey); returns the put responses."""
    hk = str(shard * (2**128 // shards))
    return [
        kinesis.put_record(StreamName=name, PartitionKey=f"pk{i}", Data=prefix + b"%d" % i, ExplicitHashKey=hk)
        for i in range(n)
    ]


def iterator(kinesis, name, sid=shard_id(0), itype="TRIM_HORIZON", **kw):
    return kinesis.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType=itype, **kw)["ShardIterator"]


# ------------------------------------------------------------------ GetShardIterator


@pytest.mark.parametrize("itype", ["TRIM_HORIZON", "LATEST"])
def test_get_shard_iterator_shape(raw, make_stream, itype):
    name = make_stream(1)
    r = raw.call("GetShardIterator", {"StreamName": name, "ShardId": shard_id(0), "ShardIteratorType": itype})
    assert r.status == 200, r
    assert list(r.json) == ["ShardIterator"]
    assert 1 <= len(r.json["ShardIterator"]) <= 512


def test_get_shard_iterator_all_types(kinesis, make_stream):
    name = make_stream(1)
    put = put_n(kinesis, name, 1)
    seq = put[0]["SequenceNumber"]
    for itype, kw in [
        ("TRIM_HORIZON", {}),
        ("LATEST", {}),
        ("AT_SEQUENCE_NUMBER", {"StartingSequenceNumber": seq}),
        ("AFTER_SEQUENCE_NUMBER", {"StartingSequenceNumber": seq}),
        ("AT_TIMESTAMP", {"Timestamp": datetime.now(timezone.utc) - timedelta(seconds=30)}),
    ]:
        it = iterator(kinesis, name, itype=itype, **kw)
        assert isinstance(it, str) and 1 <= len(it) <= 512


def test_get_shard_iterator_by_arn(kinesis, make_stream):
    name = make_stream(1)
    put_n(kinesis, name, 2)
    it = kinesis.get_shard_iterator(
        StreamARN=stream_arn(name), ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert len(kinesis.get_records(ShardIterator=it)["Records"]) == 2


@pytest.mark.parametrize("sid", ["shardId-0", "shardId-000000000001", "shardId-1", "shard-1"])
def test_get_shard_iterator_shard_id_forms(kinesis, make_stream, sid):
    name = make_stream(2)
    kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"one", ExplicitHashKey=str(2**127))
    kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"zero", ExplicitHashKey="0")
    it = iterator(kinesis, name, sid=sid)
    recs = kinesis.get_records(ShardIterator=it)["Records"]
    want = b"zero" if sid.endswith("-0") else b"one"
    assert [r["Data"] for r in recs] == [want]


def test_get_shard_iterator_shard_not_in_stream(kinesis, make_stream):
    name = make_stream(3)
    expect_client_error(
        kinesis.get_shard_iterator,
        "ResourceNotFoundException",
        f"Shard shardId-000000000005 in stream {name} under account {ACCOUNT} does not exist",
        StreamName=name,
        ShardId="shardId-5",
        ShardIteratorType="LATEST",
    )


def test_get_shard_iterator_unknown_stream(kinesis):
    name = unique_name("nf")
    expect_client_error(
        kinesis.get_shard_iterator,
        "ResourceNotFoundException",
        f"Shard shardId-000000000000 in stream {name} under account {ACCOUNT} does not exist",
        StreamName=name,
        ShardId="shardId-000000000000",
        ShardIteratorType="LATEST",
    )


@pytest.mark.parametrize("itype", ["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"])
def test_get_shard_iterator_missing_sequence(kinesis, make_stream, itype):
    name = make_stream(1)
    expect_client_error(
        kinesis.get_shard_iterator,
        "InvalidArgumentException",
        MUST_EITHER + f"Request specified {itype} and no StartingSequenceNumber.",
        StreamName=name,
        ShardId=shard_id(0),
        ShardIteratorType=itype,
    )


@pytest.mark.parametrize("itype", ["TRIM_HORIZON", "LATEST"])
def test_get_shard_iterator_unexpected_sequence(kinesis, make_stream, itype):
    name = make_stream(1)
    seq = put_n(kinesis, name, 1)[0]["SequenceNumber"]
    expect_client_error(
        kinesis.get_shard_iterator,
        "InvalidArgumentException",
        MUST_EITHER + f"Request specified {itype} and also a StartingSequenceNumber.",
        StreamName=name,
        ShardId=shard_id(0),
        ShardIteratorType=itype,
        StartingSequenceNumber=seq,
    )


def test_get_shard_iterator_at_timestamp_missing(kinesis, make_stream):
    name = make_stream(1)
    expect_client_error(
        kinesis.get_shard_iterator,
        "InvalidArgumentException",
        "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. "
        "Current request has no timestamp parameter.",
        StreamName=name,
        ShardId=shard_id(0),
        ShardIteratorType="AT_TIMESTAMP",
    )


def test_get_shard_iterator_timestamp_in_future(raw, make_stream):
    name = make_stream(1)
    future = int(time.time()) + 3600
    r = raw.call(
        "GetShardIterator",
        {"StreamName": name, "ShardId": shard_id(0), "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": future},
    )
    assert_error(
        r,
        "InvalidArgumentException",
        re.compile(
            r"^The timestampInMillis parameter cannot be greater than the currentTimestampInMillis\. "
            rf"timestampInMillis: {future * 1000}, currentTimestampInMillis: \d+$"
        ),
    )


def test_get_shard_iterator_sequence_from_other_shard(kinesis, make_stream):
    name = make_stream(2)
    seq = kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"x", ExplicitHashKey=str(2**127))[
        "SequenceNumber"
    ]
    expect_client_error(
        kinesis.get_shard_iterator,
        "InvalidArgumentException",
        "Invalid StartingSequenceNumber. It encodes shardId-000000000001, "
        "while it was used in a call to a shard with shardId-000000000000",
        StreamName=name,
        ShardId=shard_id(0),
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=seq,
    )


def test_get_shard_iterator_sequence_from_other_stream(kinesis, make_stream):
    a = make_stream(1)
    seq = kinesis.put_record(StreamName=a, PartitionKey="a", Data=b"x")["SequenceNumber"]
    time.sleep(1.1)
    b = make_stream(1)
    expect_client_error(
        kinesis.get_shard_iterator,
        "InvalidArgumentException",
        f"StartingSequenceNumber {seq} used in GetShardIterator on shard shardId-000000000000 in stream {b} "
        f"under account {ACCOUNT} is invalid because it did not come from this stream.",
        StreamName=b,
        ShardId=shard_id(0),
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=seq,
    )


def test_get_shard_iterator_garbage_sequence(kinesis, make_stream):
    name = make_stream(1)
    seq = str(int("13bb2cc3d80000000000000000000000", 16))
    expect_client_error(
        kinesis.get_shard_iterator,
        "InvalidArgumentException",
        f"StartingSequenceNumber {seq} used in GetShardIterator on shard shardId-000000000000 in stream {name} "
        f"under account {ACCOUNT} is invalid.",
        StreamName=name,
        ShardId=shard_id(0),
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=seq,
    )


def test_get_shard_iterator_validation_missing(raw):
    assert_validation(raw.call("GetShardIterator", {}), [v_null("shardId"), v_null("shardIteratorType")])


def test_get_shard_iterator_validation_empty(raw):
    r = raw.call(
        "GetShardIterator", {"StreamName": "", "ShardIteratorType": "", "ShardId": "", "StartingSequenceNumber": ""}
    )
    assert_validation(
        r,
        [
            v_pattern("", "shardId", NAME_PATTERN),
            v_min_len("", "shardId"),
            v_enum("", "shardIteratorType", ITERATOR_TYPES),
            v_pattern_any("", "startingSequenceNumber", SEQ_PATTERN),
            v_pattern("", "streamName", NAME_PATTERN),
            v_min_len("", "streamName"),
        ],
    )


def test_get_shard_iterator_validation_long(raw):
    name = "a" * 129
    r = raw.call("GetShardIterator", {"StreamName": name, "ShardId": name, "ShardIteratorType": "LATEST"})
    assert_validation(r, [v_max_len(name, "shardId", 128), v_max_len(name, "streamName", 128)])


def test_get_shard_iterator_validation_bad_type(raw):
    r = raw.call("GetShardIterator", {"StreamName": "x", "ShardId": "shardId-0", "ShardIteratorType": "OLDEST"})
    assert_validation(r, [v_enum("OLDEST", "shardIteratorType", ITERATOR_TYPES)])


# ------------------------------------------------------------------ GetRecords


def test_get_records_shape(raw, kinesis, make_stream):
    name = make_stream(1)
    kinesis.put_record(StreamName=name, PartitionKey="pk", Data=b"hello")
    it = iterator(kinesis, name)
    r = raw.call("GetRecords", {"ShardIterator": it})
    assert r.status == 200, r
    body = r.json
    assert set(body) <= {"Records", "NextShardIterator", "MillisBehindLatest", "ChildShards"}
    assert body.get("ChildShards", []) == []
    assert isinstance(body["MillisBehindLatest"], int) and body["MillisBehindLatest"] >= 0
    assert body["NextShardIterator"]
    (rec,) = body["Records"]
    assert set(rec) <= {"SequenceNumber", "ApproximateArrivalTimestamp", "Data", "PartitionKey", "EncryptionType"}
    assert base64.b64decode(rec["Data"]) == b"hello"
    assert rec["PartitionKey"] == "pk"
    assert isinstance(rec["ApproximateArrivalTimestamp"], (int, float))
    assert abs(rec["ApproximateArrivalTimestamp"] - time.time()) < 60
    assert rec.get("EncryptionType", "NONE") == "NONE"


def test_get_records_empty_stream(kinesis, make_stream):
    name = make_stream(1)
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name))
    assert r["Records"] == []
    assert r["NextShardIterator"]
    assert r["MillisBehindLatest"] == 0


def test_trim_horizon_reads_everything_in_order(kinesis, make_stream):
    name = make_stream(1)
    puts = put_n(kinesis, name, 25)
    recs = read_shard(kinesis, name, shard_id(0))
    assert [r["SequenceNumber"] for r in recs] == [p["SequenceNumber"] for p in puts]
    assert [r["Data"] for r in recs] == [b"r%d" % i for i in range(25)]
    assert [r["PartitionKey"] for r in recs] == [f"pk{i}" for i in range(25)]
    seqs = [int(r["SequenceNumber"]) for r in recs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_latest_sees_only_new_records(kinesis, make_stream):
    name = make_stream(1)
    put_n(kinesis, name, 3, prefix=b"old")
    it = iterator(kinesis, name, itype="LATEST")
    r = kinesis.get_records(ShardIterator=it)
    assert r["Records"] == []
    nxt = r["NextShardIterator"]
    puts = put_n(kinesis, name, 2, prefix=b"new")
    r1 = kinesis.get_records(ShardIterator=it)
    r2 = kinesis.get_records(ShardIterator=nxt)
    assert [x["Data"] for x in r1["Records"]] == [b"new0", b"new1"]
    assert [x["SequenceNumber"] for x in r2["Records"]] == [p["SequenceNumber"] for p in puts]


def test_at_and_after_sequence_number(kinesis, make_stream):
    name = make_stream(1)
    puts = put_n(kinesis, name, 5)
    seq = puts[2]["SequenceNumber"]
    at = kinesis.get_records(ShardIterator=iterator(kinesis, name, itype="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seq))
    after = kinesis.get_records(
        ShardIterator=iterator(kinesis, name, itype="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seq)
    )
    assert [r["Data"] for r in at["Records"]] == [b"r2", b"r3", b"r4"]
    assert [r["Data"] for r in after["Records"]] == [b"r3", b"r4"]
    last = puts[-1]["SequenceNumber"]
    after_last = kinesis.get_records(
        ShardIterator=iterator(kinesis, name, itype="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=last)
    )
    assert after_last["Records"] == []


def test_at_timestamp(kinesis, make_stream):
    name = make_stream(1)
    put_n(kinesis, name, 3, prefix=b"before")
    time.sleep(1.2)
    mark = datetime.now(timezone.utc)
    time.sleep(0.1)
    puts = put_n(kinesis, name, 3, prefix=b"after")
    recs = kinesis.get_records(ShardIterator=iterator(kinesis, name, itype="AT_TIMESTAMP", Timestamp=mark))["Records"]
    assert [r["SequenceNumber"] for r in recs] == [p["SequenceNumber"] for p in puts]
    for r in recs:
        assert r["ApproximateArrivalTimestamp"] >= mark - timedelta(milliseconds=1)


def test_at_timestamp_before_everything_is_trim_horizon(kinesis, make_stream):
    name = make_stream(1)
    puts = put_n(kinesis, name, 4)
    old = datetime.now(timezone.utc) - timedelta(days=30)
    recs = kinesis.get_records(ShardIterator=iterator(kinesis, name, itype="AT_TIMESTAMP", Timestamp=old))["Records"]
    assert [r["SequenceNumber"] for r in recs] == [p["SequenceNumber"] for p in puts]


def test_arrival_timestamps(kinesis, make_stream):
    name = make_stream(1)
    t0 = time.time()
    put_n(kinesis, name, 3)
    t1 = time.time()
    for r in read_shard(kinesis, name, shard_id(0)):
        ts = r["ApproximateArrivalTimestamp"].timestamp()
        assert t0 - 1 <= ts <= t1 + 1


def test_limit_and_next_iterator(kinesis, make_stream):
    name = make_stream(1)
    puts = put_n(kinesis, name, 5)
    seqs = [p["SequenceNumber"] for p in puts]
    it = iterator(kinesis, name, itype="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[1])
    r = kinesis.get_records(ShardIterator=it, Limit=2)
    assert [x["SequenceNumber"] for x in r["Records"]] == seqs[1:3]
    nxt = r["NextShardIterator"]
    r = kinesis.get_records(ShardIterator=nxt, Limit=3)
    assert [x["SequenceNumber"] for x in r["Records"]] == seqs[3:5]
    # iterators are reusable: the same iterator reads the same position again
    r = kinesis.get_records(ShardIterator=nxt, Limit=1)
    assert [x["SequenceNumber"] for x in r["Records"]] == seqs[3:4]
    r = kinesis.get_records(ShardIterator=nxt)
    assert [x["SequenceNumber"] for x in r["Records"]] == seqs[3:5]
    assert r["MillisBehindLatest"] == 0


def test_limit_large_read(kinesis, make_stream):
    name = make_stream(1)
    entries = [{"PartitionKey": "p", "Data": b"%d" % i} for i in range(500)]
    for _ in range(3):
        kinesis.put_records(StreamName=name, Records=entries)
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name), Limit=10000)
    assert len(r["Records"]) == 1500
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name), Limit=1)
    assert len(r["Records"]) == 1
    assert r["MillisBehindLatest"] >= 0


def test_next_iterator_chain_until_caught_up(kinesis, make_stream):
    name = make_stream(1)
    puts = put_n(kinesis, name, 7)
    it = iterator(kinesis, name)
    got = []
    for _ in range(20):
        r = kinesis.get_records(ShardIterator=it, Limit=3)
        got += r["Records"]
        it = r["NextShardIterator"]
        if not r["Records"]:
            break
    assert [g["SequenceNumber"] for g in got] == [p["SequenceNumber"] for p in puts]
    assert r["MillisBehindLatest"] == 0


def test_tampered_iterator(kinesis, make_stream):
    name = make_stream(1)
    it = iterator(kinesis, name)
    flipped = it[:-6] + ("A" if it[-6] != "A" else "B") + it[-5:]
    for bad in [flipped, "a" * 100, unique_name("it"), it[: len(it) // 2]]:
        expect_client_error(kinesis.get_records, "InvalidArgumentException", "Invalid ShardIterator.", ShardIterator=bad)


def test_get_records_validation(raw):
    assert_validation(raw.call("GetRecords", {}), [v_null("shardIterator")])
    assert_validation(
        raw.call("GetRecords", {"ShardIterator": "", "Limit": 0}),
        [v_min("0", "limit", 1), v_min_len("", "shardIterator")],
    )
    long_it = "a" * 513
    assert_validation(
        raw.call("GetRecords", {"ShardIterator": long_it, "Limit": 100000}),
        [v_max("100000", "limit", 10000), v_max_len(long_it, "shardIterator", 512)],
    )


def test_iterator_of_deleted_stream(kinesis, make_stream):
    name = make_stream(2)
    it0 = iterator(kinesis, name, sid=shard_id(0), itype="LATEST")
    it1 = iterator(kinesis, name, sid=shard_id(1), itype="LATEST")
    kinesis.delete_stream(StreamName=name)
    wait_gone(kinesis, name)
    for sid, it in [(0, it0), (1, it1)]:
        expect_client_error(
            kinesis.get_records,
            "ResourceNotFoundException",
            f"Shard {shard_id(sid)} in stream {name} under account {ACCOUNT} does not exist",
            ShardIterator=it,
        )


def test_iterator_does_not_read_recreated_stream(kinesis, make_stream):
    name = make_stream(2)
    old_its = [iterator(kinesis, name, sid=shard_id(i)) for i in range(2)]
    kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"old-incarnation")
    kinesis.delete_stream(StreamName=name)
    wait_gone(kinesis, name)
    make_stream(2, name=name)
    for i in range(2):
        kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"new-incarnation", ExplicitHashKey=str(i * 2**127))
    for it in old_its:
        try:
            r = kinesis.get_records(ShardIterator=it)
        except Exception as e:  # noqa: BLE001 - any AWS error is acceptable, reading is not
            assert hasattr(e, "response") and e.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 500), e
        else:
            raise AssertionError(f"old-incarnation iterator read the recreated stream: {r['Records']}")
    # the new incarnation itself is readable
    assert [r["Data"] for r in read_shard(kinesis, name, shard_id(0))] == [b"new-incarnation"]


def test_millis_behind_latest(kinesis, make_stream):
    name = make_stream(1)
    kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"first")
    time.sleep(1.5)
    kinesis.put_record(StreamName=name, PartitionKey="a", Data=b"second")
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name), Limit=1)
    assert [x["Data"] for x in r["Records"]] == [b"first"]
    assert 1000 <= r["MillisBehindLatest"] <= 60000, r["MillisBehindLatest"]
    r = kinesis.get_records(ShardIterator=r["NextShardIterator"])
    assert [x["Data"] for x in r["Records"]] == [b"second"]
    assert r["MillisBehindLatest"] == 0
