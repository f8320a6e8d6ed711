"""PutRecord / PutRecords: routing, sequence numbers, validation, limits."""

import random
import re
import string

import pytest
from botocore.exceptions import ClientError

from kutil import (
    ACCOUNT,
    HASH_PATTERN,
    MAX_HASH,
    NAME_PATTERN,
    SEQ_PATTERN,
    SEQ_RE,
    assert_error,
    assert_validation,
    b64,
    expect_client_error,
    md5_hash_key,
    not_found_msg,
    read_shard,
    shard_for_hash,
    shard_id,
    stream_arn,
    unique_name,
    v_max_len,
    v_min_len,
    v_null,
    v_pattern,
    v_pattern_any,
)


@pytest.fixture
def s3(make_stream):
    return make_stream(3)


def test_put_record_response_shape(raw, s3):
    r = raw.call("PutRecord", {"StreamName": s3, "PartitionKey": "a", "Data": b64(b"hello")})
    assert r.status == 200, r
    assert set(r.json) <= {"ShardId", "SequenceNumber", "EncryptionType"}
    assert SEQ_RE.match(r.json["SequenceNumber"])
    assert r.json.get("EncryptionType", "NONE") == "NONE"
    assert r.json["ShardId"] == "shardId-000000000000"  # md5('a') falls in the first third


def test_put_record_empty_data(kinesis, s3):
    r = kinesis.put_record(StreamName=s3, PartitionKey="a", Data=b"")
    assert SEQ_RE.match(r["SequenceNumber"])


def test_put_record_by_arn(kinesis, s3):
    r = kinesis.put_record(StreamARN=stream_arn(s3), PartitionKey="b", Data=b"x")
    assert r["ShardId"] == "shardId-000000000001"


def test_md5_routing(kinesis, s3):
    shards = kinesis.list_shards(StreamName=s3)["Shards"]
    rng = random.Random(1234)
    for i in range(60):
        pk = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randint(1, 40)))
        r = kinesis.put_record(StreamName=s3, PartitionKey=pk, Data=b"x")
        assert r["ShardId"] == shard_for_hash(shards, md5_hash_key(pk)), pk


def test_md5_routing_unicode_partition_key(kinesis, s3):
    shards = kinesis.list_shards(StreamName=s3)["Shards"]
    for pk in ["ü", "日本語のキー", "emoji-😀", "a" * 256]:
        r = kinesis.put_record(StreamName=s3, PartitionKey=pk, Data=b"x")
        assert r["ShardId"] == shard_for_hash(shards, md5_hash_key(pk)), pk


@pytest.mark.parametrize(
    "hash_key,expected",
    [
        (0, 0),
        (2**128 // 3 - 1, 0),
        (2**128 // 3, 1),
        (2 * (2**128 // 3) - 1, 1),
        (2 * (2**128 // 3), 2),
        (MAX_HASH, 2),
    ],
)
def test_explicit_hash_key_routing(kinesis, s3, hash_key, expected):
    # PartitionKey 'a' alone would route to shard 0; ExplicitHashKey must win.
    r = kinesis.put_record(StreamName=s3, PartitionKey="a", Data=b"x", ExplicitHashKey=str(hash_key))
    assert r["ShardId"] == shard_id(expected)


def test_explicit_hash_key_out_of_range(kinesis, s3):
    hk = str(2**128)
    expect_client_error(
        kinesis.put_record,
        "InvalidArgumentException",
        f"Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {hk}",
        StreamName=s3,
        PartitionKey="a",
        Data=b"",
        ExplicitHashKey=hk,
    )


def test_sequence_numbers_strictly_increasing_per_shard(kinesis, s3):
    last = {}
    for i in range(90):
        r = kinesis.put_record(StreamName=s3, PartitionKey=f"pk{i}", Data=b"%d" % i)
        seq = int(r["SequenceNumber"])
        assert SEQ_RE.match(r["SequenceNumber"])
        if r["ShardId"] in last:
            assert seq > last[r["ShardId"]]
        last[r["ShardId"]] = seq
    assert len(last) == 3


def test_sequence_numbers_above_shard_start(kinesis, s3):
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName=s3)["Shards"]}
    r = kinesis.put_record(StreamName=s3, PartitionKey="a", Data=b"x")
    start = int(shards[r["ShardId"]]["SequenceNumberRange"]["StartingSequenceNumber"])
    assert int(r["SequenceNumber"]) >= start


def test_sequence_number_for_ordering(kinesis, s3):
    a = kinesis.put_record(StreamName=s3, PartitionKey="k", Data=b"1")
    b = kinesis.put_record(StreamName=s3, PartitionKey="k", Data=b"2", SequenceNumberForOrdering=a["SequenceNumber"])
    c = kinesis.put_record(StreamName=s3, PartitionKey="k", Data=b"3", SequenceNumberForOrdering=b["SequenceNumber"])
    assert int(a["SequenceNumber"]) < int(b["SequenceNumber"]) < int(c["SequenceNumber"])


def test_sequence_number_for_ordering_invalid(kinesis, s3):
    # A well-formed-looking but impossible number (version nibble 0).
    seq = str(int("20000000000000000000000000000000000000000000000", 16))
    expect_client_error(
        kinesis.put_record,
        "InvalidArgumentException",
        f"ExclusiveMinimumSequenceNumber {seq} used in PutRecord on stream {s3} under account {ACCOUNT} is invalid.",
        StreamName=s3,
        PartitionKey="a",
        Data=b"",
        SequenceNumberForOrdering=seq,
    )


def test_put_record_not_found(kinesis):
    name = unique_name("nf")
    expect_client_error(
        kinesis.put_record, "ResourceNotFoundException", not_found_msg(name), StreamName=name, PartitionKey="a", Data=b""
    )


def test_put_record_validation_missing(raw):
    # Since RecordDistributionStrategy (2026) PartitionKey is optional in the model; Data is still required.
    assert_validation(raw.call("PutRecord", {}), [v_null("data")])


def test_put_record_validation_empty(raw):
    r = raw.call(
        "PutRecord",
        {"StreamName": "", "PartitionKey": "", "Data": "", "ExplicitHashKey": "", "SequenceNumberForOrdering": ""},
    )
    assert_validation(
        r,
        [
            v_pattern_any("", "sequenceNumberForOrdering", SEQ_PATTERN),
            v_min_len("", "partitionKey"),
            v_pattern_any("", "explicitHashKey", HASH_PATTERN),
            v_pattern("", "streamName", NAME_PATTERN),
            v_min_len("", "streamName"),
        ],
    )


def test_put_record_validation_long(raw):
    name, pk = "a" * 129, "a" * 257
    r = raw.call("PutRecord", {"StreamName": name, "PartitionKey": pk, "Data": "", "ExplicitHashKey": "01"})
    assert_validation(
        r,
        [
            v_max_len(pk, "partitionKey", 256),
            v_pattern_any("01", "explicitHashKey", HASH_PATTERN),
            v_max_len(name, "streamName", 128),
        ],
    )


def test_put_record_validation_data_over_10_mib(raw):
    n = 10 * 1024 * 1024 + 1
    r = raw.call("PutRecord", {"StreamName": "x", "PartitionKey": "a", "Data": b64(b"\0" * n)})
    assert_validation(
        r,
        [
            f"Value 'java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]' at 'data' failed to satisfy constraint: "
            "Member must have length less than or equal to 10485760"
        ],
    )


def test_put_record_over_stream_max_record_size(kinesis, s3):
    # Default max record size is 1 MiB counting data + partition key: 1 MiB of data plus 'a' is one byte over.
    try:
        kinesis.put_record(StreamName=s3, PartitionKey="a", Data=b"x" * (1024 * 1024))
    except ClientError as ex:
        err = ex.response["Error"]
        assert err["Code"] in {"ValidationException", "InvalidArgumentException"}, err
    else:
        raise AssertionError("1 MiB data + partition key exceeded the 1 MiB default record limit but was accepted")


def test_put_record_exactly_max_size(kinesis, s3):
    data = b"x" * (1024 * 1024 - 1)
    r = kinesis.put_record(StreamName=s3, PartitionKey="a", Data=data)
    recs = read_shard(kinesis, s3, r["ShardId"])
    assert any(rec["SequenceNumber"] == r["SequenceNumber"] and rec["Data"] == data for rec in recs)


def test_put_record_roundtrip_binary(kinesis, make_stream):
    name = make_stream(1)
    data = bytes(range(256)) * 4
    r = kinesis.put_record(StreamName=name, PartitionKey="bin", Data=data)
    recs = read_shard(kinesis, name, shard_id(0))
    assert len(recs) == 1
    assert recs[0]["Data"] == data
    assert recs[0]["PartitionKey"] == "bin"
    assert recs[0]["SequenceNumber"] == r["SequenceNumber"]


# ------------------------------------------------------------------ PutRecords


def test_put_records_mixed(kinesis, s3):
    h1 = str(MAX_HASH)
    h2 = str(2 * (2**128 // 3) - 1)
    h3 = str(2 * (2**128 // 3))
    entries = [
        {"PartitionKey": "a", "Data": b"0"},
        {"PartitionKey": "b", "Data": b"1"},
        {"PartitionKey": "e", "Data": b"2"},
        {"PartitionKey": "f", "Data": b"3"},
        {"PartitionKey": "a", "Data": b"4", "ExplicitHashKey": h1},
        {"PartitionKey": "a", "Data": b"5", "ExplicitHashKey": h2},
        {"PartitionKey": "a", "Data": b"6", "ExplicitHashKey": h3},
    ]
    r = kinesis.put_records(StreamName=s3, Records=entries)
    assert r["FailedRecordCount"] == 0
    assert r.get("EncryptionType", "NONE") == "NONE"
    assert [x["ShardId"] for x in r["Records"]] == [shard_id(i) for i in (0, 1, 2, 1, 2, 1, 2)]
    for x in r["Records"]:
        assert set(x) == {"ShardId", "SequenceNumber"}
        assert SEQ_RE.match(x["SequenceNumber"])
    # request order is preserved within a shard
    for idxs in ([1, 3, 5], [2, 4, 6]):
        seqs = [int(r["Records"][i]["SequenceNumber"]) for i in idxs]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3


def test_put_records_raw_shape(raw, s3):
    r = raw.call("PutRecords", {"StreamName": s3, "Records": [{"PartitionKey": "a", "Data": ""}]})
    assert r.status == 200, r
    assert r.json["FailedRecordCount"] == 0
    assert set(r.json) <= {"FailedRecordCount", "Records", "EncryptionType"}


def test_put_records_500(kinesis, s3):
    shards = kinesis.list_shards(StreamName=s3)["Shards"]
    entries = [{"PartitionKey": f"k{i}", "Data": b"%d" % i} for i in range(500)]
    r = kinesis.put_records(StreamName=s3, Records=entries)
    assert r["FailedRecordCount"] == 0
    assert len(r["Records"]) == 500
    for e, x in zip(entries, r["Records"]):
        assert x["ShardId"] == shard_for_hash(shards, md5_hash_key(e["PartitionKey"]))
    assert len({x["SequenceNumber"] for x in r["Records"]}) == 500


def test_put_records_501(raw, s3):
    records = [{"PartitionKey": "a", "Data": ""} for _ in range(501)]
    r = raw.call("PutRecords", {"StreamName": s3, "Records": records})
    assert_validation(
        r,
        [
            re.compile(
                # The list is echoed capped (issue 13): its first 256 characters, then its size.
                r"Value '\[.*… \(\d+ bytes\)' at 'records' failed to satisfy constraint: "
                r"Member must have length less than or equal to 500"
            )
        ],
    )


def test_put_records_empty_list(raw, s3):
    assert_validation(
        raw.call("PutRecords", {"StreamName": s3, "Records": []}),
        [v_min_len("[]", "records")],
    )


def test_put_records_validation_missing(raw):
    assert_validation(raw.call("PutRecords", {}), [v_null("records")])


def test_put_records_validation_entries(raw):
    r = raw.call("PutRecords", {"StreamName": "", "Records": [{"PartitionKey": "", "Data": "", "ExplicitHashKey": ""}]})
    assert_validation(
        r,
        [
            v_min_len("", "records.1.member.partitionKey"),
            v_pattern_any("", "records.1.member.explicitHashKey", HASH_PATTERN),
            v_pattern("", "streamName", NAME_PATTERN),
            v_min_len("", "streamName"),
        ],
    )


def test_put_records_validation_second_entry(raw, s3):
    pk = "p" * 257
    r = raw.call("PutRecords", {"StreamName": s3, "Records": [{"PartitionKey": "ok", "Data": ""}, {"PartitionKey": pk, "Data": ""}]})
    assert_validation(r, [v_max_len(pk, "records.2.member.partitionKey", 256)])


def test_put_records_validation_missing_entry_members(raw, s3):
    r = raw.call("PutRecords", {"StreamName": s3, "Records": [{}]})
    assert_validation(r, [v_null("records.1.member.data")])


def test_put_records_validation_capped_at_ten(raw):
    records = [{"PartitionKey": "", "Data": ""} for _ in range(20)]
    r = raw.call("PutRecords", {"StreamName": "x", "Records": records})
    assert_error(r, "ValidationException")
    assert r.message.startswith("10 validation errors detected: "), r.message
    assert r.message.count("failed to satisfy constraint") == 10


def test_put_records_not_found(kinesis):
    name = unique_name("nf")
    expect_client_error(
        kinesis.put_records,
        "ResourceNotFoundException",
        not_found_msg(name),
        StreamName=name,
        Records=[{"PartitionKey": "a", "Data": b""}],
    )


def test_put_records_explicit_hash_key_out_of_range(kinesis, s3):
    hk = str(2**128)
    expect_client_error(
        kinesis.put_records,
        "InvalidArgumentException",
        f"Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {hk}",
        StreamName=s3,
        Records=[{"PartitionKey": "a", "Data": b"", "ExplicitHashKey": hk}, {"PartitionKey": "a", "Data": b""}],
    )
    # nothing from the rejected request was written
    for i in range(3):
        assert read_shard(kinesis, s3, shard_id(i)) == []


def test_put_records_by_arn(kinesis, s3):
    r = kinesis.put_records(StreamARN=stream_arn(s3), Records=[{"PartitionKey": "b", "Data": b"x"}])
    assert r["Records"][0]["ShardId"] == shard_id(1)


def test_put_records_over_10_mib_total_rejected(kinesis, make_stream):
    name = make_stream(2)
    chunk = b"y" * (1000 * 1000)
    entries = [{"PartitionKey": f"k{i}", "Data": chunk} for i in range(11)]  # 11 MB > 10 MiB
    try:
        kinesis.put_records(StreamName=name, Records=entries)
    except ClientError as ex:
        assert ex.response["Error"]["Code"] in {"InvalidArgumentException", "ValidationException"}, ex.response
    else:
        raise AssertionError("a PutRecords request with 11 MB of data (> 10 MiB) was accepted")


def test_put_records_10_mib_total_accepted(kinesis, make_stream):
    name = make_stream(2)
    entries = [{"PartitionKey": f"k{i}", "Data": b"z" * (1024 * 1024 - 8)} for i in range(10)]
    r = kinesis.put_records(StreamName=name, Records=entries)
    assert len(r["Records"]) == 10
    for x in r["Records"]:
        # throttling of individual records is legitimate; nothing else is
        assert "SequenceNumber" in x or x.get("ErrorCode") == "ProvisionedThroughputExceededException", x
