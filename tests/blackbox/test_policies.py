"""Authorization (issue 6): principals of `--credentials` carry IAM-style identity policies, streams
carry resource policies (PutResourcePolicy), and every call is decided as AWS decides same-account
access — explicit Deny wins, then an Allow in either policy, else denied — with AWS's
AccessDeniedException wording. Pins the issue's acceptance scenario (a producer that may only put
to one stream, a consumer that may only read) and the audit trail's "who did what"."""

import json
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kutil import REGION, stream_arn, unique_name, wait_status

ACCOUNT = "000000000000"
ORDERS = unique_name("orders")
OTHER = unique_name("other")
ORDERS_ARN = stream_arn(ORDERS)
OTHER_ARN = stream_arn(OTHER)


def user(name):
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


PRODUCER = policy({"Effect": "Allow", "Action": ["kinesis:PutRecord", "kinesis:PutRecords"], "Resource": ORDERS_ARN})
CONSUMER = policy({
    "Effect": "Allow",
    "Action": ["kinesis:DescribeStream*", "kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords",
               "kinesis:SubscribeToShard", "kinesis:DescribeStreamConsumer", "kinesis:ListStreamConsumers"],
    "Resource": [ORDERS_ARN, ORDERS_ARN + "/consumer/*"],
})
OPS = policy(
    {"Effect": "Allow", "Action": "kinesis:*", "Resource": f"arn:aws:kinesis:*:{ACCOUNT}:stream/orders-*"},
    {"Sid": "NoDeletes", "Effect": "Deny", "Action": "kinesis:delete*", "Resource": "*"},
)
AUDITOR = policy({"Effect": "Allow", "NotAction": ["kinesis:Put*", "kinesis:Delete*", "kinesis:*Policy"],
                  "Resource": "*"})

PRINCIPALS = [
    ("admin", None),
    ("producer", PRODUCER),
    ("consumer", CONSUMER),
    ("ops", OPS),
    ("auditor", AUDITOR),
    ("outsider", []),
]


def credentials_toml():
    out = []
    for name, pol in PRINCIPALS:
        out.append("[[principal]]")
        out.append(f'arn = "{user(name)}"')
        out.append(f'access_key_id = "AKID{name.upper()}"')
        out.append(f'secret_access_key = "{name}-secret"')
        if isinstance(pol, list):
            out.append("policies = []")
        elif pol is not None:
            out.append(f"policy = '''{pol}'''")
        out.append("")
    return "\n".join(out)


@pytest.fixture(scope="module")
def env(tmp_path_factory, log_dir):
    from kutil import Server

    d = tmp_path_factory.mktemp("policies")
    creds = d / "credentials.toml"
    creds.write_text(credentials_toml())
    audit = d / "audit.log"
    srv = Server(ephemeral=True, log_dir=log_dir, args=[
        "--credentials", str(creds), "--audit-log", str(audit), "--limits", "off",
        "--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", "0",
    ])
    srv.start()
    admin = client(srv, "admin")
    for name in (ORDERS, OTHER):
        admin.create_stream(StreamName=name, ShardCount=1)
        wait_status(admin, name)
    yield srv, audit
    assert srv.stop() == 0


def client(srv, name):
    return boto3.session.Session().client(
        "kinesis", endpoint_url=srv.endpoint, region_name=REGION,
        aws_access_key_id=f"AKID{name.upper()}", aws_secret_access_key=f"{name}-secret",
        config=Config(retries={"total_max_attempts": 1}))


def denied(call, who, action, resource, why="implicit"):
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response["Error"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["Code"] == "AccessDeniedException", err
    head = f"User: {user(who)} is not authorized to perform: kinesis:{action} on resource: {resource}"
    tail = {
        "implicit": f" because no identity-based policy allows the kinesis:{action} action",
        "identity": " with an explicit deny in an identity-based policy",
        "resource": " with an explicit deny in a resource-based policy",
    }[why]
    assert err["Message"] == head + tail
    return err["Message"]


def test_producer_may_only_put_to_its_stream(env):
    srv, _ = env
    p = client(srv, "producer")
    assert p.put_record(StreamName=ORDERS, Data=b"secret-payload-1", PartitionKey="k")["ShardId"]
    assert p.put_records(StreamName=ORDERS, Records=[{"Data": b"x", "PartitionKey": "k"}])["FailedRecordCount"] == 0
    assert p.put_record(StreamARN=ORDERS_ARN, Data=b"by-arn", PartitionKey="k")["ShardId"]
    denied(lambda: p.put_record(StreamName=OTHER, Data=b"x", PartitionKey="k"), "producer", "PutRecord", OTHER_ARN)
    denied(lambda: p.describe_stream(StreamName=ORDERS), "producer", "DescribeStream", ORDERS_ARN)
    denied(lambda: p.get_shard_iterator(StreamName=ORDERS, ShardId="shardId-000000000000",
                                        ShardIteratorType="TRIM_HORIZON"), "producer", "GetShardIterator", ORDERS_ARN)
    denied(lambda: p.list_streams(), "producer", "ListStreams", "*")
    denied(lambda: p.delete_stream(StreamName=ORDERS), "producer", "DeleteStream", ORDERS_ARN)
    denied(lambda: p.create_stream(StreamName="orders-new", ShardCount=1), "producer", "CreateStream",
           stream_arn("orders-new"))


def test_consumer_may_only_read(env):
    srv, _ = env
    client(srv, "producer").put_record(StreamName=ORDERS, Data=b"for-the-consumer", PartitionKey="k")
    c = client(srv, "consumer")
    assert c.describe_stream(StreamName=ORDERS)["StreamDescription"]["StreamName"] == ORDERS
    assert c.describe_stream_summary(StreamName=ORDERS)["StreamDescriptionSummary"]["OpenShardCount"] == 1
    shard = c.list_shards(StreamName=ORDERS)["Shards"][0]["ShardId"]
    it = c.get_shard_iterator(StreamName=ORDERS, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert b"for-the-consumer" in [r["Data"] for r in c.get_records(ShardIterator=it)["Records"]]
    # GetRecords acts on the stream its iterator reads.
    p = client(srv, "producer")
    denied(lambda: p.get_records(ShardIterator=it), "producer", "GetRecords", ORDERS_ARN)
    denied(lambda: c.put_record(StreamName=ORDERS, Data=b"x", PartitionKey="k"), "consumer", "PutRecord", ORDERS_ARN)
    denied(lambda: c.describe_stream(StreamName=OTHER), "consumer", "DescribeStream", OTHER_ARN)
    denied(lambda: c.increase_stream_retention_period(StreamName=ORDERS, RetentionPeriodHours=48), "consumer",
           "IncreaseStreamRetentionPeriod", ORDERS_ARN)
    denied(lambda: c.register_stream_consumer(StreamARN=ORDERS_ARN, ConsumerName="app"), "consumer",
           "RegisterStreamConsumer", ORDERS_ARN)


def test_consumer_subscribes_producer_may_not(env):
    srv, _ = env
    admin = client(srv, "admin")
    consumer_arn = admin.register_stream_consumer(StreamARN=ORDERS_ARN, ConsumerName="app")["Consumer"]["ConsumerARN"]
    deadline = time.time() + 10
    while admin.describe_stream_consumer(ConsumerARN=consumer_arn)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.time() < deadline
        time.sleep(0.2)
    c = client(srv, "consumer")
    assert c.describe_stream_consumer(StreamARN=ORDERS_ARN, ConsumerName="app")["ConsumerDescription"][
        "ConsumerARN"] == consumer_arn
    resp = c.subscribe_to_shard(ConsumerARN=consumer_arn, ShardId="shardId-000000000000",
                                StartingPosition={"Type": "TRIM_HORIZON"})
    first = next(iter(resp["EventStream"]))
    assert "SubscribeToShardEvent" in first
    resp["EventStream"].close()
    p = client(srv, "producer")
    denied(lambda: p.subscribe_to_shard(ConsumerARN=consumer_arn, ShardId="shardId-000000000000",
                                        StartingPosition={"Type": "LATEST"}), "producer", "SubscribeToShard",
           consumer_arn)
    denied(lambda: p.describe_stream_consumer(StreamARN=ORDERS_ARN, ConsumerName="app"), "producer",
           "DescribeStreamConsumer", consumer_arn)
    denied(lambda: c.deregister_stream_consumer(ConsumerARN=consumer_arn), "consumer", "DeregisterStreamConsumer",
           consumer_arn)
    admin.deregister_stream_consumer(ConsumerARN=consumer_arn)


def test_wildcards_and_explicit_deny(env):
    srv, _ = env
    ops = client(srv, "ops")
    name = "orders-" + unique_name("w")
    ops.create_stream(StreamName=name, ShardCount=1)
    wait_status(ops, name)
    ops.add_tags_to_stream(StreamName=name, Tags={"team": "ops"})
    assert ops.list_tags_for_stream(StreamName=name)["Tags"] == [{"Key": "team", "Value": "ops"}]
    denied(lambda: ops.delete_stream(StreamName=name), "ops", "DeleteStream", stream_arn(name), "identity")
    denied(lambda: ops.describe_stream(StreamName=OTHER), "ops", "DescribeStream", OTHER_ARN)
    # Actions without a resource type need Resource "*", which ops has not.
    denied(lambda: ops.list_streams(), "ops", "ListStreams", "*")
    client(srv, "admin").delete_stream(StreamName=name)


def test_not_action(env):
    srv, _ = env
    a = client(srv, "auditor")
    assert ORDERS in a.list_streams()["StreamNames"]
    assert a.describe_limits()["ShardLimit"] > 0
    assert a.describe_stream_summary(StreamName=OTHER)["StreamDescriptionSummary"]["StreamName"] == OTHER
    denied(lambda: a.put_record(StreamName=ORDERS, Data=b"x", PartitionKey="k"), "auditor", "PutRecord", ORDERS_ARN)
    denied(lambda: a.delete_stream(StreamName=OTHER), "auditor", "DeleteStream", OTHER_ARN)
    denied(lambda: a.get_resource_policy(ResourceARN=OTHER_ARN), "auditor", "GetResourcePolicy", OTHER_ARN)


def test_resource_policy_grants_and_denies(env):
    srv, _ = env
    admin, outsider = client(srv, "admin"), client(srv, "outsider")
    denied(lambda: outsider.describe_stream_summary(StreamName=OTHER), "outsider", "DescribeStreamSummary", OTHER_ARN)
    admin.put_resource_policy(ResourceARN=OTHER_ARN, Policy=policy(
        {"Sid": "Outsider", "Effect": "Allow", "Principal": {"AWS": user("outsider")},
         "Action": ["kinesis:DescribeStreamSummary", "kinesis:PutRecord"], "Resource": OTHER_ARN},
        {"Sid": "NoDeletes", "Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         "Action": "kinesis:DeleteStream", "Resource": OTHER_ARN},
        {"Sid": "Producer", "Effect": "Allow", "Principal": "*", "Action": "kinesis:PutRecords"},
    ))
    assert outsider.describe_stream_summary(StreamName=OTHER)["StreamDescriptionSummary"]["StreamName"] == OTHER
    assert outsider.put_record(StreamName=OTHER, Data=b"granted", PartitionKey="k")["ShardId"]
    denied(lambda: outsider.describe_stream(StreamName=OTHER), "outsider", "DescribeStream", OTHER_ARN)
    # The policy of one stream grants nothing on another.
    denied(lambda: outsider.describe_stream_summary(StreamName=ORDERS), "outsider", "DescribeStreamSummary",
           ORDERS_ARN)
    # `Principal: *` reaches the producer too, whose own policy names only ORDERS.
    p = client(srv, "producer")
    assert p.put_records(StreamName=OTHER, Records=[{"Data": b"x", "PartitionKey": "k"}])["FailedRecordCount"] == 0
    # A Deny naming the account binds every principal in it, the admin included.
    denied(lambda: admin.delete_stream(StreamName=OTHER), "admin", "DeleteStream", OTHER_ARN, "resource")
    admin.delete_resource_policy(ResourceARN=OTHER_ARN)
    denied(lambda: outsider.describe_stream_summary(StreamName=OTHER), "outsider", "DescribeStreamSummary", OTHER_ARN)


def test_unevaluable_resource_policy_is_refused(env):
    srv, _ = env
    admin = client(srv, "admin")
    with pytest.raises(ClientError) as e:
        admin.put_resource_policy(ResourceARN=OTHER_ARN, Policy=policy(
            {"Effect": "Allow", "Principal": "*", "Action": "kinesis:*",
             "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}))
    assert e.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert "Condition is not supported" in e.value.response["Error"]["Message"]


def audit_events(path, want, timeout=5.0):
    """The audit file's events, once `want(events)` holds (the writer is asynchronous)."""
    deadline = time.time() + timeout
    while True:
        events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if want(events) or time.time() > deadline:
            return events
        time.sleep(0.1)


def test_audit_says_who_did_what(env):
    srv, audit = env
    p = client(srv, "producer")
    marker = unique_name("marker")
    p.put_record(StreamName=ORDERS, Data=marker.encode(), PartitionKey="audit")
    msg = denied(lambda: p.delete_stream(StreamName=ORDERS), "producer", "DeleteStream", ORDERS_ARN)
    admin = client(srv, "admin")
    admin.add_tags_to_stream(StreamName=ORDERS, Tags={"audited": marker})

    def done(events):
        return any(e.get("requestParameters", {}) and e["requestParameters"].get("Tags", {}).get("audited") == marker
                   for e in events if e.get("eventName") == "AddTagsToStream")

    events = audit_events(audit, done)
    assert done(events), events[-5:]
    text = audit.read_text()
    assert marker.encode().hex() not in text and "c2VjcmV0" not in text
    # Record payloads are never written, even in denied or failed calls.
    assert "secret-payload" not in text and "Data" not in text
    who = [(e["userIdentity"].get("arn"), e["eventName"], e.get("errorCode")) for e in events]
    assert (user("admin"), "CreateStream", None) in who
    assert (user("admin"), "AddTagsToStream", None) in who
    assert (user("producer"), "DeleteStream", "AccessDeniedException") in who
    assert (user("ops"), "DeleteStream", "AccessDeniedException") in who
    assert (user("outsider"), "DescribeStreamSummary", None) in who
    # Data-plane calls are audited only when denied (no --audit-data-plane here).
    assert (user("producer"), "PutRecord", None) not in who
    assert (user("producer"), "PutRecord", "AccessDeniedException") in who
    ev = next(e for e in events if e["eventName"] == "DeleteStream" and e["userIdentity"].get("arn") == user("producer"))
    assert ev["errorMessage"] == msg
    assert ev["eventSource"] == "kinesis.amazonaws.com" and ev["awsRegion"] == REGION
    assert ev["userIdentity"] == {"type": "IAMUser", "arn": user("producer"), "accountId": ACCOUNT,
                                  "accessKeyId": "AKIDPRODUCER"}
    assert ev["sourceIPAddress"] == "127.0.0.1" and "Boto3" in ev["userAgent"] or "botocore" in ev["userAgent"]
    assert ev["requestParameters"] == {"StreamName": ORDERS}
    assert ev["requestID"] and ev["eventID"] and ev["eventTime"].endswith("Z")
    create = next(e for e in events if e["eventName"] == "CreateStream")
    assert create["requestParameters"]["ShardCount"] == 1 and create["managementEvent"] is True
    ids = [e["eventID"] for e in events]
    assert len(ids) == len(set(ids))
