"""Wire-protocol behaviour of the AWS JSON 1.1 front end (raw HTTP)."""

import pytest

from kutil import AMZ_JSON, TARGET_PREFIX, UUID_RE, assert_error, not_found_msg, unique_name


def test_signed_list_streams_ok(raw):
    r = raw.call("ListStreams", {})
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith(AMZ_JSON)
    assert UUID_RE.match(r.headers["x-amzn-RequestId"])
    assert isinstance(r.json["StreamNames"], list)
    assert isinstance(r.json["HasMoreStreams"], bool)


def test_request_id_unique_per_request(raw):
    a = raw.call("ListStreams", {}).headers["x-amzn-RequestId"]
    b = raw.call("ListStreams", {}).headers["x-amzn-RequestId"]
    assert a != b


def test_missing_authentication_token(raw):
    r = raw.call("ListStreams", {}, sign=False)
    assert_error(r, "MissingAuthenticationTokenException", "Missing Authentication Token")
    assert UUID_RE.match(r.headers["x-amzn-RequestId"])


def test_missing_auth_on_mutating_op_does_nothing(raw, kinesis):
    name = unique_name("noauth")
    r = raw.call("CreateStream", {"StreamName": name, "ShardCount": 1}, sign=False)
    assert_error(r, "MissingAuthenticationTokenException", "Missing Authentication Token")
    assert name not in kinesis.list_streams(Limit=10000)["StreamNames"]


@pytest.mark.parametrize("body", ["hello", "{", "[1,2", "{\"StreamName\": }"])
def test_malformed_json_is_serialization_exception(raw, body):
    r = raw.call("ListStreams", body)
    assert_error(r, "SerializationException")


def test_empty_body_is_serialization_exception(raw):
    r = raw.call("ListStreams", b"")
    assert_error(r, "SerializationException")


@pytest.mark.parametrize(
    "target",
    [
        TARGET_PREFIX + "Whatever",
        TARGET_PREFIX,
        TARGET_PREFIX + "ListStream",
        "Whatever",
        "Whatever.ListStreams",
    ],
)
def test_unknown_operation(raw, target):
    r = raw.request(target, {})
    assert_error(r, "UnknownOperationException")
    assert r.headers.get("x-amzn-RequestId")


def test_missing_target_is_unknown_operation(raw):
    r = raw.request(None, {})
    assert_error(r, "UnknownOperationException")


def test_error_header_matches_body(raw):
    name = unique_name("nf")
    r = raw.call("DescribeStream", {"StreamName": name})
    assert_error(r, "ResourceNotFoundException", not_found_msg(name))
    assert r.headers["Content-Type"].startswith(AMZ_JSON)
    assert set(r.json) <= {"__type", "message", "Message"}


@pytest.mark.parametrize(
    "op,body",
    [
        ("CreateStream", None),
        ("AddTagsToStream", {"Tags": {"k": "v"}}),
        ("RemoveTagsFromStream", {"TagKeys": ["k"]}),
        ("IncreaseStreamRetentionPeriod", {"RetentionPeriodHours": 48}),
        ("DecreaseStreamRetentionPeriod", {"RetentionPeriodHours": 24}),
        ("DeleteStream", {}),
    ],
)
def test_ops_without_output_return_empty_body(raw, kinesis, op, body):
    name = unique_name("empty")
    r = raw.call("CreateStream", {"StreamName": name, "ShardCount": 1})
    assert r.status == 200, r
    assert r.text == ""
    assert r.headers.get("x-amzn-RequestId")
    try:
        if op != "CreateStream":
            b = dict(body)
            b["StreamName"] = name
            r = raw.call(op, b)
            assert r.status == 200, r
            assert r.text == "", f"{op} returned a body: {r.text!r}"
    finally:
        raw.call("DeleteStream", {"StreamName": name})


def test_unknown_members_are_ignored(raw):
    name = unique_name("unk")
    r = raw.call("DescribeStream", {"StreamName": name, "NotAMember": 42, "Other": {"x": [1]}})
    assert_error(r, "ResourceNotFoundException", not_found_msg(name))


def test_null_members_are_treated_as_absent(raw):
    r = raw.call("ListStreams", {"Limit": None, "ExclusiveStartStreamName": None})
    assert r.status == 200, r
    assert "StreamNames" in r.json


def test_path_is_ignored(raw):
    r = raw.call("ListStreams", {}, path="/some/other/path")
    assert r.status == 200, r
    assert "StreamNames" in r.json


# --- JSON type errors: AWS's coral front end rejects wrongly typed members with a
# SerializationException before any validation happens.

STRING_ERRS = [
    (True, "class java.lang.Boolean can not be converted to an String"),
    (23, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"),
    ([], "Start of list found where not expected"),
    ({}, "Start of structure or map found where not expected."),
]
INTEGER_ERRS = [
    ("23", "class java.lang.String can not be converted to an Integer"),
    (True, "class java.lang.Boolean can not be converted to an Integer"),
    ([], "Start of list found where not expected"),
    ({}, "Start of structure or map found where not expected."),
]
LIST_ERRS = [
    ("23", "Expected list or null"),
    (23, "Expected list or null"),
    ({}, "Start of structure or map found where not expected."),
]
MAP_ERRS = [
    ("23", "Expected map or null"),
    (23, "Expected map or null"),
    ([], "Start of list found where not expected"),
]
BLOB_ERRS = [
    (True, "class java.lang.Boolean can not be converted to a Blob"),
    ("23456", "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"),
    ("=+/=", "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='"),
    ("+/+=", "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"),
]
TIMESTAMP_ERRS = [
    ("23", "class java.lang.String can not be converted to milliseconds since epoch"),
    (True, "class java.lang.Boolean can not be converted to milliseconds since epoch"),
]


def _check_serialization(raw, op, body, msg):
    r = raw.call(op, body)
    assert_error(r, "SerializationException")
    assert r.message == msg, r


@pytest.mark.parametrize("value,msg", STRING_ERRS)
def test_string_member_wrong_type(raw, value, msg):
    _check_serialization(raw, "DescribeStream", {"StreamName": value}, msg)


@pytest.mark.parametrize("value,msg", INTEGER_ERRS)
def test_integer_member_wrong_type(raw, value, msg):
    _check_serialization(raw, "ListStreams", {"Limit": value}, msg)


@pytest.mark.parametrize("value,msg", LIST_ERRS)
def test_list_member_wrong_type(raw, value, msg):
    _check_serialization(raw, "PutRecords", {"StreamName": "x", "Records": value}, msg)


@pytest.mark.parametrize("value,msg", MAP_ERRS)
def test_map_member_wrong_type(raw, value, msg):
    _check_serialization(raw, "AddTagsToStream", {"StreamName": "x", "Tags": value}, msg)


@pytest.mark.parametrize("value,msg", BLOB_ERRS)
def test_blob_member_wrong_type(raw, value, msg):
    _check_serialization(raw, "PutRecord", {"StreamName": "x", "PartitionKey": "a", "Data": value}, msg)


@pytest.mark.parametrize("value,msg", TIMESTAMP_ERRS)
def test_timestamp_member_wrong_type(raw, value, msg):
    body = {"StreamName": "x", "ShardId": "shardId-0", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": value}
    _check_serialization(raw, "GetShardIterator", body, msg)


def test_serialization_checked_before_validation(raw):
    # StreamName is both mistyped and Limit out of range: the type error wins.
    r = raw.call("DescribeStream", {"StreamName": 5, "Limit": 0})
    assert_error(r, "SerializationException")
