"""Shared helpers for the kinesin black-box suite.

Everything here talks to the real `kinesin serve` binary over loopback:
boto3 clients, a raw signed-HTTP helper, and a small process manager used
for the session server and for restart / kill -9 tests.
"""

import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "000000000000"
REGION = "us-east-1"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TARGET_PREFIX = "Kinesis_20131202."
AMZ_JSON = "application/x-amz-json-1.1"
MAX_HASH = 2**128 - 1
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SEQ_RE = re.compile(r"^\d{56}$")


def kinesin_bin():
    path = os.environ.get("KINESIN_BIN") or str(REPO / "target" / "release" / "kinesin")
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stream_arn(name, region=REGION, account=ACCOUNT):
    return f"arn:aws:kinesis:{region}:{account}:stream/{name}"


def not_found_msg(name, account=ACCOUNT):
    return f"Stream {name} under account {account} not found."


def unique_name(prefix="s"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def md5_hash_key(partition_key):
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def even_ranges(n):
    """The hash key ranges AWS assigns to an n-shard stream at creation."""
    step = 2**128 // n
    out = []
    for i in range(n):
        start = i * step
        end = MAX_HASH if i == n - 1 else (i + 1) * step - 1
        out.append((start, end))
    return out


def shard_id(i):
    return f"shardId-{i:012d}"


def shard_for_hash(shards, h):
    for s in shards:
        r = s["HashKeyRange"]
        if int(r["StartingHashKey"]) <= h <= int(r["EndingHashKey"]):
            return s["ShardId"]
    raise AssertionError(f"no shard covers {h}")


class Server:
    """A `kinesin serve` process on a free loopback port."""

    def __init__(self, data_dir=None, ephemeral=False, args=(), env=None, port=None, log_dir=None):
        self.data_dir = data_dir
        self.ephemeral = ephemeral
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.port = port or free_port()
        self.proc = None
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="kinesin-log-"))
        self.log_path = None
        self._starts = 0

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def command(self):
        cmd = [kinesin_bin(), "serve"]
        if "KINESIN_LISTEN" in self.extra_env:
            self.port = int(self.extra_env["KINESIN_LISTEN"].rsplit(":", 1)[1])
        else:
            cmd += ["--listen", f"127.0.0.1:{self.port}"]
        if self.ephemeral:
            cmd.append("--ephemeral")
        elif self.data_dir is not None:
            cmd += ["--data-dir", str(self.data_dir)]
        return cmd + self.args

    def start(self, timeout=30.0):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        binary = kinesin_bin()
        if not os.path.exists(binary):
            raise RuntimeError(f"kinesin binary not found at {binary} (set KINESIN_BIN)")
        self._starts += 1
        self.log_path = self.log_dir / f"kinesin-{self.port}-{self._starts}.log"
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"kinesin exited with {self.proc.returncode} during startup:\n{self.log_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"kinesin did not accept connections within {timeout}s:\n{self.log_text()}")

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except Exception:
            return "<no log>"

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Graceful stop; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"kinesin did not exit within {timeout}s of {sig!r}")
        finally:
            self._log.close()
        return rc

    def kill(self):
        """kill -9."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self._log.close()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self, **cfg):
        return make_client(self.endpoint, **cfg)

    def raw(self):
        return RawClient(self.endpoint)


def make_client(endpoint, validate=False, retries=False, timeout=60):
    config = Config(
        region_name=REGION,
        retries={"total_max_attempts": 5 if retries else 1, "mode": "standard"},
        parameter_validation=validate,
        connect_timeout=5,
        read_timeout=timeout,
    )
    return boto3.session.Session().client(
        "kinesis",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=config,
    )


class RawResponse:
    def __init__(self, resp):
        self.status = resp.status_code
        self.headers = resp.headers
        self.text = resp.text
        self.content = resp.content
        try:
            self.json = json.loads(resp.text) if resp.text else None
        except ValueError:
            self.json = None

    @property
    def error_type(self):
        if isinstance(self.json, dict):
            t = self.json.get("__type", "")
            return t.split("#")[-1].split(":")[0]
        return None

    @property
    def message(self):
        if isinstance(self.json, dict):
            return self.json.get("message", self.json.get("Message"))
        return None

    def __repr__(self):
        return f"<RawResponse {self.status} {self.text[:500]!r}>"


class RawClient:
    """Signed (or deliberately unsigned/malformed) HTTP requests."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.session = requests.Session()
        self.creds = Credentials(ACCESS_KEY, SECRET_KEY)

    def request(self, target=None, body=b"{}", content_type=AMZ_JSON, sign=True, headers=None, path="/",
                method="POST"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        hdrs = {}
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        if target is not None:
            hdrs["X-Amz-Target"] = target
        url = self.endpoint + path
        if sign:
            req = AWSRequest(method=method, url=url, data=body, headers=hdrs)
            SigV4Auth(self.creds, "kinesis", REGION).add_auth(req)
            hdrs = dict(req.headers.items())
        if headers:
            hdrs.update(headers)
        resp = self.session.request(method, url, data=body, headers=hdrs, timeout=60)
        return RawResponse(resp)

    def call(self, op, body=None, **kw):
        return self.request(TARGET_PREFIX + op, body if body is not None else {}, **kw)


# ---------------------------------------------------------------- assertions

def assert_error(resp, error_type, message=None, status=400):
    """Assert a raw response is an AWS-shaped error."""
    assert resp.status == status, resp
    assert resp.error_type == error_type, resp
    hdr = resp.headers.get("x-amzn-ErrorType")
    assert hdr is not None, "x-amzn-ErrorType header missing"
    assert hdr.split(":")[0].split("#")[-1] == error_type
    assert resp.headers.get("x-amzn-RequestId"), "x-amzn-RequestId missing"
    if message is not None:
        if isinstance(message, re.Pattern):
            assert message.search(resp.message or ""), f"{resp.message!r} !~ {message.pattern!r}"
        else:
            assert resp.message == message, f"{resp.message!r} != {message!r}"


def assert_validation(resp, expected):
    """AWS coral validation error: "N validation error(s) detected: A; B; ...".

    `expected` is a list of the individual error strings (or compiled regexes);
    AWS does not promise an order, so any order is accepted.
    """
    assert_error(resp, "ValidationException")
    msg = resp.message
    n = len(expected)
    prefix = f"{n} validation error{'s' if n != 1 else ''} detected: "
    assert msg.startswith(prefix), f"{msg!r} does not start with {prefix!r}"
    rest = msg[len(prefix):]
    remaining = list(expected)
    while remaining:
        for i, exp in enumerate(remaining):
            if isinstance(exp, re.Pattern):
                m = exp.match(rest)
                if m:
                    rest = rest[m.end():]
                    break
            elif rest.startswith(exp):
                rest = rest[len(exp):]
                break
        else:
            raise AssertionError(f"could not match {rest!r} against any of {remaining!r} (full: {msg!r})")
        remaining.pop(i)
        if rest.startswith("; "):
            rest = rest[2:]
    assert rest == "", f"unexpected trailing text {rest!r} in {msg!r}"


ECHO_CHARS_MAX = 256


def echo(value):
    """A value as kinesin's error messages repeat it (issue 13): at most 256 characters, then
    `… (N bytes)` with the value's full length in UTF-8 bytes. AWS repeats it whole."""
    value = str(value)
    if len(value) <= ECHO_CHARS_MAX:
        return value
    return f"{value[:ECHO_CHARS_MAX]}… ({len(value.encode())} bytes)"


def v_null(member):
    return f"Value null at '{member}' failed to satisfy constraint: Member must not be null"


def v_min_len(value, member, n=1):
    return f"Value '{echo(value)}' at '{member}' failed to satisfy constraint: Member must have length greater than or equal to {n}"


def v_max_len(value, member, n):
    return f"Value '{echo(value)}' at '{member}' failed to satisfy constraint: Member must have length less than or equal to {n}"


def v_min(value, member, n):
    return f"Value '{echo(value)}' at '{member}' failed to satisfy constraint: Member must have value greater than or equal to {n}"


def v_max(value, member, n):
    return f"Value '{echo(value)}' at '{member}' failed to satisfy constraint: Member must have value less than or equal to {n}"


def v_pattern(value, member, pattern):
    return f"Value '{echo(value)}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"


def v_pattern_any(value, member, pattern):
    """Pattern errors for HashKey / SequenceNumber: the 2020-era captures print the bare pattern,
    the newest service model anchors it (^(...)$); either rendering is accepted."""
    anchored = f"^({pattern})$"
    head = f"Value '{echo(value)}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: "
    return re.compile(re.escape(head) + "(?:" + re.escape(anchored) + "|" + re.escape(pattern) + ")(?=; |$)")


def v_enum(value, member, values):
    """Enum errors list the allowed values in an unspecified (Java set) order."""
    alts = "|".join(re.escape(v) for v in values)
    inner = rf"(?:{alts})(?:, (?:{alts})){{{len(values) - 1}}}"
    return re.compile(
        re.escape(f"Value '{echo(value)}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: [")
        + inner + re.escape("]")
    )


NAME_PATTERN = "[a-zA-Z0-9_.-]+"
HASH_PATTERN = "0|([1-9]\\d{0,38})"
SEQ_PATTERN = "0|([1-9]\\d{0,128})"
ITERATOR_TYPES = ["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]


def client_error(excinfo):
    err = excinfo.value.response["Error"]
    return err.get("Code"), err.get("Message")


def expect_client_error(fn, code, message=None, **kwargs):
    try:
        fn(**kwargs)
    except ClientError as e:
        got_code = e.response["Error"].get("Code")
        got_msg = e.response["Error"].get("Message")
        assert got_code == code, f"expected {code}, got {got_code}: {got_msg}"
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == 400, f"expected HTTP 400, got {status}"
        if message is not None:
            if isinstance(message, re.Pattern):
                assert message.search(got_msg or ""), f"{got_msg!r} !~ {message.pattern!r}"
            else:
                assert got_msg == message, f"{got_msg!r} != {message!r}"
        return e
    raise AssertionError(f"expected {code}, call succeeded")


# ---------------------------------------------------------------- stream helpers

def wait_status(client, name, status="ACTIVE", timeout=15.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
        if last == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"stream {name} stuck in {last}, wanted {status}")


def wait_gone(client, name, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            client.describe_stream_summary(StreamName=name)
        except ClientError as e:
            if e.response["Error"]["Code"] == "ResourceNotFoundException":
                return
            raise
        time.sleep(0.05)
    raise AssertionError(f"stream {name} still exists after delete")


def list_all_shards(client, name):
    shards = []
    resp = client.list_shards(StreamName=name)
    shards += resp["Shards"]
    while resp.get("NextToken"):
        resp = client.list_shards(NextToken=resp["NextToken"])
        shards += resp["Shards"]
    return shards


def read_shard(client, name, sid, iterator_type="TRIM_HORIZON", limit=None, max_calls=1000, **extra):
    """Read until caught up (an empty page at MillisBehindLatest == 0)."""
    it = client.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType=iterator_type, **extra)[
        "ShardIterator"
    ]
    out = []
    for _ in range(max_calls):
        kw = {"ShardIterator": it}
        if limit:
            kw["Limit"] = limit
        resp = client.get_records(**kw)
        out += resp["Records"]
        it = resp.get("NextShardIterator")
        if not it or (not resp["Records"] and resp.get("MillisBehindLatest", 0) == 0):
            break
    return out


def b64(data):
    return base64.b64encode(data).decode()
