"""CreateStream / DeleteStream."""

import re
import time

import pytest

from kutil import (
    ACCOUNT,
    NAME_PATTERN,
    REGION,
    SEQ_RE,
    assert_error,
    assert_validation,
    even_ranges,
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
    wait_gone,
    wait_status,
)


def test_create_returns_empty_200(raw, kinesis, stream_name):
    r = raw.call("CreateStream", {"StreamName": stream_name, "ShardCount": 1})
    assert r.status == 200, r
    assert r.text == ""
    wait_status(kinesis, stream_name)


def test_create_three_shards_exact_description(kinesis, stream_name):
    before = time.time()
    kinesis.create_stream(StreamName=stream_name, ShardCount=3)
    wait_status(kinesis, stream_name)
    d = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]
    assert d["StreamName"] == stream_name
    assert d["StreamARN"] == stream_arn(stream_name)
    assert d["StreamStatus"] == "ACTIVE"
    assert d["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert d["RetentionPeriodHours"] == 24
    assert d["EncryptionType"] == "NONE"
    assert "KeyId" not in d
    assert d["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert d["HasMoreShards"] is False
    assert abs(d["StreamCreationTimestamp"].timestamp() - before) < 10
    assert "StreamId" not in d
    assert [s["ShardId"] for s in d["Shards"]] == [shard_id(i) for i in range(3)]
    expected = [
        ("0", "113427455640312821154458202477256070484"),
        ("113427455640312821154458202477256070485", "226854911280625642308916404954512140969"),
        ("226854911280625642308916404954512140970", "340282366920938463463374607431768211455"),
    ]
    for shard, (start, end) in zip(d["Shards"], expected):
        assert shard["HashKeyRange"] == {"StartingHashKey": start, "EndingHashKey": end}
        assert set(shard) == {"ShardId", "HashKeyRange", "SequenceNumberRange"}
        assert set(shard["SequenceNumberRange"]) == {"StartingSequenceNumber"}
        assert SEQ_RE.match(shard["SequenceNumberRange"]["StartingSequenceNumber"])


@pytest.mark.parametrize("n", [1, 2, 5, 7, 16])
def test_even_hash_ranges(kinesis, make_stream, n):
    name = make_stream(n)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    got = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in shards]
    assert got == even_ranges(n)
    # contiguous and covering [0, 2^128-1]
    assert got[0][0] == 0 and got[-1][1] == 2**128 - 1
    for (a, b), (c, _) in zip(got, got[1:]):
        assert c == b + 1


def test_create_on_demand(kinesis, make_stream):
    name = make_stream(None, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert s["OpenShardCount"] >= 1
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    assert len(shards) == s["OpenShardCount"]
    assert int(shards[0]["HashKeyRange"]["StartingHashKey"]) == 0
    assert int(shards[-1]["HashKeyRange"]["EndingHashKey"]) == 2**128 - 1
    r = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    assert r["ShardId"] in {s["ShardId"] for s in shards}


def test_create_explicit_provisioned_mode(kinesis, make_stream):
    name = make_stream(2, StreamModeDetails={"StreamMode": "PROVISIONED"})
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert s["OpenShardCount"] == 2


def test_create_provisioned_without_shard_count_is_invalid(kinesis, stream_name):
    # Neither ShardCount nor StreamModeDetails makes an ON_DEMAND stream (test_aws_parity.py).
    expect_client_error(kinesis.create_stream, "InvalidArgumentException", StreamName=stream_name,
                        StreamModeDetails={"StreamMode": "PROVISIONED"})


def test_create_with_tags(kinesis, make_stream):
    name = make_stream(1, Tags={"team": "data", "env": ""})
    tags = kinesis.list_tags_for_stream(StreamName=name)["Tags"]
    assert tags == [{"Key": "env", "Value": ""}, {"Key": "team", "Value": "data"}]


def test_create_with_max_record_size(kinesis, make_stream):
    name = make_stream(1, MaxRecordSizeInKiB=2048)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["MaxRecordSizeInKiB"] == 2048


def test_create_existing_stream_in_use(kinesis, make_stream):
    name = make_stream(1)
    expect_client_error(
        kinesis.create_stream,
        "ResourceInUseException",
        f"Stream {name} under account {ACCOUNT} already exists.",
        StreamName=name,
        ShardCount=1,
    )


def test_create_validation_missing_name(raw):
    assert_validation(raw.call("CreateStream", {}), [v_null("streamName")])


def test_create_validation_empty_name_zero_shards(raw):
    r = raw.call("CreateStream", {"StreamName": "", "ShardCount": 0})
    assert_validation(
        r,
        [
            v_min("0", "shardCount", 1),
            v_pattern("", "streamName", NAME_PATTERN),
            v_min_len("", "streamName"),
        ],
    )


def test_create_validation_long_name(raw):
    name = "a" * 129
    assert_validation(raw.call("CreateStream", {"StreamName": name, "ShardCount": 1}), [v_max_len(name, "streamName", 128)])


def test_create_name_of_128_chars_ok(kinesis, make_stream):
    name = make_stream(1, name=("n" * 116) + unique_name("")[1:])
    assert len(name) == 128
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamName"] == name


@pytest.mark.parametrize("bad", ["a b", "a/b", "a:b", "ünï"])
def test_create_validation_bad_pattern(raw, bad):
    r = raw.call("CreateStream", {"StreamName": bad, "ShardCount": 1})
    assert_validation(r, [v_pattern(bad, "streamName", NAME_PATTERN)])


def test_create_validation_bad_stream_mode(raw):
    r = raw.call("CreateStream", {"StreamName": unique_name("v"), "StreamModeDetails": {"StreamMode": "FOO"}})
    assert_validation(r, [v_enum("FOO", "streamModeDetails.streamMode", ["PROVISIONED", "ON_DEMAND"])])


def test_create_validation_stream_mode_missing(raw):
    r = raw.call("CreateStream", {"StreamName": unique_name("v"), "ShardCount": 1, "StreamModeDetails": {}})
    assert_validation(r, [v_null("streamModeDetails.streamMode")])


@pytest.mark.parametrize("size,which", [(1023, "min"), (10241, "max"), (0, "min")])
def test_create_validation_max_record_size(raw, size, which):
    r = raw.call("CreateStream", {"StreamName": unique_name("v"), "ShardCount": 1, "MaxRecordSizeInKiB": size})
    if which == "min":
        assert_validation(r, [v_min(str(size), "maxRecordSizeInKiB", 1024)])
    else:
        assert_validation(r, [v_max(str(size), "maxRecordSizeInKiB", 10240)])


def test_create_validation_empty_tags(raw):
    r = raw.call("CreateStream", {"StreamName": unique_name("v"), "ShardCount": 1, "Tags": {}})
    assert_validation(r, [v_min_len("{}", "tags")])


def test_create_validation_many_errors(raw):
    name = "a" * 129
    r = raw.call(
        "CreateStream",
        {"StreamName": name, "ShardCount": 0, "MaxRecordSizeInKiB": 1},
    )
    assert_validation(
        r,
        [
            v_max_len(name, "streamName", 128),
            v_min("0", "shardCount", 1),
            v_min("1", "maxRecordSizeInKiB", 1024),
        ],
    )


def test_create_exceeding_shard_limit(kinesis, stream_name):
    limits = kinesis.describe_limits()
    want = limits["ShardLimit"] + 1
    msg = re.compile(
        "^"
        + re.escape(f"This request would exceed the shard limit for the account {ACCOUNT} in {REGION}. ")
        + r"Current shard count for the account: \d+\. Limit: "
        + re.escape(
            f"{limits['ShardLimit']}. Number of additional shards that would have resulted from this request: {want}. "
            "Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) "
            "for current limits and how to request higher limits."
        )
        + "$"
    )
    expect_client_error(kinesis.create_stream, "LimitExceededException", msg, StreamName=stream_name, ShardCount=want)
    expect_client_error(kinesis.describe_stream, "ResourceNotFoundException", StreamName=stream_name)


# ------------------------------------------------------------------ DeleteStream


def test_delete_stream(raw, kinesis, make_stream):
    name = make_stream(2)
    r = raw.call("DeleteStream", {"StreamName": name})
    assert r.status == 200, r
    assert r.text == ""
    wait_gone(kinesis, name)
    expect_client_error(kinesis.describe_stream, "ResourceNotFoundException", not_found_msg(name), StreamName=name)
    assert name not in kinesis.list_streams(Limit=10000)["StreamNames"]


def test_delete_by_arn(kinesis, make_stream):
    name = make_stream(1)
    kinesis.delete_stream(StreamARN=stream_arn(name))
    wait_gone(kinesis, name)


def test_delete_with_enforce_consumer_deletion(kinesis, make_stream):
    name = make_stream(1)
    kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    wait_gone(kinesis, name)


def test_delete_not_found(kinesis):
    name = unique_name("gone")
    expect_client_error(kinesis.delete_stream, "ResourceNotFoundException", not_found_msg(name), StreamName=name)


def test_delete_twice(kinesis, make_stream):
    name = make_stream(1)
    kinesis.delete_stream(StreamName=name)
    wait_gone(kinesis, name)
    expect_client_error(kinesis.delete_stream, "ResourceNotFoundException", not_found_msg(name), StreamName=name)


def test_delete_validation(raw):
    assert_validation(
        raw.call("DeleteStream", {"StreamName": ""}),
        [v_pattern("", "streamName", NAME_PATTERN), v_min_len("", "streamName")],
    )
    name = "a" * 129
    assert_validation(raw.call("DeleteStream", {"StreamName": name}), [v_max_len(name, "streamName", 128)])


def test_delete_without_identifier(raw):
    r = raw.call("DeleteStream", {})
    assert r.status == 400, r
    assert r.error_type in {"InvalidArgumentException", "ValidationException"}, r


def test_recreate_after_delete_is_a_new_stream(kinesis, make_stream):
    name = make_stream(1)
    kinesis.put_record(StreamName=name, Data=b"old", PartitionKey="p")
    t1 = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamCreationTimestamp"]
    kinesis.delete_stream(StreamName=name)
    wait_gone(kinesis, name)
    time.sleep(1.1)
    make_stream(1, name=name)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamCreationTimestamp"] > t1
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")
    assert kinesis.get_records(ShardIterator=it["ShardIterator"])["Records"] == []
