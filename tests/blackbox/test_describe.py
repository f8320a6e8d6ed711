"""DescribeStream / DescribeStreamSummary."""

import time

import pytest

from kutil import (
    ACCOUNT,
    NAME_PATTERN,
    assert_validation,
    expect_client_error,
    not_found_msg,
    shard_id,
    stream_arn,
    unique_name,
    v_max,
    v_max_len,
    v_min,
    v_min_len,
    v_pattern,
)

SUMMARY_ALLOWED = {
    "StreamName",
    "StreamARN",
    "StreamStatus",
    "StreamModeDetails",
    "RetentionPeriodHours",
    "StreamCreationTimestamp",
    "EnhancedMonitoring",
    "EncryptionType",
    "KeyId",
    "OpenShardCount",
    "ConsumerCount",
    "WarmThroughput",
    "MaxRecordSizeInKiB",
    "ChannelCount",
    "RecordDistributionStrategy",
}


def test_describe_stream_by_name_and_arn_agree(kinesis, make_stream):
    name = make_stream(2)
    by_name = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    by_arn = kinesis.describe_stream(StreamARN=stream_arn(name))["StreamDescription"]
    both = kinesis.describe_stream(StreamName=name, StreamARN=stream_arn(name))["StreamDescription"]
    assert by_name == by_arn == both


def test_describe_stream_raw_shape(raw, make_stream):
    name = make_stream(1)
    r = raw.call("DescribeStream", {"StreamName": name})
    assert r.status == 200
    d = r.json["StreamDescription"]
    assert set(r.json) == {"StreamDescription"}
    required = {
        "StreamName",
        "StreamARN",
        "StreamStatus",
        "Shards",
        "HasMoreShards",
        "RetentionPeriodHours",
        "StreamCreationTimestamp",
        "EnhancedMonitoring",
    }
    assert required <= set(d)
    assert "StreamId" not in d
    # awsJson timestamps are epoch seconds as JSON numbers
    assert isinstance(d["StreamCreationTimestamp"], (int, float))
    assert abs(d["StreamCreationTimestamp"] - time.time()) < 600
    s = d["Shards"][0]
    assert isinstance(s["HashKeyRange"]["StartingHashKey"], str)
    assert isinstance(s["SequenceNumberRange"]["StartingSequenceNumber"], str)


def test_describe_stream_pagination(kinesis, make_stream):
    name = make_stream(5)
    d = kinesis.describe_stream(StreamName=name, Limit=2)["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == [shard_id(0), shard_id(1)]
    assert d["HasMoreShards"] is True
    d = kinesis.describe_stream(StreamName=name, Limit=2, ExclusiveStartShardId=shard_id(1))["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == [shard_id(2), shard_id(3)]
    assert d["HasMoreShards"] is True
    d = kinesis.describe_stream(StreamName=name, Limit=2, ExclusiveStartShardId=shard_id(3))["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == [shard_id(4)]
    assert d["HasMoreShards"] is False
    d = kinesis.describe_stream(StreamName=name, ExclusiveStartShardId=shard_id(4))["StreamDescription"]
    assert d["Shards"] == []
    assert d["HasMoreShards"] is False
    d = kinesis.describe_stream(StreamName=name, Limit=10000)["StreamDescription"]
    assert len(d["Shards"]) == 5 and d["HasMoreShards"] is False


def test_describe_stream_paginator(kinesis, make_stream):
    name = make_stream(5)
    pages = list(kinesis.get_paginator("describe_stream").paginate(StreamName=name, PaginationConfig={"PageSize": 2}))
    ids = [s["ShardId"] for p in pages for s in p["StreamDescription"]["Shards"]]
    assert ids == [shard_id(i) for i in range(5)]


def test_describe_stream_not_found(kinesis):
    name = unique_name("nf")
    expect_client_error(kinesis.describe_stream, "ResourceNotFoundException", not_found_msg(name), StreamName=name)
    expect_client_error(
        kinesis.describe_stream, "ResourceNotFoundException", not_found_msg(name), StreamARN=stream_arn(name)
    )


def test_describe_stream_validation_empty(raw):
    r = raw.call("DescribeStream", {"StreamName": "", "Limit": 0, "ExclusiveStartShardId": ""})
    assert_validation(
        r,
        [
            v_min("0", "limit", 1),
            v_pattern("", "exclusiveStartShardId", NAME_PATTERN),
            v_min_len("", "exclusiveStartShardId"),
            v_pattern("", "streamName", NAME_PATTERN),
            v_min_len("", "streamName"),
        ],
    )


def test_describe_stream_validation_long(raw):
    name = "a" * 129
    r = raw.call("DescribeStream", {"StreamName": name, "Limit": 100000, "ExclusiveStartShardId": name})
    assert_validation(
        r,
        [
            v_max("100000", "limit", 10000),
            v_max_len(name, "exclusiveStartShardId", 128),
            v_max_len(name, "streamName", 128),
        ],
    )


def test_describe_stream_validation_bad_arn(raw):
    arn = "arn:aws:s3:::bucket"
    r = raw.call("DescribeStream", {"StreamARN": arn})
    assert_validation(r, [v_pattern(arn, "streamARN", "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+")])


def test_describe_stream_without_identifier(raw):
    r = raw.call("DescribeStream", {})
    assert r.status == 400, r
    assert r.error_type in {"InvalidArgumentException", "ValidationException"}, r


# ------------------------------------------------------------- DescribeStreamSummary


def test_describe_stream_summary_shape(kinesis, make_stream):
    before = time.time()
    name = make_stream(3)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert set(s) <= SUMMARY_ALLOWED, set(s) - SUMMARY_ALLOWED
    assert "StreamId" not in s
    assert s["StreamName"] == name
    assert s["StreamARN"] == stream_arn(name)
    assert s["StreamStatus"] == "ACTIVE"
    assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert s["RetentionPeriodHours"] == 24
    assert s["EncryptionType"] == "NONE"
    assert s["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert s["OpenShardCount"] == 3
    assert s["ConsumerCount"] == 0
    assert s.get("MaxRecordSizeInKiB", 1024) == 1024
    assert abs(s["StreamCreationTimestamp"].timestamp() - before) < 10


def test_describe_stream_summary_by_arn(kinesis, make_stream):
    name = make_stream(1)
    a = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    b = kinesis.describe_stream_summary(StreamARN=stream_arn(name))["StreamDescriptionSummary"]
    assert a == b


def test_describe_stream_summary_raw_has_no_stream_id(raw, make_stream):
    name = make_stream(1)
    r = raw.call("DescribeStreamSummary", {"StreamName": name})
    assert r.status == 200
    assert "StreamId" not in r.text


def test_describe_stream_summary_not_found(kinesis):
    name = unique_name("nf")
    expect_client_error(
        kinesis.describe_stream_summary, "ResourceNotFoundException", not_found_msg(name), StreamName=name
    )


def test_describe_stream_summary_other_account_arn_not_found(kinesis, make_stream):
    name = make_stream(1)
    arn = f"arn:aws:kinesis:us-east-1:123456789012:stream/{name}"
    e = expect_client_error(kinesis.describe_stream_summary, "ResourceNotFoundException", StreamARN=arn)
    assert name in e.response["Error"]["Message"]


def test_describe_stream_summary_validation(raw):
    assert_validation(
        raw.call("DescribeStreamSummary", {"StreamName": ""}),
        [v_pattern("", "streamName", NAME_PATTERN), v_min_len("", "streamName")],
    )
    name = "a" * 129
    assert_validation(raw.call("DescribeStreamSummary", {"StreamName": name}), [v_max_len(name, "streamName", 128)])


@pytest.mark.parametrize("op", ["DescribeStream", "DescribeStreamSummary", "ListTagsForStream"])
def test_stream_name_and_arn_mismatch_rejected(raw, make_stream, op):
    a = make_stream(1)
    b = make_stream(1)
    r = raw.call(op, {"StreamName": a, "StreamARN": stream_arn(b)})
    assert r.status == 400, r
    assert r.error_type in {"InvalidArgumentException", "ValidationException", "ResourceNotFoundException"}, r


def test_account_in_not_found_message_is_configured_account(kinesis):
    name = unique_name("acct")
    e = expect_client_error(kinesis.describe_stream_summary, "ResourceNotFoundException", StreamName=name)
    assert f"under account {ACCOUNT}" in e.response["Error"]["Message"]
