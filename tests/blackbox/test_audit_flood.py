"""Bounded echoes and an audit trail a caller cannot erase (issue 13, "Audit-trail erasure").

Pins: an error message repeats at most 256 characters of a value (then `… (N bytes)`), so a
15 MB stream name, a 501-record PutRecords or a 10 MB bad base64 value get small answers with the
right error code; authorization runs before the validation of anything but the names, so a
principal without the permission gets AccessDeniedException for a huge PutRecords; and a
low-privilege principal flooding with huge and denied requests cannot rotate the admin's earlier
entries out of the trail: entries are bounded, malformed and unauthenticated requests go to the
noise file, and each caller has a budget whose excess is counted on /metrics."""

import json
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from kutil import ACCOUNT, REGION, stream_arn, unique_name, wait_status

ANSWER_BYTES_MAX = 8 * 1024
HUGE_NAME = "a" * (15 * 1024 * 1024)
STREAM = unique_name("flood")


def user(name):
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


PRODUCER_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": stream_arn(STREAM)}]})

CREDENTIALS = f"""
[[principal]]
arn = "{user('admin')}"
access_key_id = "AKIDADMIN"
secret_access_key = "admin-secret"

[[principal]]
arn = "{user('producer')}"
access_key_id = "AKIDPRODUCER"
secret_access_key = "producer-secret"
policy = '''{PRODUCER_POLICY}'''
"""

FILE_BYTES_MAX = 64 * 1024


def client(srv, key, secret):
    return boto3.session.Session().client(
        "kinesis", endpoint_url=srv.endpoint, region_name=REGION, aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}, parameter_validation=False, read_timeout=60))


def raw_as(srv, key, secret):
    r = srv.raw()
    r.creds = Credentials(key, secret)
    return r


def timed(fn):
    start = time.monotonic()
    resp = fn()
    return resp, time.monotonic() - start


def test_echoes_are_capped(raw):
    """Without credentials: each answer is small and names the right error."""
    resp, took = timed(lambda: raw.call("DescribeStreamSummary", {"StreamName": HUGE_NAME}))
    assert resp.error_type == "ValidationException", resp
    assert len(resp.content) < ANSWER_BYTES_MAX, len(resp.content)
    assert f"Value '{'a' * 256}… (15728640 bytes)' at 'streamName' failed to satisfy constraint: " \
           "Member must have length less than or equal to 128" in resp.message
    assert took < 10, took

    # 501 records of ~26 KB of base64 each: ~13 MB of request, once echoed whole.
    data = "QUJD" * 6500
    records = [{"Data": data, "PartitionKey": "k"} for _ in range(501)]
    resp = raw.call("PutRecords", {"StreamName": "s", "Records": records})
    assert resp.error_type == "ValidationException", resp
    assert len(resp.content) < ANSWER_BYTES_MAX, len(resp.content)
    assert resp.message.endswith(
        "' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500")
    assert " bytes)' at 'records'" in resp.message

    bad = "A" * (10 * 1024 * 1024 - 1) + "!"
    resp = raw.call("PutRecord", {"StreamName": "s", "PartitionKey": "k", "Data": bad})
    assert resp.error_type == "SerializationException", resp
    assert len(resp.content) < ANSWER_BYTES_MAX, len(resp.content)
    assert resp.message == f"'{'A' * 256}… (10485760 bytes)' can not be converted to a Blob: " \
                           "Invalid Base64 character: '!'"


@pytest.mark.parametrize("op,extra", [
    ("ListShards", {}),
    ("ListStreams", {}),
    ("ListStreamConsumers", {"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s"}),
])
def test_next_token_echo_is_capped(raw, op, extra):
    """A NextToken may be 1 MiB long (the model's limit): a forged one is refused without being
    repeated whole (it was, 1 MiB per answer)."""
    token = "t" * (1024 * 1024)
    resp = raw.call(op, {**extra, "NextToken": token})
    assert resp.error_type in ("InvalidArgumentException", "ExpiredNextTokenException", "ResourceNotFoundException"), resp
    assert len(resp.content) < ANSWER_BYTES_MAX, len(resp.content)


@pytest.fixture
def guarded(server_factory, tmp_path):
    creds = tmp_path / "credentials.toml"
    creds.write_text(CREDENTIALS)
    audit = tmp_path / "audit" / "audit.log"
    srv = server_factory(ephemeral=True, args=[
        "--credentials", str(creds), "--audit-log", str(audit), "--create-stream-ms", "0",
        "--audit-max-bytes", str(FILE_BYTES_MAX), "--audit-keep", "1",
        "--audit-caller-burst-bytes", "16384", "--audit-caller-bytes-per-sec", "10"])
    return srv, audit


def audit_files(audit):
    d = audit.parent
    return sorted(p for p in d.iterdir() if p.is_file())


def events_of(paths):
    out = []
    for p in paths:
        for line in p.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def metric(srv, name, labels):
    text = requests.get(srv.endpoint + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{labels}}} not in /metrics")


def test_a_flood_cannot_erase_the_trail(guarded):
    srv, audit = guarded
    admin = client(srv, "AKIDADMIN", "admin-secret")
    admin.create_stream(StreamName=STREAM, ShardCount=1)
    wait_status(admin, STREAM)

    producer = raw_as(srv, "AKIDPRODUCER", "producer-secret")
    # Huge names: the answer is small and quick, whatever the caller may do (a malformed name is
    # a ValidationException before authorization, as on AWS).
    for _ in range(4):
        resp, took = timed(lambda: producer.call("DescribeStreamSummary", {"StreamName": HUGE_NAME}))
        assert resp.error_type == "ValidationException", resp
        assert len(resp.content) < ANSWER_BYTES_MAX, len(resp.content)
        assert took < 10, took
    # Denied calls with names of legal length: each is an entry of the main trail, ~1 KB.
    for i in range(150):
        resp = producer.call("DescribeStreamSummary", {"StreamName": f"{i:03d}" + "x" * 125})
        assert resp.error_type == "AccessDeniedException", resp
        assert len(resp.content) < ANSWER_BYTES_MAX
    # Unauthenticated noise with huge names.
    stranger = raw_as(srv, "AKIDNOBODY", "nope")
    for _ in range(2):
        resp = stranger.call("DescribeStreamSummary", {"StreamName": HUGE_NAME})
        assert resp.error_type == "UnrecognizedClientException", resp
        assert len(resp.content) < ANSWER_BYTES_MAX

    noise = audit.with_name("audit-noise.log")
    deadline = time.time() + 10
    while time.time() < deadline:
        evs = events_of([noise]) if noise.exists() else []
        if len([e for e in evs if e.get("errorCode") == "UnrecognizedClientException"]) >= 2:
            break
        time.sleep(0.1)
    main = [p for p in audit_files(audit) if p.name.startswith("audit.log")]
    main_events = events_of(main)
    creates = [e for e in main_events if e.get("eventName") == "CreateStream"]
    assert creates and creates[0]["userIdentity"]["arn"] == user("admin"), [p.name for p in main]
    assert creates[0]["requestParameters"]["StreamName"] == STREAM
    for p in audit_files(audit):
        assert p.stat().st_size <= FILE_BYTES_MAX, (p.name, p.stat().st_size)
        for line in p.read_text().splitlines():
            assert len(line.encode()) < 16 * 1024, (p.name, len(line))
    # Malformed and unauthenticated requests are in the noise file, not the main trail.
    assert not [e for e in main_events if e.get("errorCode") in ("ValidationException", "UnrecognizedClientException")]
    noise_events = events_of([noise])
    assert [e for e in noise_events if e.get("errorCode") == "UnrecognizedClientException"]
    assert [e for e in noise_events if e.get("errorCode") == "ValidationException"
            and e["userIdentity"].get("arn") == user("producer")]
    # The producer's denials went over its budget: counted, visible to an alert.
    denied = [e for e in main_events if e.get("errorCode") == "AccessDeniedException"]
    assert 0 < len(denied) < 150
    assert metric(srv, "kinesin_audit_suppressed_total", 'reason="principal_budget"') >= 150 - len(denied)


def test_authorization_before_validation(guarded):
    srv, audit = guarded
    admin = client(srv, "AKIDADMIN", "admin-secret")
    admin.create_stream(StreamName=STREAM, ShardCount=1)
    wait_status(admin, STREAM)
    producer = raw_as(srv, "AKIDPRODUCER", "producer-secret")
    records = [{"Data": "QUJD" * 6500, "PartitionKey": "k"} for _ in range(501)]
    # Not allowed PutRecords: denied before its 501 records are looked at.
    resp, took = timed(lambda: producer.call("PutRecords", {"StreamName": STREAM, "Records": records}))
    assert resp.error_type == "AccessDeniedException", resp
    assert resp.message == (f"User: {user('producer')} is not authorized to perform: kinesis:PutRecords on "
                            f"resource: {stream_arn(STREAM)} because no identity-based policy allows the "
                            "kinesis:PutRecords action")
    assert len(resp.content) < ANSWER_BYTES_MAX
    # A malformed name is a ValidationException for anyone, as on AWS.
    resp = producer.call("DescribeStreamSummary", {"StreamName": "a b"})
    assert resp.error_type == "ValidationException", resp
    # Allowed PutRecord: validated as before.
    resp = producer.call("PutRecord", {"StreamName": STREAM, "PartitionKey": "", "Data": "eA=="})
    assert resp.error_type == "ValidationException", resp
    assert "at 'partitionKey' failed to satisfy constraint" in resp.message
    # The admin gets the validation error of the 501 records, small.
    resp = raw_as(srv, "AKIDADMIN", "admin-secret").call("PutRecords", {"StreamName": STREAM, "Records": records})
    assert resp.error_type == "ValidationException", resp
    assert len(resp.content) < ANSWER_BYTES_MAX
    with pytest.raises(ClientError) as e:
        client(srv, "AKIDPRODUCER", "producer-secret").describe_stream_summary(StreamName=STREAM)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
