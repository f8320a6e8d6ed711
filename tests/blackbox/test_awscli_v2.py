"""The unmodified AWS CLI v2 pointed at kinesin.

The venv's `aws` is the pip AWS CLI v1 (test_cli.py); v2 is not on PyPI, so this suite runs the
v2 that Debian packages (`apt-get install awscli`: /usr/bin/aws, 2.9), which scripts/test
installs. AWS_CLI_V2 names another v2 binary. v2 differs from v1 where users trip: `--data` of
put-record / put-records is base64 by default (`--cli-binary-format raw-in-base64-out` takes
raw text), and an error the service returned exits 254 (v1: 255).
"""

import base64
import json
import os
import re
import subprocess
from datetime import datetime, timezone

import pytest

from kutil import ACCESS_KEY, ACCOUNT, MAX_HASH, REGION, SECRET_KEY, not_found_msg, stream_arn, unique_name

RAW = ["--cli-binary-format", "raw-in-base64-out"]


def _version(path):
    try:
        p = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60,
                           env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")})
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (p.stdout + p.stderr).strip()


def aws_v2_binary():
    """The first `aws` that says aws-cli/2.x: AWS_CLI_V2, /usr/bin/aws, then PATH."""
    candidates = [os.environ.get("AWS_CLI_V2"), "/usr/bin/aws", "/usr/local/bin/aws"]
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d:
            candidates.append(os.path.join(d, "aws"))
    seen = []
    for c in candidates:
        if not c or c in seen or not (os.path.isfile(c) and os.access(c, os.X_OK)):
            continue
        seen.append(c)
        v = _version(c)
        if v.startswith("aws-cli/2."):
            return c, v.split()[0]
    found = ", ".join(f"{c} ({_version(c).split(' ')[0] or '?'})" for c in seen) or "none"
    pytest.skip(f"AWS CLI v2 not installed (found: {found}); install it with "
                "`apt-get install awscli` (Debian 12: 2.9) or name it in AWS_CLI_V2")


@pytest.fixture(scope="module")
def aws2(server, tmp_path_factory):
    binary, version = aws_v2_binary()
    home = tmp_path_factory.mktemp("awsv2home")
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
        "AWS_CLI_AUTO_PROMPT": "off",
    }
    base = [binary, "--endpoint-url", server.endpoint, "--output", "json", "--no-cli-pager", "kinesis"]

    def run(*args, check=True):
        p = subprocess.run(base + list(args), env=env, capture_output=True, text=True, timeout=120,
                           cwd=str(home))
        if check:
            assert p.returncode == 0, f"aws {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
        return p

    run.version = version
    run.home = home
    return run


def out(p):
    return json.loads(p.stdout) if p.stdout.strip() else None


def err_line(code, operation, message=""):
    """v2's line for an error the service returned; with retries it names them, e.g. `(reached
    max retries: 0)` under AWS_MAX_ATTEMPTS=1."""
    return re.compile(
        rf"An error occurred \({code}\) when calling the {operation} operation"
        rf"(?: \(reached max retries: \d+\))?: {re.escape(message)}"
    )


def create_and_wait(aws2, shards):
    name = unique_name("cli2")
    p = aws2("create-stream", "--stream-name", name, "--shard-count", str(shards))
    assert p.stdout.strip() == ""
    aws2("wait", "stream-exists", "--stream-name", name)
    return name


@pytest.fixture(scope="module")
def shared(aws2):
    """One 2-shard stream for the put/get tests (each reads from its own put's sequence number)."""
    name = create_and_wait(aws2, 2)
    yield name
    aws2("delete-stream", "--stream-name", name, check=False)


def read(aws2, name, seq, n, shard="shardId-000000000000"):
    """The n records of `shard` from sequence number `seq` on (AT_SEQUENCE_NUMBER)."""
    it = out(aws2("get-shard-iterator", "--stream-name", name, "--shard-id", shard,
                  "--shard-iterator-type", "AT_SEQUENCE_NUMBER", "--starting-sequence-number", seq))["ShardIterator"]
    recs = []
    for _ in range(10):
        page = out(aws2("get-records", "--shard-iterator", it, "--limit", str(n - len(recs))))
        recs += page["Records"]
        if len(recs) >= n:
            break
        it = page["NextShardIterator"]
    assert len(recs) == n, recs
    return recs


def test_v2_is_version_2(aws2):
    assert aws2.version.startswith("aws-cli/2."), aws2.version


def test_v2_stream_lifecycle(aws2):
    """create-stream, wait stream-exists, describe-stream-summary, list-streams, delete-stream,
    wait stream-not-exists."""
    name = create_and_wait(aws2, 2)
    try:
        summ = out(aws2("describe-stream-summary", "--stream-name", name))["StreamDescriptionSummary"]
        assert summ["StreamStatus"] == "ACTIVE"
        assert summ["OpenShardCount"] == 2
        assert summ["StreamARN"] == stream_arn(name)
        assert summ["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        # v2 paginates list-streams by itself; --page-size 1 makes it follow NextToken.
        listed = out(aws2("list-streams", "--page-size", "1"))
        assert name in listed["StreamNames"]
        assert name in [s["StreamName"] for s in listed["StreamSummaries"]]
    finally:
        p = aws2("delete-stream", "--stream-name", name, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ""
    aws2("wait", "stream-not-exists", "--stream-name", name)
    p = aws2("describe-stream-summary", "--stream-name", name, check=False)
    assert p.returncode == 254
    assert err_line("ResourceNotFoundException", "DescribeStreamSummary", not_found_msg(name)).search(p.stderr)


def test_v2_put_record_raw_in_base64_out(aws2, shared):
    """`--cli-binary-format raw-in-base64-out`: --data is the record's text as typed."""
    put = out(aws2("put-record", "--stream-name", shared, "--partition-key", "k", "--data", "héllo v2 ✓",
                   "--explicit-hash-key", "0", *RAW))
    assert put["ShardId"] == "shardId-000000000000"
    assert len(put["SequenceNumber"]) == 56 and put["SequenceNumber"].isdigit()
    assert put["EncryptionType"] == "NONE"
    [rec] = read(aws2, shared, put["SequenceNumber"], 1)
    assert (rec["SequenceNumber"], rec["PartitionKey"], base64.b64decode(rec["Data"])) == (
        put["SequenceNumber"], "k", "héllo v2 ✓".encode())
    # v2 prints timestamps as ISO 8601 (v1: epoch seconds).
    arrived = datetime.fromisoformat(rec["ApproximateArrivalTimestamp"])
    assert abs((datetime.now(timezone.utc) - arrived).total_seconds()) < 300, rec["ApproximateArrivalTimestamp"]


def test_v2_put_record_default_is_base64(aws2, shared):
    """v2's default `--cli-binary-format base64`: --data aGVsbG8= stores the five bytes `hello`
    (v1 stores the eight characters), and a value that is not base64 never leaves the CLI."""
    put = out(aws2("put-record", "--stream-name", shared, "--partition-key", "k", "--data", "aGVsbG8=",
                   "--explicit-hash-key", "0"))
    [rec] = read(aws2, shared, put["SequenceNumber"], 1)
    assert base64.b64decode(rec["Data"]) == b"hello"

    p = aws2("put-record", "--stream-name", shared, "--partition-key", "k", "--data", "not base64!", check=False)
    assert p.returncode == 255, (p.returncode, p.stderr)
    assert "Invalid base64" in p.stderr, p.stderr


def test_v2_put_record_fileb_binary(aws2, shared):
    """fileb:// sends a file's bytes as they are: all 256 byte values come back unchanged."""
    blob = bytes(range(256)) * 4
    path = aws2.home / "blob.bin"
    path.write_bytes(blob)
    put = out(aws2("put-record", "--stream-name", shared, "--partition-key", "bin", "--data", f"fileb://{path}",
                   "--explicit-hash-key", "0"))
    [rec] = read(aws2, shared, put["SequenceNumber"], 1)
    assert base64.b64decode(rec["Data"]) == blob


def test_v2_put_records_and_get_records(aws2, shared):
    # Shorthand with raw text, and a JSON file with base64 data (v2's default format).
    r1 = out(aws2("put-records", "--stream-name", shared, *RAW, "--records",
                  "Data=one,PartitionKey=a,ExplicitHashKey=0",
                  f"Data=two,PartitionKey=b,ExplicitHashKey={MAX_HASH}"))
    entries = [{"Data": base64.b64encode(f"json-{i}".encode()).decode(), "PartitionKey": f"p{i}",
                "ExplicitHashKey": "0"} for i in range(5)]
    (aws2.home / "records.json").write_text(json.dumps(entries))
    r2 = out(aws2("put-records", "--stream-name", shared, "--records", "file://records.json"))
    for r, n in ((r1, 2), (r2, 5)):
        assert r["FailedRecordCount"] == 0
        assert len(r["Records"]) == n
        assert all("ErrorCode" not in e for e in r["Records"])
    assert [e["ShardId"] for e in r1["Records"]] == ["shardId-000000000000", "shardId-000000000001"]
    assert {e["ShardId"] for e in r2["Records"]} == {"shardId-000000000000"}

    shard0 = read(aws2, shared, r1["Records"][0]["SequenceNumber"], 6)
    assert [(r["SequenceNumber"], r["PartitionKey"], base64.b64decode(r["Data"])) for r in shard0] == [
        (r1["Records"][0]["SequenceNumber"], "a", b"one")
    ] + [(e["SequenceNumber"], f"p{i}", f"json-{i}".encode()) for i, e in enumerate(r2["Records"])]
    shard1 = read(aws2, shared, r1["Records"][1]["SequenceNumber"], 1, shard="shardId-000000000001")
    assert [(r["SequenceNumber"], r["PartitionKey"], base64.b64decode(r["Data"])) for r in shard1] == [
        (r1["Records"][1]["SequenceNumber"], "b", b"two")
    ]


def test_v2_split_shard_list_shards(aws2):
    name = create_and_wait(aws2, 1)
    try:
        mid = 2**127
        p = aws2("split-shard", "--stream-name", name, "--shard-to-split", "shardId-000000000000",
                 "--new-starting-hash-key", str(mid))
        assert p.stdout.strip() == ""
        aws2("wait", "stream-exists", "--stream-name", name)
        shards = out(aws2("list-shards", "--stream-name", name))["Shards"]
        assert [s["ShardId"] for s in shards] == [f"shardId-00000000000{i}" for i in range(3)]
        parent, lo, hi = shards
        assert "EndingSequenceNumber" in parent["SequenceNumberRange"]
        assert lo["ParentShardId"] == hi["ParentShardId"] == "shardId-000000000000"
        assert lo["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(mid - 1)}
        assert hi["HashKeyRange"] == {"StartingHashKey": str(mid), "EndingHashKey": str(MAX_HASH)}
        assert "EndingSequenceNumber" not in lo["SequenceNumberRange"]
        latest = out(aws2("list-shards", "--stream-name", name, "--shard-filter", "Type=AT_LATEST"))["Shards"]
        assert [s["ShardId"] for s in latest] == ["shardId-000000000001", "shardId-000000000002"]
        # v2 pages describe-stream by itself (ExclusiveStartShardId, HasMoreShards).
        desc = out(aws2("describe-stream", "--stream-name", name, "--page-size", "1"))["StreamDescription"]
        assert [s["ShardId"] for s in desc["Shards"]] == [s["ShardId"] for s in shards]
        assert desc["StreamStatus"] == "ACTIVE"
    finally:
        aws2("delete-stream", "--stream-name", name, check=False)


def test_v2_not_found_exit_254(aws2):
    name = unique_name("cli2nf")
    p = aws2("describe-stream-summary", "--stream-name", name, check=False)
    assert p.returncode == 254, (p.returncode, p.stderr)
    assert p.stdout.strip() == ""
    assert err_line("ResourceNotFoundException", "DescribeStreamSummary", not_found_msg(name)).search(p.stderr), p.stderr
    p = aws2("put-record", "--stream-name", name, "--partition-key", "k", "--data", "eA==", check=False)
    assert p.returncode == 254
    assert err_line("ResourceNotFoundException", "PutRecord", not_found_msg(name)).search(p.stderr), p.stderr


def test_v2_validation_errors(aws2, shared):
    # A stream name outside the model's pattern: the CLI does not check patterns, the server does.
    p = aws2("describe-stream-summary", "--stream-name", "bad name", check=False)
    assert p.returncode == 254, (p.returncode, p.stderr)
    assert err_line("ValidationException", "DescribeStreamSummary", (
        "1 validation error detected: Value 'bad name' at 'streamName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")).search(p.stderr), p.stderr
    # A hash key the shard does not own: InvalidArgumentException.
    p = aws2("split-shard", "--stream-name", shared, "--shard-to-split", "shardId-000000000000",
             "--new-starting-hash-key", "0", check=False)
    assert p.returncode == 254, (p.returncode, p.stderr)
    assert err_line("InvalidArgumentException", "SplitShard").search(p.stderr), p.stderr
    # Parameters the CLI validates itself never reach the server: exit 252.
    p = aws2("create-stream", "--stream-name", unique_name("cli2v"), "--shard-count", "0", check=False)
    assert p.returncode == 252, (p.returncode, p.stderr)
