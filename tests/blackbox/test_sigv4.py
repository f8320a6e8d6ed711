"""Verified SigV4 (issue 6, authentication): a server started with `--credentials FILE` accepts
exactly the requests signed by one of its principals — over the bytes received, within five
minutes of its clock, for its region and `kinesis` — and refuses the rest with AWS's errors.
Without the flag any well-formed signature is accepted; the rest of the suite pins that."""

import datetime
import os
import subprocess
from unittest import mock

import pytest
import requests
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
import boto3

from kutil import ACCESS_KEY, AMZ_JSON, REGION, SECRET_KEY, TARGET_PREFIX, RawResponse, Server, assert_error
from test_cli import aws_binary

TEMP_KEY = "ASIATEMPEXAMPLE"
TEMP_SECRET = "temp/secret+EXAMPLE"
TEMP_TOKEN = "FwoGZXIvYXdzEXAMPLE//token+with/slashes="

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
UNRECOGNIZED = "The security token included in the request is invalid."

CREDENTIALS = f"""
[[principal]]
arn = "arn:aws:iam::000000000000:user/example"
access_key_id = "{ACCESS_KEY}"
secret_access_key = "{SECRET_KEY}"

[[principal]]
arn = "arn:aws:sts::000000000000:assumed-role/reader/session"
access_key_id = "{TEMP_KEY}"
secret_access_key = "{TEMP_SECRET}"
session_token = "{TEMP_TOKEN}"
"""


@pytest.fixture(scope="module")
def secured(tmp_path_factory, log_dir):
    path = tmp_path_factory.mktemp("creds") / "credentials.toml"
    path.write_text(CREDENTIALS)
    srv = Server(ephemeral=True, args=["--credentials", str(path), "--limits", "off"], log_dir=log_dir)
    srv.start()
    yield srv
    assert srv.stop() == 0


def client(srv, key=ACCESS_KEY, secret=SECRET_KEY, token=None, region=REGION):
    return boto3.session.Session().client(
        "kinesis",
        endpoint_url=srv.endpoint,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1}, parameter_validation=False),
    )


def error_of(call):
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def signed(srv, body=b"{}", op="ListStreams", key=ACCESS_KEY, secret=SECRET_KEY, token=None,
           service="kinesis", region=REGION, extra=None):
    """A botocore-signed request, not yet sent: (url, headers, body)."""
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body,
                     headers={"Content-Type": AMZ_JSON, "X-Amz-Target": TARGET_PREFIX + op, **(extra or {})})
    SigV4Auth(Credentials(key, secret, token), service, region).add_auth(req)
    return req.url, dict(req.headers.items()), body


def send(url, headers, body):
    return RawResponse(requests.post(url, data=body, headers=headers, timeout=30))


def test_boto3_with_the_right_keys_is_accepted(secured):
    kinesis = client(secured)
    kinesis.create_stream(StreamName="sig-ok", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="sig-ok", WaiterConfig={"Delay": 0.2})
    put = kinesis.put_record(StreamName="sig-ok", Data=b"signed \x00\xff", PartitionKey="k")
    it = kinesis.get_shard_iterator(StreamName="sig-ok", ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON")
    got = kinesis.get_records(ShardIterator=it["ShardIterator"])["Records"]
    assert [r["Data"] for r in got] == [b"signed \x00\xff"]


def test_session_token_principal(secured):
    assert "StreamNames" in client(secured, TEMP_KEY, TEMP_SECRET, TEMP_TOKEN).list_streams()
    assert error_of(lambda: client(secured, TEMP_KEY, TEMP_SECRET, TEMP_TOKEN + "x").list_streams()) == (
        "UnrecognizedClientException", UNRECOGNIZED)
    assert error_of(lambda: client(secured, TEMP_KEY, TEMP_SECRET).list_streams()) == (
        "UnrecognizedClientException", UNRECOGNIZED)
    # A token on a principal that has none.
    assert error_of(lambda: client(secured, token=TEMP_TOKEN).list_streams()) == (
        "UnrecognizedClientException", UNRECOGNIZED)


def test_wrong_secret_and_unknown_key(secured):
    assert error_of(lambda: client(secured, secret=SECRET_KEY + "x").list_streams()) == (
        "InvalidSignatureException", MISMATCH)
    assert error_of(lambda: client(secured, key="AKIDNOBODY").list_streams()) == (
        "UnrecognizedClientException", UNRECOGNIZED)


def test_wrong_region_or_service(secured):
    assert_error(send(*signed(secured, region="eu-west-1")), "InvalidSignatureException",
                 "Credential should be scoped to a valid region, not 'eu-west-1'.")
    assert_error(send(*signed(secured, service="dynamodb")), "InvalidSignatureException",
                 "Credential should be scoped to correct service: 'kinesis'.")


def test_stale_and_future_dates(secured):
    old = datetime.datetime.utcnow() - datetime.timedelta(minutes=6)
    with mock.patch("botocore.auth.get_current_datetime", return_value=old):
        resp = send(*signed(secured))
    assert_error(resp, "InvalidSignatureException")
    assert resp.message.startswith(f"Signature expired: {old.strftime('%Y%m%dT%H%M%SZ')} is now earlier than ")
    assert resp.message.endswith(" - 5 min.)")
    future = datetime.datetime.utcnow() + datetime.timedelta(minutes=6)
    with mock.patch("botocore.auth.get_current_datetime", return_value=future):
        resp = send(*signed(secured))
    assert_error(resp, "InvalidSignatureException")
    assert resp.message.startswith("Signature not yet current: ")
    # A fresh signature whose X-Amz-Date is then moved by seconds (same day, so the credential
    # scope still matches; within the window): the signature no longer matches.
    url, headers, body = signed(secured)
    date = headers["X-Amz-Date"]
    headers["X-Amz-Date"] = date[:13] + ("01" if date[13:15] == "00" else "00") + "Z"
    assert_error(send(url, headers, body), "InvalidSignatureException", MISMATCH)
    # Within the window is fine.
    recent = datetime.datetime.utcnow() - datetime.timedelta(minutes=4)
    with mock.patch("botocore.auth.get_current_datetime", return_value=recent):
        assert send(*signed(secured)).status == 200


def test_altered_body_or_signed_header(secured):
    url, headers, body = signed(secured, body=b'{"Limit": 5}')
    assert send(url, headers, body).status == 200
    assert_error(send(url, headers, b'{"Limit": 6}'), "InvalidSignatureException", MISMATCH)
    url, headers, body = signed(secured)
    headers["X-Amz-Target"] = TARGET_PREFIX + "DescribeLimits"
    assert_error(send(url, headers, body), "InvalidSignatureException", MISMATCH)
    # An unsigned header may change.
    url, headers, body = signed(secured)
    headers["User-Agent"] = "changed"
    assert send(url, headers, body).status == 200


def test_unsigned_payload_header(secured):
    url, headers, body = signed(secured, body=b'{"Limit": 5}', extra={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert send(url, headers, body).status == 200
    # The header itself is signed: claiming a hash the body does not have fails.
    url, headers, body = signed(secured, body=b'{"Limit": 5}', extra={"X-Amz-Content-SHA256": "0" * 64})
    assert_error(send(url, headers, body), "InvalidSignatureException", MISMATCH)


class _JsonQueryAuth(SigV4QueryAuth):
    """botocore's presigner moves a form body into the query; a JSON body stays the body."""

    def _modify_request_before_signing(self, request):
        data, request.data = request.data, b""
        super()._modify_request_before_signing(request)
        request.data = data


def test_query_string_signature(secured):
    body = b'{"Limit": 3}'
    for key, secret, token in [(ACCESS_KEY, SECRET_KEY, None), (TEMP_KEY, TEMP_SECRET, TEMP_TOKEN)]:
        req = AWSRequest(method="POST", url=secured.endpoint + "/", data=body,
                         headers={"Content-Type": AMZ_JSON, "X-Amz-Target": TARGET_PREFIX + "ListStreams"})
        _JsonQueryAuth(Credentials(key, secret, token), "kinesis", REGION, expires=60).add_auth(req)
        assert "X-Amz-Signature=" in req.url and "Authorization" not in req.headers
        headers = dict(req.headers.items())
        assert send(req.url, headers, body).status == 200, send(req.url, headers, body)
        assert_error(send(req.url, headers, b'{"Limit": 4}'), "InvalidSignatureException", MISMATCH)
        tampered = req.url.replace("X-Amz-Expires=60", "X-Amz-Expires=61")
        assert_error(send(tampered, headers, body), "InvalidSignatureException", MISMATCH)


def test_missing_or_malformed_signatures(secured):
    resp = send(secured.endpoint + "/", {"Content-Type": AMZ_JSON, "X-Amz-Target": TARGET_PREFIX + "ListStreams"},
                b"{}")
    assert_error(resp, "MissingAuthenticationTokenException", "Missing Authentication Token")
    url, headers, body = signed(secured)
    headers["Authorization"] = headers["Authorization"].replace(f"Credential={ACCESS_KEY}/", "Credential=")
    resp = send(url, headers, body)
    assert_error(resp, "IncompleteSignatureException")
    assert resp.message.startswith("Credential must have exactly 5 slash-delimited elements")
    url, headers, body = signed(secured)
    headers["X-Amz-Date"] = "yesterday"
    assert_error(send(url, headers, body), "IncompleteSignatureException",
                 "Date must be in ISO-8601 'basic format'. Got 'yesterday'. See http://en.wikipedia.org/wiki/ISO_8601")


def _aws(secured, tmp_path, key, secret, *args):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }
    return subprocess.run([*aws_binary(), "--endpoint-url", secured.endpoint, "kinesis", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def test_aws_cli(secured, tmp_path):
    ok = _aws(secured, tmp_path, ACCESS_KEY, SECRET_KEY, "list-streams")
    assert ok.returncode == 0, ok.stderr
    bad = _aws(secured, tmp_path, ACCESS_KEY, "not-the-secret", "list-streams")
    assert bad.returncode != 0
    assert "InvalidSignatureException" in bad.stderr


def test_bad_credentials_file_stops_startup(tmp_path, log_dir):
    path = tmp_path / "bad.toml"
    path.write_text('[[principal]]\narn = "a"\naccess_key_id = "k"\n')
    srv = Server(ephemeral=True, args=["--credentials", str(path)], log_dir=log_dir)
    with pytest.raises(RuntimeError, match="secret_access_key"):
        srv.start(timeout=10)


def _query_signed(secured, body=b'{"Limit": 3}', service="kinesis", region=REGION, op="ListStreams"):
    req = AWSRequest(method="POST", url=secured.endpoint + "/", data=body,
                     headers={"Content-Type": AMZ_JSON, "X-Amz-Target": TARGET_PREFIX + op})
    _JsonQueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), service, region, expires=60).add_auth(req)
    return req.url, dict(req.headers.items()), body


def test_query_string_signature_matrix(secured):
    """The header-form matrix above, for query-string signatures: wrong region, wrong service,
    stale date, altered signed header, altered body."""
    assert send(*_query_signed(secured)).status == 200
    assert_error(send(*_query_signed(secured, region="eu-west-1")), "InvalidSignatureException",
                 "Credential should be scoped to a valid region, not 'eu-west-1'.")
    assert_error(send(*_query_signed(secured, service="dynamodb")), "InvalidSignatureException",
                 "Credential should be scoped to correct service: 'kinesis'.")
    old = datetime.datetime.utcnow() - datetime.timedelta(minutes=10)
    with mock.patch("botocore.auth.get_current_datetime", return_value=old):
        stale = send(*_query_signed(secured))
    assert_error(stale, "InvalidSignatureException")
    url, headers, body = _query_signed(secured)
    headers["X-Amz-Target"] = TARGET_PREFIX + "DescribeLimits"
    # X-Amz-Target is not signed by the presigner (only host), so it may change: the signature
    # covers what SignedHeaders names. Host is, and changing it fails.
    headers["Host"] = "127.0.0.1:1"
    assert_error(send(url, headers, body), "InvalidSignatureException", MISMATCH)
    url, headers, body = _query_signed(secured)
    assert_error(send(url, headers, b'{"Limit": 4}'), "InvalidSignatureException", MISMATCH)
