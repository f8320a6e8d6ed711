"""ListStreams / ListShards."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from kutil import (
    NAME_PATTERN,
    assert_error,
    assert_validation,
    expect_client_error,
    not_found_msg,
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
)

# ------------------------------------------------------------------ ListStreams


@pytest.fixture
def three_streams(make_stream):
    prefix = unique_name("ls")
    names = [make_stream(1, name=f"{prefix}-{c}") for c in "abc"]
    return names


def test_list_streams_contains_and_sorted(kinesis, three_streams):
    r = kinesis.list_streams(Limit=10000)
    names = r["StreamNames"]
    for n in three_streams:
        assert n in names
    assert names == sorted(names)
    assert r["HasMoreStreams"] is False


def test_list_streams_summaries(kinesis, three_streams):
    r = kinesis.list_streams(Limit=10000)
    assert "StreamSummaries" in r
    by_name = {s["StreamName"]: s for s in r["StreamSummaries"]}
    assert [s["StreamName"] for s in r["StreamSummaries"]] == r["StreamNames"]
    for n in three_streams:
        s = by_name[n]
        assert s["StreamARN"] == stream_arn(n)
        assert s["StreamStatus"] == "ACTIVE"
        assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        assert abs(s["StreamCreationTimestamp"].timestamp() - time.time()) < 120
        assert "StreamId" not in s


def test_list_streams_exclusive_start(kinesis, three_streams):
    a, b, c = three_streams
    r = kinesis.list_streams(ExclusiveStartStreamName=a, Limit=2)
    assert r["StreamNames"] == [b, c]
    r = kinesis.list_streams(ExclusiveStartStreamName=a, Limit=1)
    assert r["StreamNames"] == [b]
    assert r["HasMoreStreams"] is True
    # A start name that does not exist still positions lexicographically.
    r = kinesis.list_streams(ExclusiveStartStreamName=a + "-", Limit=1)
    assert r["StreamNames"] == [b]


def test_list_streams_next_token_pagination(kinesis, three_streams):
    seen = []
    r = kinesis.list_streams(Limit=1)
    assert len(r["StreamNames"]) == 1
    assert r["HasMoreStreams"] is True
    assert r["NextToken"]
    seen += r["StreamNames"]
    pages = 1
    while r["HasMoreStreams"]:
        r = kinesis.list_streams(NextToken=r["NextToken"], Limit=1)
        assert len(r["StreamNames"]) == 1
        seen += r["StreamNames"]
        pages += 1
        assert pages < 10000
    assert "NextToken" not in r
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))
    for n in three_streams:
        assert n in seen


def test_list_streams_paginator(kinesis, three_streams):
    names = []
    for page in kinesis.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 2}):
        names += page["StreamNames"]
    for n in three_streams:
        assert n in names
    assert len(names) == len(set(names))


def test_list_streams_default_limit_shape(raw, three_streams):
    r = raw.call("ListStreams", {})
    assert r.status == 200
    assert {"StreamNames", "HasMoreStreams"} <= set(r.json)
    assert set(r.json) <= {"StreamNames", "HasMoreStreams", "NextToken", "StreamSummaries"}


def test_list_streams_validation_empty(raw):
    r = raw.call("ListStreams", {"ExclusiveStartStreamName": "", "Limit": 0})
    assert_validation(
        r,
        [
            v_min("0", "limit", 1),
            v_pattern("", "exclusiveStartStreamName", NAME_PATTERN),
            v_min_len("", "exclusiveStartStreamName"),
        ],
    )


def test_list_streams_validation_long(raw):
    name = "a" * 129
    r = raw.call("ListStreams", {"ExclusiveStartStreamName": name, "Limit": 1000000})
    assert_validation(r, [v_max("1000000", "limit", 10000), v_max_len(name, "exclusiveStartStreamName", 128)])


def test_list_streams_validation_empty_next_token(raw):
    assert_validation(raw.call("ListStreams", {"NextToken": ""}), [v_min_len("", "nextToken")])


def test_list_streams_garbage_next_token(raw):
    r = raw.call("ListStreams", {"NextToken": "not-a-real-token"})
    assert r.status == 400, r
    assert r.error_type in {"InvalidArgumentException", "ExpiredNextTokenException"}, r


# ------------------------------------------------------------------ ListShards


def test_list_shards_basic(kinesis, make_stream):
    name = make_stream(3)
    r = kinesis.list_shards(StreamName=name)
    assert [s["ShardId"] for s in r["Shards"]] == [shard_id(i) for i in range(3)]
    assert "NextToken" not in r
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    assert r["Shards"] == d


def test_list_shards_by_arn(kinesis, make_stream):
    name = make_stream(2)
    assert kinesis.list_shards(StreamARN=stream_arn(name))["Shards"] == kinesis.list_shards(StreamName=name)["Shards"]


def test_list_shards_exclusive_start(kinesis, make_stream):
    name = make_stream(3)
    r = kinesis.list_shards(StreamName=name, ExclusiveStartShardId=shard_id(1))
    assert [s["ShardId"] for s in r["Shards"]] == [shard_id(2)]
    r = kinesis.list_shards(StreamName=name, ExclusiveStartShardId=shard_id(2))
    assert r["Shards"] == []


def test_list_shards_pagination_next_token_alone(kinesis, make_stream):
    name = make_stream(5)
    r = kinesis.list_shards(StreamName=name, MaxResults=2)
    ids = [s["ShardId"] for s in r["Shards"]]
    assert ids == [shard_id(0), shard_id(1)]
    token = r["NextToken"]
    r = kinesis.list_shards(NextToken=token, MaxResults=2)
    ids += [s["ShardId"] for s in r["Shards"]]
    r = kinesis.list_shards(NextToken=r["NextToken"], MaxResults=2)
    ids += [s["ShardId"] for s in r["Shards"]]
    assert ids == [shard_id(i) for i in range(5)]
    if r.get("NextToken"):
        r = kinesis.list_shards(NextToken=r["NextToken"])
        assert r["Shards"] == []
        assert not r.get("NextToken")


def test_list_shards_stream_creation_timestamp(kinesis, make_stream):
    name = make_stream(2)
    ts = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamCreationTimestamp"]
    r = kinesis.list_shards(StreamName=name, StreamCreationTimestamp=ts)
    assert len(r["Shards"]) == 2


def test_list_shards_next_token_and_stream_name(kinesis, make_stream):
    name = make_stream(3)
    token = kinesis.list_shards(StreamName=name, MaxResults=1)["NextToken"]
    expect_client_error(
        kinesis.list_shards,
        "InvalidArgumentException",
        "NextToken and StreamName cannot be provided together.",
        StreamName=name,
        NextToken=token,
    )


def test_list_shards_neither_name_nor_token(raw):
    r = raw.call("ListShards", {})
    assert_error(r, "InvalidArgumentException")
    assert "NextToken" in r.message


def test_list_shards_garbage_next_token(raw):
    r = raw.call("ListShards", {"NextToken": "garbage"})
    assert r.status == 400, r
    assert r.error_type in {"InvalidArgumentException", "ExpiredNextTokenException"}, r


def test_list_shards_not_found(kinesis):
    name = unique_name("nf")
    expect_client_error(kinesis.list_shards, "ResourceNotFoundException", not_found_msg(name), StreamName=name)


def test_list_shards_validation_empty(raw):
    r = raw.call("ListShards", {"StreamName": "", "NextToken": "", "MaxResults": 0, "ExclusiveStartShardId": ""})
    assert_validation(
        r,
        [
            v_min("0", "maxResults", 1),
            v_pattern("", "exclusiveStartShardId", NAME_PATTERN),
            v_min_len("", "exclusiveStartShardId"),
            v_pattern("", "streamName", NAME_PATTERN),
            v_min_len("", "streamName"),
            v_min_len("", "nextToken"),
        ],
    )


def test_list_shards_validation_long(raw):
    name = "a" * 129
    r = raw.call("ListShards", {"StreamName": name, "MaxResults": 100000, "ExclusiveStartShardId": name})
    assert_validation(
        r,
        [
            v_max("100000", "maxResults", 10000),
            v_max_len(name, "exclusiveStartShardId", 128),
            v_max_len(name, "streamName", 128),
        ],
    )


def test_list_shards_validation_bad_filter_type(raw):
    r = raw.call("ListShards", {"StreamName": "x", "ShardFilter": {"Type": "NOPE"}})
    assert_validation(
        r,
        [
            v_enum(
                "NOPE",
                "shardFilter.type",
                ["AFTER_SHARD_ID", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON", "AT_LATEST", "AT_TIMESTAMP", "FROM_TIMESTAMP"],
            )
        ],
    )


def test_list_shards_validation_filter_missing_type(raw):
    r = raw.call("ListShards", {"StreamName": "x", "ShardFilter": {}})
    assert_validation(r, [v_null("shardFilter.type")])


@pytest.mark.parametrize("ftype", ["AT_LATEST", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON"])
def test_list_shards_filter_all_open(kinesis, make_stream, ftype):
    name = make_stream(3)
    r = kinesis.list_shards(StreamName=name, ShardFilter={"Type": ftype})
    assert [s["ShardId"] for s in r["Shards"]] == [shard_id(i) for i in range(3)]


@pytest.mark.parametrize("ftype", ["AT_TIMESTAMP", "FROM_TIMESTAMP"])
def test_list_shards_filter_timestamps(kinesis, make_stream, ftype):
    name = make_stream(3)
    time.sleep(0.05)
    now = datetime.now(timezone.utc)
    r = kinesis.list_shards(StreamName=name, ShardFilter={"Type": ftype, "Timestamp": now})
    assert [s["ShardId"] for s in r["Shards"]] == [shard_id(i) for i in range(3)]


def test_list_shards_filter_after_shard_id(kinesis, make_stream):
    name = make_stream(4)
    r = kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": shard_id(1)})
    assert [s["ShardId"] for s in r["Shards"]] == [shard_id(2), shard_id(3)]


def test_list_shards_filter_after_shard_id_requires_shard_id(kinesis, make_stream):
    name = make_stream(1)
    expect_client_error(kinesis.list_shards, "InvalidArgumentException", StreamName=name,
                        ShardFilter={"Type": "AFTER_SHARD_ID"})


@pytest.mark.parametrize("ftype", ["AT_TIMESTAMP", "FROM_TIMESTAMP"])
def test_list_shards_filter_timestamp_required(kinesis, make_stream, ftype):
    name = make_stream(1)
    expect_client_error(kinesis.list_shards, "InvalidArgumentException", StreamName=name, ShardFilter={"Type": ftype})


def test_list_shards_filter_from_timestamp_before_creation(kinesis, make_stream):
    # FROM_TIMESTAMP earlier than the trim horizon is corrected to TRIM_HORIZON: all shards.
    name = make_stream(2)
    past = datetime.now(timezone.utc) - timedelta(days=3)
    r = kinesis.list_shards(StreamName=name, ShardFilter={"Type": "FROM_TIMESTAMP", "Timestamp": past})
    assert [s["ShardId"] for s in r["Shards"]] == [shard_id(0), shard_id(1)]


def test_default_page_sizes(server_factory):
    """DescribeStream and ListStreams return at most 100 items per call, whatever the Limit."""
    from kutil import make_client, wait_status

    srv = server_factory(ephemeral=True, args=["--create-stream-ms", "0", "--delete-stream-ms", "0"])
    k = make_client(srv.endpoint)
    big = "big"
    k.create_stream(StreamName=big, ShardCount=101)
    wait_status(k, big)
    d = k.describe_stream(StreamName=big)["StreamDescription"]
    assert len(d["Shards"]) == 100 and d["HasMoreShards"] is True
    d = k.describe_stream(StreamName=big, Limit=10000)["StreamDescription"]
    assert len(d["Shards"]) == 100 and d["HasMoreShards"] is True
    d = k.describe_stream(StreamName=big, ExclusiveStartShardId=shard_id(99))["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == [shard_id(100)] and d["HasMoreShards"] is False
    assert len(k.list_shards(StreamName=big)["Shards"]) == 101
    for i in range(100):
        k.create_stream(StreamName=f"s{i:03d}", ShardCount=1)
    r = k.list_streams()
    assert len(r["StreamNames"]) == 100 and r["HasMoreStreams"] is True
    r = k.list_streams(Limit=10000)
    assert len(r["StreamNames"]) == 100 and r["HasMoreStreams"] is True
    rest = k.list_streams(NextToken=r["NextToken"])
    assert len(rest["StreamNames"]) == 1 and rest["HasMoreStreams"] is False
    assert sorted(r["StreamNames"] + rest["StreamNames"]) == sorted(["big"] + [f"s{i:03d}" for i in range(100)])
