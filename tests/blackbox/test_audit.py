"""The audit trail (issue 6): `--audit-log` writes one CloudTrail-like JSON line per control-plane
call and per authentication or authorization failure (authentication failures in the noise file
`<stem>-noise.<ext>` beside it, issue 13); `--audit-data-plane` adds data-plane calls; record data
never appears; the file rotates by size and keeps `--audit-keep` old files."""

import json
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kutil import ACCESS_KEY, REGION, SECRET_KEY, unique_name, wait_status

CREDENTIALS = f"""
[[principal]]
arn = "arn:aws:iam::000000000000:user/example"
access_key_id = "{ACCESS_KEY}"
secret_access_key = "{SECRET_KEY}"
"""


def client(srv, key=ACCESS_KEY, secret=SECRET_KEY):
    return boto3.session.Session().client(
        "kinesis", endpoint_url=srv.endpoint, region_name=REGION, aws_access_key_id=key,
        aws_secret_access_key=secret, config=Config(retries={"total_max_attempts": 1}))


def events(path, want, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        evs = [json.loads(line) for line in lines if line.strip()]
        if want(evs) or time.time() > deadline:
            return evs
        time.sleep(0.1)


def test_data_plane_and_auth_failures(server_factory, tmp_path):
    creds = tmp_path / "creds.toml"
    creds.write_text(CREDENTIALS)
    audit = tmp_path / "audit" / "audit.log"
    srv = server_factory(ephemeral=True, args=[
        "--credentials", str(creds), "--audit-log", str(audit), "--audit-data-plane",
        "--create-stream-ms", "0"])
    k = client(srv)
    name = unique_name("aud")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    k.put_record(StreamName=name, Data=b"top-secret-record", PartitionKey="pk")
    k.put_records(StreamName=name, Records=[{"Data": b"top-secret-2", "PartitionKey": "a"}] * 3)
    with pytest.raises(ClientError) as e:
        client(srv, secret="wrong").list_streams()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError):
        client(srv, key="AKIDNOBODY").describe_limits()

    # Authentication failures go to the noise file beside the trail (issue 13), never the trail.
    noise = audit.with_name("audit-noise.log")
    failures = events(noise, lambda es: len([x for x in es if x.get("errorCode")]) >= 2)
    trail = events(audit, lambda es: any(x["eventName"] == "PutRecords" for x in es))
    assert not [x for x in trail if x.get("errorCode")]
    evs = trail + failures
    by_name = {}
    for ev in evs:
        by_name.setdefault(ev["eventName"], []).append(ev)
    put = by_name["PutRecord"][0]
    assert put["requestParameters"] == {"StreamName": name, "PartitionKey": "pk"}
    assert put["managementEvent"] is False and put["readOnly"] is False
    assert by_name["PutRecords"][0]["requestParameters"] == {"StreamName": name, "RecordCount": 3}
    bad_sig = by_name["ListStreams"][0]
    assert bad_sig["errorCode"] == "InvalidSignatureException"
    assert bad_sig["userIdentity"]["accessKeyId"] == ACCESS_KEY and "arn" not in bad_sig["userIdentity"]
    unknown = by_name["DescribeLimits"][0]
    assert unknown["errorCode"] == "UnrecognizedClientException"
    assert unknown["userIdentity"]["accessKeyId"] == "AKIDNOBODY"
    create = by_name["CreateStream"][0]
    assert create["userIdentity"]["arn"] == "arn:aws:iam::000000000000:user/example"
    assert create["responseElements"] is None and "errorCode" not in create
    text = audit.read_text() + noise.read_text()
    assert "top-secret" not in text and "dG9wLXNlY3JldC" not in text


def test_rotation_and_no_credentials(server_factory, tmp_path, kinesis_factory=None):
    audit = tmp_path / "audit.log"
    srv = server_factory(ephemeral=True, args=[
        "--audit-log", str(audit), "--audit-max-bytes", "3000", "--audit-keep", "2"])
    k = client(srv)
    for _ in range(40):
        k.describe_limits()
    rotated = [audit.with_name(f"audit.log.{i}") for i in (1, 2, 3)]
    deadline = time.time() + 5
    while not rotated[1].exists() and time.time() < deadline:
        time.sleep(0.1)
    assert audit.exists() and rotated[0].exists() and rotated[1].exists()
    assert not rotated[2].exists()
    for f in [audit, *rotated[:2]]:
        assert f.stat().st_size <= 3000
        for line in f.read_text().splitlines():
            ev = json.loads(line)
            assert ev["eventName"] == "DescribeLimits"
            # Without --credentials nobody is verified: the key is recorded, the identity is unknown.
            assert ev["userIdentity"]["type"] == "Unknown" and ev["userIdentity"]["accessKeyId"] == ACCESS_KEY
    # Data-plane calls are not audited without --audit-data-plane.
    name = unique_name("aud")
    k.create_stream(StreamName=name, ShardCount=1)
    wait_status(k, name)
    k.put_record(StreamName=name, Data=b"x", PartitionKey="pk")
    k.add_tags_to_stream(StreamName=name, Tags={"t": "v"})
    evs = events(audit, lambda es: any(e["eventName"] == "AddTagsToStream" for e in es))
    names = [e["eventName"] for e in evs]
    assert "AddTagsToStream" in names and "PutRecord" not in names
