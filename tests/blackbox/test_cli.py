"""The unmodified AWS CLI pointed at kinesin."""

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kutil import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY, stream_arn, unique_name


def aws_binary():
    cand = Path(sys.executable).parent / "aws"
    if cand.exists():
        return [str(cand)]
    found = shutil.which("aws")
    if found:
        return [found]
    pytest.skip("AWS CLI not installed")


@pytest.fixture(scope="module")
def aws(server, tmp_path_factory):
    home = tmp_path_factory.mktemp("awshome")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }
    base = aws_binary() + ["--endpoint-url", server.endpoint, "--output", "json", "kinesis"]

    def run(*args, check=True):
        p = subprocess.run(base + list(args), env=env, capture_output=True, text=True, timeout=120)
        if check:
            assert p.returncode == 0, f"aws {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
        return p

    return run


def out(p):
    return json.loads(p.stdout) if p.stdout.strip() else None


def test_cli_stream_roundtrip(aws):
    name = unique_name("cli")
    p = aws("create-stream", "--stream-name", name, "--shard-count", "2")
    assert p.stdout.strip() == ""
    try:
        aws("wait", "stream-exists", "--stream-name", name)
        summ = out(aws("describe-stream-summary", "--stream-name", name))["StreamDescriptionSummary"]
        assert summ["StreamStatus"] == "ACTIVE"
        assert summ["OpenShardCount"] == 2
        assert summ["StreamARN"] == stream_arn(name)

        desc = out(aws("describe-stream", "--stream-name", name))["StreamDescription"]
        assert [s["ShardId"] for s in desc["Shards"]] == ["shardId-000000000000", "shardId-000000000001"]

        assert name in out(aws("list-streams"))["StreamNames"]
        shards = out(aws("list-shards", "--stream-name", name))["Shards"]
        assert len(shards) == 2

        put = out(aws("put-record", "--stream-name", name, "--partition-key", "k", "--data", "hello-cli",
                      "--explicit-hash-key", "0"))
        assert put["ShardId"] == "shardId-000000000000"
        it = out(aws("get-shard-iterator", "--stream-name", name, "--shard-id", "shardId-000000000000",
                     "--shard-iterator-type", "TRIM_HORIZON"))["ShardIterator"]
        recs = out(aws("get-records", "--shard-iterator", it))
        assert len(recs["Records"]) == 1
        rec = recs["Records"][0]
        assert rec["SequenceNumber"] == put["SequenceNumber"]
        assert rec["PartitionKey"] == "k"
        assert base64.b64decode(rec["Data"]) == b"hello-cli"
        assert recs["NextShardIterator"]

        aws("add-tags-to-stream", "--stream-name", name, "--tags", "team=cli")
        assert out(aws("list-tags-for-stream", "--stream-name", name))["Tags"] == [{"Key": "team", "Value": "cli"}]
    finally:
        p = aws("delete-stream", "--stream-name", name, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ""
    aws("wait", "stream-not-exists", "--stream-name", name)


def test_cli_put_records(aws):
    name = unique_name("clib")
    aws("create-stream", "--stream-name", name, "--shard-count", "1")
    try:
        aws("wait", "stream-exists", "--stream-name", name)
        r = out(aws("put-records", "--stream-name", name, "--records",
                    "Data=one,PartitionKey=a", "Data=two,PartitionKey=b"))
        assert r["FailedRecordCount"] == 0
        assert len(r["Records"]) == 2
    finally:
        aws("delete-stream", "--stream-name", name, check=False)


def test_cli_not_found_error(aws):
    name = unique_name("clinf")
    p = aws("describe-stream", "--stream-name", name, check=False)
    assert p.returncode != 0
    assert "ResourceNotFoundException" in p.stderr
    assert f"Stream {name} under account {ACCOUNT} not found." in p.stderr


def test_cli_validation_error(aws):
    p = aws("describe-stream", "--stream-name", "bad name", check=False)
    assert p.returncode != 0
    assert "ValidationException" in p.stderr
    assert "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+" in p.stderr


def test_cli_describe_limits(aws):
    lim = out(aws("describe-limits"))
    assert lim["ShardLimit"] >= 1
