"""The audit trail's line format (docs/format.md, "Audit trail") against its committed fixture.

kinesin never reads the trail back, but people and tools do: `tests/fixtures/format/audit/`
holds a main-trail line (CreateStream, a success) and a noise-trail line (an authentication
failure) as the current code writes them. The current binary must write lines with the same
`eventVersion` and the same members (nested ones included), so a change to the trail's layout
is a deliberate one: bump `eventVersion` if it is incompatible, and regenerate the fixture with
`KINESIN_REGENERATE_FIXTURES=1 pytest tests/blackbox/test_format_audit.py`.
"""

import json
import os
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kutil import REGION, REPO

FIXTURE = REPO / "tests" / "fixtures" / "format" / "audit"
CREDENTIALS = """
[[principal]]
arn = "arn:aws:iam::000000000000:user/auditor"
access_key_id = "AKIDAUDITOR"
secret_access_key = "auditor-secret"
"""


def client(srv, secret="auditor-secret"):
    return boto3.session.Session().client(
        "kinesis", endpoint_url=srv.endpoint, region_name=REGION, aws_access_key_id="AKIDAUDITOR",
        aws_secret_access_key=secret, config=Config(retries={"total_max_attempts": 1}))


def lines(path, timeout=10.0):
    """The trail's lines once there is one (the writer thread appends them asynchronously)."""
    deadline = time.time() + timeout
    while True:
        found = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
        if found or time.time() > deadline:
            return found
        time.sleep(0.05)


def shape(value):
    """The members of a line, nested, without their values (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ if value is not None else None


def test_the_audit_trail_keeps_its_line_format(server_factory, tmp_path):
    creds = tmp_path / "creds.toml"
    creds.write_text(CREDENTIALS)
    audit = tmp_path / "audit.log"
    srv = server_factory(ephemeral=True, args=["--credentials", str(creds), "--audit-log", str(audit)])
    client(srv).create_stream(StreamName="audited", ShardCount=1)
    with pytest.raises(ClientError):
        client(srv, secret="wrong").list_streams()
    main = [e for e in lines(audit) if e.get("eventName") == "CreateStream"]
    noise = [e for e in lines(audit.with_name("audit-noise.log")) if e.get("errorCode")]
    assert main and noise, (main, noise)
    written = {"main.json": main[0], "noise.json": noise[0]}
    if os.environ.get("KINESIN_REGENERATE_FIXTURES") == "1":
        FIXTURE.mkdir(parents=True, exist_ok=True)
        for name, line in written.items():
            (FIXTURE / name).write_text(json.dumps(line, indent=2, sort_keys=True) + "\n")
    for name, line in written.items():
        fixture = json.loads((FIXTURE / name).read_text())
        assert line["eventVersion"] == fixture["eventVersion"] == "1.09", name
        assert shape(line) == shape(fixture), f"{name}: the line's members changed:\n{line}\nvs\n{fixture}"
