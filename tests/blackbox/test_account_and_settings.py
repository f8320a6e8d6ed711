"""DescribeLimits, account settings, UpdateMaxRecordSize, enhanced monitoring, resource policies,
and the AWS-shaped answer of operations kinesin does not implement."""

import json

import pytest
from botocore.exceptions import ClientError

from kutil import (
    NAME_PATTERN,
    UUID_RE,
    assert_error,
    assert_validation,
    expect_client_error,
    make_client,
    not_found_msg,
    read_shard,
    shard_id,
    stream_arn,
    unique_name,
    v_enum,
    v_max,
    v_min,
    v_min_len,
    v_null,
    wait_gone,
    wait_status,
)

ALL_METRICS = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
]

# ------------------------------------------------------------------ DescribeLimits


def test_describe_limits_shape(raw):
    r = raw.call("DescribeLimits", {})
    assert r.status == 200, r
    for k in ["ShardLimit", "OpenShardCount", "OnDemandStreamCount", "OnDemandStreamCountLimit"]:
        assert isinstance(r.json[k], int) and r.json[k] >= 0, k
    assert r.json["ShardLimit"] >= 1


def test_describe_limits_counts_track_streams(kinesis, make_stream):
    before = kinesis.describe_limits()
    name = make_stream(3)
    od = make_stream(None, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    after = kinesis.describe_limits()
    od_shards = kinesis.describe_stream_summary(StreamName=od)["StreamDescriptionSummary"]["OpenShardCount"]
    assert after["OnDemandStreamCount"] == before["OnDemandStreamCount"] + 1
    # On AWS, OpenShardCount counts provisioned shards; accept on-demand shards being counted too.
    assert after["OpenShardCount"] - before["OpenShardCount"] in (3, 3 + od_shards)
    kinesis.delete_stream(StreamName=name)
    wait_gone(kinesis, name)
    assert kinesis.describe_limits()["OpenShardCount"] == after["OpenShardCount"] - 3


# ------------------------------------------------------------------ account settings


@pytest.fixture
def fresh(server_factory):
    srv = server_factory(ephemeral=True, args=["--create-stream-ms", "0", "--delete-stream-ms", "0",
                                               "--update-stream-ms", "0"])
    return make_client(srv.endpoint), srv.raw()


def test_account_settings_roundtrip(fresh):
    k, raw = fresh
    r = raw.call("DescribeAccountSettings", {})
    assert r.status == 200, r
    status = (r.json or {}).get("MinimumThroughputBillingCommitment", {}).get("Status", "DISABLED")
    assert status == "DISABLED"
    out = k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
    assert out["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED"
    assert "StartedAt" in out["MinimumThroughputBillingCommitment"]
    got = k.describe_account_settings()["MinimumThroughputBillingCommitment"]
    assert got["Status"] == "ENABLED"
    # Disabling within the 24 h minimum commitment keeps it on until the earliest allowed end.
    # AWS documents "restrictions" for ending inside the window: either a refusal or a deferred end.
    try:
        out = k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "DISABLED"})
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidArgumentException", e.response
    else:
        assert out["MinimumThroughputBillingCommitment"]["Status"] in {"ENABLED_UNTIL_EARLIEST_ALLOWED_END", "DISABLED"}


def test_update_account_settings_validation(raw):
    assert_validation(raw.call("UpdateAccountSettings", {}), [v_null("minimumThroughputBillingCommitment")])
    r = raw.call("UpdateAccountSettings", {"MinimumThroughputBillingCommitment": {"Status": "MAYBE"}})
    assert_validation(r, [v_enum("MAYBE", "minimumThroughputBillingCommitment.status", ["ENABLED", "DISABLED"])])


# ------------------------------------------------------------------ UpdateMaxRecordSize


def test_update_max_record_size(raw, kinesis, make_stream):
    name = make_stream(1)
    r = raw.call("UpdateMaxRecordSize", {"StreamARN": stream_arn(name), "MaxRecordSizeInKiB": 4096})
    assert r.status == 200 and r.text == "", r
    wait_status(kinesis, name)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["MaxRecordSizeInKiB"] == 4096
    data = b"L" * (3 * 1024 * 1024)
    put = kinesis.put_record(StreamName=name, PartitionKey="big", Data=data)
    recs = read_shard(kinesis, name, shard_id(0))
    assert [x["SequenceNumber"] for x in recs] == [put["SequenceNumber"]]
    assert recs[0]["Data"] == data


def test_large_record_rejected_until_raised(kinesis, make_stream):
    name = make_stream(1)
    data = b"L" * (2 * 1024 * 1024)
    with pytest.raises(ClientError) as ei:
        kinesis.put_record(StreamName=name, PartitionKey="big", Data=data)
    assert ei.value.response["Error"]["Code"] in {"ValidationException", "InvalidArgumentException"}
    kinesis.update_max_record_size(StreamARN=stream_arn(name), MaxRecordSizeInKiB=10240)
    wait_status(kinesis, name)
    kinesis.put_record(StreamName=name, PartitionKey="big", Data=data)


def test_update_max_record_size_validation(raw):
    arn = stream_arn("x")
    assert_validation(raw.call("UpdateMaxRecordSize", {"StreamARN": arn}), [v_null("maxRecordSizeInKiB")])
    assert_validation(
        raw.call("UpdateMaxRecordSize", {"StreamARN": arn, "MaxRecordSizeInKiB": 1000}),
        [v_min("1000", "maxRecordSizeInKiB", 1024)],
    )
    assert_validation(
        raw.call("UpdateMaxRecordSize", {"StreamARN": arn, "MaxRecordSizeInKiB": 10241}),
        [v_max("10241", "maxRecordSizeInKiB", 10240)],
    )


def test_update_max_record_size_not_found(kinesis):
    name = unique_name("nf")
    expect_client_error(kinesis.update_max_record_size, "ResourceNotFoundException", StreamARN=stream_arn(name),
                        MaxRecordSizeInKiB=2048)


# ------------------------------------------------------------------ enhanced monitoring


def test_enable_disable_enhanced_monitoring(kinesis, make_stream):
    name = make_stream(1)
    out = kinesis.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingBytes", "OutgoingBytes"])
    assert out["StreamName"] == name
    assert out.get("StreamARN", stream_arn(name)) == stream_arn(name)
    assert out["CurrentShardLevelMetrics"] == []
    assert sorted(out["DesiredShardLevelMetrics"]) == ["IncomingBytes", "OutgoingBytes"]
    wait_status(kinesis, name)
    em = kinesis.describe_stream(StreamName=name)["StreamDescription"]["EnhancedMonitoring"]
    assert len(em) == 1 and sorted(em[0]["ShardLevelMetrics"]) == ["IncomingBytes", "OutgoingBytes"]
    summ = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["EnhancedMonitoring"]
    assert summ == em
    out = kinesis.disable_enhanced_monitoring(StreamARN=stream_arn(name), ShardLevelMetrics=["IncomingBytes"])
    assert sorted(out["CurrentShardLevelMetrics"]) == ["IncomingBytes", "OutgoingBytes"]
    assert out["DesiredShardLevelMetrics"] == ["OutgoingBytes"]
    wait_status(kinesis, name)


def test_enhanced_monitoring_all(kinesis, make_stream):
    name = make_stream(1)
    out = kinesis.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["ALL"])
    assert sorted(out["DesiredShardLevelMetrics"]) == sorted(ALL_METRICS)
    wait_status(kinesis, name)
    out = kinesis.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["ALL"])
    assert sorted(out["CurrentShardLevelMetrics"]) == sorted(ALL_METRICS)
    assert out["DesiredShardLevelMetrics"] == []
    wait_status(kinesis, name)
    em = kinesis.describe_stream(StreamName=name)["StreamDescription"]["EnhancedMonitoring"]
    assert em == [{"ShardLevelMetrics": []}]


def test_enhanced_monitoring_not_found(kinesis):
    name = unique_name("nf")
    expect_client_error(kinesis.enable_enhanced_monitoring, "ResourceNotFoundException", not_found_msg(name),
                        StreamName=name, ShardLevelMetrics=["ALL"])
    expect_client_error(kinesis.disable_enhanced_monitoring, "ResourceNotFoundException", not_found_msg(name),
                        StreamName=name, ShardLevelMetrics=["ALL"])


@pytest.mark.parametrize("op", ["EnableEnhancedMonitoring", "DisableEnhancedMonitoring"])
def test_enhanced_monitoring_validation(raw, op):
    assert_validation(raw.call(op, {"StreamName": "x"}), [v_null("shardLevelMetrics")])
    assert_validation(raw.call(op, {"StreamName": "x", "ShardLevelMetrics": []}), [v_min_len("[]", "shardLevelMetrics")])
    r = raw.call(op, {"StreamName": "x", "ShardLevelMetrics": ["Bogus"]})
    assert_error(r, "ValidationException")
    assert r.message.startswith("1 validation error detected: Value '[Bogus]' at 'shardLevelMetrics' failed to satisfy constraint: "), r.message
    r = raw.call(op, {"StreamName": "x", "ShardLevelMetrics": ALL_METRICS + ["ALL"]})
    assert_error(r, "ValidationException")
    assert "Member must have length less than or equal to 7" in r.message


# ------------------------------------------------------------------ resource policies

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "x",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": ["kinesis:GetRecords", "kinesis:DescribeStreamSummary"],
                "Resource": "*",
            }
        ],
    }
)


def test_resource_policy_roundtrip(raw, kinesis, make_stream):
    name = make_stream(1)
    arn = stream_arn(name)
    r = raw.call("PutResourcePolicy", {"ResourceARN": arn, "Policy": POLICY})
    assert r.status == 200 and r.text == "", r
    got = kinesis.get_resource_policy(ResourceARN=arn)["Policy"]
    assert json.loads(got) == json.loads(POLICY)
    r = raw.call("DeleteResourcePolicy", {"ResourceARN": arn})
    assert r.status == 200 and r.text == "", r
    try:
        after = kinesis.get_resource_policy(ResourceARN=arn)["Policy"]
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ResourceNotFoundException"
    else:
        assert after in ("", "{}")


def test_resource_policy_replace(kinesis, make_stream):
    name = make_stream(1)
    arn = stream_arn(name)
    kinesis.put_resource_policy(ResourceARN=arn, Policy=POLICY)
    p2 = json.loads(POLICY)
    p2["Statement"][0]["Sid"] = "y"
    kinesis.put_resource_policy(ResourceARN=arn, Policy=json.dumps(p2))
    assert json.loads(kinesis.get_resource_policy(ResourceARN=arn)["Policy"])["Statement"][0]["Sid"] == "y"


def test_resource_policy_not_found(kinesis):
    arn = stream_arn(unique_name("nf"))
    expect_client_error(kinesis.put_resource_policy, "ResourceNotFoundException", ResourceARN=arn, Policy=POLICY)
    expect_client_error(kinesis.get_resource_policy, "ResourceNotFoundException", ResourceARN=arn)
    expect_client_error(kinesis.delete_resource_policy, "ResourceNotFoundException", ResourceARN=arn)


def test_resource_policy_validation(raw):
    assert_validation(raw.call("PutResourcePolicy", {}), [v_null("resourceARN"), v_null("policy")])
    assert_validation(raw.call("GetResourcePolicy", {}), [v_null("resourceARN")])
    assert_validation(raw.call("DeleteResourcePolicy", {}), [v_null("resourceARN")])


# ------------------------------------------------------------------ out-of-scope operations

OTHER_OPS = {
    "SplitShard": {"StreamName": "{n}", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": "5"},
    "MergeShards": {"StreamName": "{n}", "ShardToMerge": "shardId-000000000000",
                    "AdjacentShardToMerge": "shardId-000000000001"},
    "UpdateShardCount": {"StreamName": "{n}", "TargetShardCount": 2, "ScalingType": "UNIFORM_SCALING"},
    "UpdateStreamMode": {"StreamARN": "{arn}", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}},
    "StartStreamEncryption": {"StreamName": "{n}", "EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
    "StopStreamEncryption": {"StreamName": "{n}", "EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
    "RegisterStreamConsumer": {"StreamARN": "{arn}", "ConsumerName": "c"},
    "DeregisterStreamConsumer": {"StreamARN": "{arn}", "ConsumerName": "c"},
    "DescribeStreamConsumer": {"StreamARN": "{arn}", "ConsumerName": "c"},
    "ListStreamConsumers": {"StreamARN": "{arn}"},
    "SubscribeToShard": {"ConsumerARN": "{arn}/consumer/c:1700000000", "ShardId": "shardId-000000000000",
                         "StartingPosition": {"Type": "LATEST"}},
    "ListChannels": {},
}


@pytest.mark.parametrize("op", sorted(OTHER_OPS))
def test_other_operations_answer_aws_shaped_errors(raw, op):
    name = unique_name("other")
    body = json.loads(json.dumps(OTHER_OPS[op]).replace("{n}", name).replace("{arn}", stream_arn(name)))
    r = raw.call(op, body)
    if r.status == 200:
        # Implemented and legitimately successful (e.g. an empty listing) - must still be a JSON answer.
        assert r.json is not None and r.text.strip() not in ("", "{}") or op == "ListChannels", r
        return
    assert r.status == 400, r
    assert r.error_type, r
    assert r.headers.get("x-amzn-ErrorType", "").split(":")[0] == r.error_type
    assert UUID_RE.match(r.headers.get("x-amzn-RequestId", "")), r
    assert isinstance(r.message, str) and r.message, r
