"""Authorization reads the resource from the operation's own members only. A member the
operation's input does not have (say ResourceARN on PutRecord) is dropped by validation, so the
service never acts on it: authorization must not either, or a caller allowed on one stream could
act on another by naming the allowed one in a member the call ignores."""

import base64

from botocore.credentials import Credentials

from kutil import RawClient
from test_policies import ORDERS, ORDERS_ARN, OTHER, OTHER_ARN, client, env, user  # noqa: F401


def raw(srv, who):
    r = RawClient(srv.endpoint)
    r.creds = Credentials(f"AKID{who.upper()}", f"{who}-secret")
    return r


def assert_denied(resp, who, action, resource):
    assert resp.status == 400, resp
    assert resp.error_type == "AccessDeniedException", resp
    assert resp.message.startswith(
        f"User: {user(who)} is not authorized to perform: kinesis:{action} on resource: {resource} "
    ), resp


def test_an_unknown_resource_arn_member_grants_nothing(env):  # noqa: F811
    srv, _ = env
    p = raw(srv, "producer")
    data = base64.b64encode(b"x").decode()
    ok = p.call("PutRecord", {"StreamName": ORDERS, "Data": data, "PartitionKey": "k"})
    assert ok.status == 200, ok
    # The producer may put to ORDERS only; PutRecord has no ResourceARN member.
    resp = p.call("PutRecord", {"StreamName": OTHER, "Data": data, "PartitionKey": "k", "ResourceARN": ORDERS_ARN})
    assert_denied(resp, "producer", "PutRecord", OTHER_ARN)
    c = raw(srv, "consumer")
    resp = c.call("DescribeStreamSummary", {"StreamName": OTHER, "ResourceARN": ORDERS_ARN})
    assert_denied(resp, "consumer", "DescribeStreamSummary", OTHER_ARN)
    resp = c.call("ListStreamConsumers", {"StreamARN": OTHER_ARN, "ResourceARN": ORDERS_ARN})
    assert_denied(resp, "consumer", "ListStreamConsumers", OTHER_ARN)
    # Nothing reached OTHER.
    admin = client(srv, "admin")
    it = admin.get_shard_iterator(StreamName=OTHER, ShardId="shardId-000000000000",
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert admin.get_records(ShardIterator=it)["Records"] == []

