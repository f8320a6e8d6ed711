"""The HTTP front end as a browser, curl or a raw socket sees it (issue 13).

Pins: every whole response carries Content-Length and is not chunked (AWS sends Content-Length;
kinesin used to chunk every API answer), while SubscribeToShard's event stream stays chunked;
CORS as AWS answers it (preflight, Allow-Origin and Expose-Headers on every answer to a request
with Origin), checked with raw requests and from a real page in headless Chromium; a POST with
no or an unknown Content-Type gets 400 in the JSON protocol instead of an XML 403/404; `GET /`
from a browser goes to the console; `/health` answers.
"""

import http.server
import json
import shutil
import socket
import subprocess
import threading

import pytest
import requests

from kutil import AMZ_JSON, TARGET_PREFIX, assert_error, unique_name, wait_status

FAKE_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKID/20150101/us-east-1/kinesis/aws4_request, "
    "SignedHeaders=host, Signature=abc"
)


def raw_exchange(port, method="POST", target="ListStreams", body=b"{}", content_type=AMZ_JSON, headers=None,
                 auth=True):
    """One HTTP/1.1 request on a fresh socket; returns (status, headers as lower-case dict, raw
    header names, body bytes). The body is read by Content-Length, or to EOF when the server
    closes."""
    lines = [f"{method} / HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if target is not None:
        lines.append(f"X-Amz-Target: {TARGET_PREFIX}{target}")
    if auth:
        lines += [f"Authorization: {FAKE_AUTH}", "X-Amz-Date: 20150101T000000Z"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, f"connection closed before the response head: {buf!r}"
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        names = [h.split(":", 1)[0] for h in header_lines]
        hdrs = {}
        for h in header_lines:
            k, v = h.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            want = int(hdrs["content-length"])
            while len(rest) < want:
                chunk = s.recv(65536)
                assert chunk, "connection closed inside the body"
                rest += chunk
        return int(status_line.split()[1]), hdrs, names, rest


def assert_sized(status_hdrs_body):
    status, hdrs, _, body = status_hdrs_body
    assert "transfer-encoding" not in hdrs, hdrs
    assert hdrs.get("content-length") == str(len(body)), hdrs
    return status, hdrs, body


# ------------------------------------------------------------------ Content-Length


@pytest.mark.parametrize(
    "case",
    [
        dict(target="ListStreams"),  # 200 with a body
        dict(target="DescribeStream", body=b'{"StreamName": "no-such-stream-x"}'),  # modeled error
        dict(target="ListStreams", auth=False),  # authentication error
        dict(target="ListStreams", body=b"{"),  # SerializationException
        dict(target="NoSuchOperation"),  # UnknownOperationException
        dict(method="GET", target=None, content_type=None, body=b""),  # XML 403
        dict(target="ListStreams", content_type="text/plain"),  # unknown content type
    ],
    ids=["ok", "not-found", "no-auth", "bad-json", "unknown-op", "get", "bad-content-type"],
)
def test_whole_responses_have_content_length(server, case):
    status, hdrs, body = assert_sized(raw_exchange(server.port, **case))
    assert body, (status, hdrs)


def test_empty_output_has_content_length_zero(server, kinesis):
    name = unique_name("cl")
    status, hdrs, body = assert_sized(
        raw_exchange(server.port, target="CreateStream", body=json.dumps({"StreamName": name, "ShardCount": 1}).encode())
    )
    assert status == 200 and body == b"" and hdrs["content-length"] == "0"
    kinesis.delete_stream(StreamName=name)


def test_operational_endpoints_have_content_length(server):
    for path in ("/health", "/health/live", "/health/ready", "/metrics", "/console/"):
        r = requests.get(server.endpoint + path, timeout=10)
        assert r.status_code == 200, path
        assert "Transfer-Encoding" not in r.headers, (path, r.headers)
        assert r.headers["Content-Length"] == str(len(r.content)), path


def test_subscribe_to_shard_stays_streamed(server, kinesis):
    name = unique_name("sub")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_status(kinesis, name)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="c")["Consumer"]
    body = json.dumps({
        "ConsumerARN": consumer["ConsumerARN"], "ShardId": "shardId-000000000000",
        "StartingPosition": {"Type": "TRIM_HORIZON"},
    }).encode()
    req = (
        f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: {AMZ_JSON}\r\nX-Amz-Target: {TARGET_PREFIX}SubscribeToShard\r\n"
        f"Authorization: {FAKE_AUTH}\r\nX-Amz-Date: 20150101T000000Z\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(req)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                assert chunk
                buf += chunk
            head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
            assert head.startswith("http/1.1 200"), head
            assert "transfer-encoding: chunked" in head, head
            assert "content-length" not in head, head
    finally:
        kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)


# ------------------------------------------------------------------ CORS
#
# AWS answers every origin (`*`). kinesin does too when --credentials verifies signatures; without
# it any signature passes, so by default only pages served from this machine get CORS headers
# (otherwise every web site the user visits could drive a local kinesin from the browser).

SDK_HEADERS = "amz-sdk-invocation-id,amz-sdk-request,authorization,content-type,x-amz-date,x-amz-target,x-amz-user-agent"
LOCAL_PAGE = "http://localhost:3000"
FOREIGN_PAGE = "https://evil.example"


def preflight(port, origin, request_headers=SDK_HEADERS):
    return raw_exchange(
        port, method="OPTIONS", target=None, content_type=None, body=b"", auth=False,
        headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": request_headers},
    )


def assert_exposed(hdrs):
    exposed = {h.strip().lower() for h in hdrs["access-control-expose-headers"].split(",")}
    assert {"x-amzn-requestid", "x-amzn-errortype", "x-amz-id-2"} <= exposed, hdrs


def test_preflight_is_answered_before_authentication(server):
    status, hdrs, body = assert_sized(preflight(server.port, LOCAL_PAGE))
    assert status == 200 and body == b""
    assert hdrs["access-control-allow-origin"] == LOCAL_PAGE and hdrs["vary"] == "Origin"
    assert hdrs["access-control-allow-methods"] == "POST"
    assert hdrs["access-control-allow-headers"] == SDK_HEADERS
    assert hdrs["access-control-max-age"] == "172800"
    assert hdrs.get("x-amzn-requestid")
    assert "x-amz-id-2" not in hdrs and "content-type" not in hdrs


def test_preflight_header_echo_is_bounded(server):
    asked = ",".join(f"x-custom-header-{i}" for i in range(2000))  # ~40 KB
    status, hdrs, _, _ = preflight(server.port, LOCAL_PAGE, request_headers=asked)
    assert status == 200
    echoed = hdrs["access-control-allow-headers"]
    assert 0 < len(echoed) <= 2048 and asked.startswith(echoed) and asked[len(echoed)] == ","


def test_options_without_origin_is_not_a_preflight(server):
    status, hdrs, _, body = raw_exchange(server.port, method="OPTIONS", target=None, content_type=None, body=b"")
    assert status == 403 and b"AccessDeniedException" in body
    assert not any(k.startswith("access-control-") for k in hdrs)


CORS_CASES = [
    dict(target="ListStreams"), dict(target="DescribeStream", body=b'{"StreamName": "nope-cors"}'),
    dict(target="ListStreams", auth=False), dict(method="GET", target=None, content_type=None, body=b""),
]
CORS_IDS = ["ok", "error", "no-auth", "xml-403"]


@pytest.mark.parametrize("case", CORS_CASES, ids=CORS_IDS)
def test_answers_to_a_local_page_carry_cors_headers(server, case):
    _, hdrs, _, _ = raw_exchange(server.port, headers={"Origin": LOCAL_PAGE}, **case)
    assert hdrs["access-control-allow-origin"] == LOCAL_PAGE
    assert_exposed(hdrs)


def test_foreign_pages_get_no_cors_headers_without_credentials(server):
    status, hdrs, _, _ = preflight(server.port, FOREIGN_PAGE)
    assert status == 200 and not any(k.startswith("access-control-") for k in hdrs), hdrs
    status, hdrs, _, _ = raw_exchange(server.port, headers={"Origin": FOREIGN_PAGE})
    assert status == 200 and not any(k.startswith("access-control-") for k in hdrs), hdrs
    assert "--cors-origins" in server.log_text()  # the server says which flag opens it


def test_no_cors_headers_without_origin(server):
    _, hdrs, _, _ = raw_exchange(server.port)
    assert not any(k.startswith("access-control-") for k in hdrs)


@pytest.mark.parametrize("case", CORS_CASES, ids=CORS_IDS)
def test_any_origin_as_aws_with_cors_origins_star(server_factory, case):
    srv = server_factory(ephemeral=True, args=["--cors-origins", "*"])
    _, hdrs, _, _ = raw_exchange(srv.port, headers={"Origin": FOREIGN_PAGE}, **case)
    assert hdrs["access-control-allow-origin"] == "*" and "vary" not in hdrs
    assert_exposed(hdrs)
    status, hdrs, _, _ = preflight(srv.port, FOREIGN_PAGE)
    assert status == 200 and hdrs["access-control-allow-origin"] == "*"
    assert hdrs["access-control-max-age"] == "172800"


def test_any_origin_by_default_with_credentials(server_factory, tmp_path):
    creds = tmp_path / "credentials.toml"
    creds.write_text(
        '[[principal]]\narn = "arn:aws:iam::000000000000:user/dev"\n'
        'access_key_id = "AKIDEXAMPLE"\nsecret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"\n'
    )
    srv = server_factory(ephemeral=True, args=["--credentials", str(creds)])
    status, hdrs, _, _ = preflight(srv.port, FOREIGN_PAGE)
    assert status == 200 and hdrs["access-control-allow-origin"] == "*"
    _, hdrs, _, _ = raw_exchange(srv.port, headers={"Origin": FOREIGN_PAGE}, auth=False)
    assert hdrs["access-control-allow-origin"] == "*"


def test_listed_origins_only(server_factory):
    srv = server_factory(ephemeral=True, args=["--cors-origins", "https://app.example.com, http://localhost:5173"])
    assert preflight(srv.port, "https://app.example.com")[1]["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in preflight(srv.port, LOCAL_PAGE)[1]
    bad = server_factory(ephemeral=True, args=["--cors-origins", "app.example.com"], start=False)
    with pytest.raises(RuntimeError, match="--cors-origins"):
        bad.start()


PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
(async () => {
  const out = document.getElementById("out");
  try {
    const r = await fetch("%(endpoint)s/", {
      method: "POST",
      headers: {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "Kinesis_20131202.ListStreams",
        "X-Amz-Date": "20150101T000000Z",
        "Authorization": "%(auth)s",
      },
      body: "{}",
    });
    const body = await r.json();
    out.textContent = JSON.stringify({status: r.status, requestId: r.headers.get("x-amzn-RequestId"),
      hasStreamNames: Array.isArray(body.StreamNames)});
  } catch (e) {
    out.textContent = JSON.stringify({error: String(e)});
  }
})();
</script></body></html>"""


def run_page_in_chromium(endpoint):
    """Serves PAGE from another origin (another port of 127.0.0.1) and returns what its fetch()
    of kinesin's API reported, as Chromium ran it."""
    page = PAGE % {"endpoint": endpoint, "auth": FAKE_AUTH}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        origin = f"http://127.0.0.1:{httpd.server_address[1]}"
        dom = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
             "--dump-dom", origin + "/"],
            capture_output=True, text=True, timeout=60,
        ).stdout
    finally:
        httpd.shutdown()
    start, end = dom.index('<pre id="out">') + len('<pre id="out">'), dom.index("</pre>")
    return json.loads(dom[start:end].replace("&quot;", '"'))


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed")
def test_browser_page_of_another_origin_can_call_the_api(server):
    """A page served from another origin calls ListStreams with fetch(), as the JavaScript SDK
    does: Chromium sends the preflight, then the POST, and lets the page read the body and the
    request id only if kinesin's CORS answers allow it."""
    result = run_page_in_chromium(server.endpoint)
    assert result.get("status") == 200, result
    assert result["hasStreamNames"] is True
    assert result["requestId"], result  # readable only through Access-Control-Expose-Headers


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed")
def test_browser_refuses_a_page_whose_origin_is_not_allowed(server_factory):
    srv = server_factory(ephemeral=True, args=["--cors-origins", "https://app.example.com"])
    result = run_page_in_chromium(srv.endpoint)
    assert "error" in result and "status" not in result, result


# ------------------------------------------------------------------ content type


@pytest.mark.parametrize(
    "content_type,target,body,kind",
    [
        (None, None, b"", "UnknownOperationException"),  # an empty POST
        (None, "ListStreams", b"{}", "UnknownOperationException"),
        (None, None, b"{}", "UnknownOperationException"),
        ("text/plain", "ListStreams", b"{}", "UnknownOperationException"),
        ("application/x-amz-json-1.0", None, b"", "UnknownOperationException"),
        ("application/x-www-form-urlencoded", "ListStreams", b"a=b", "UnknownOperationException"),
        # A real operation and nothing else: the body is what is missing (AWS: SerializationException).
        (None, "ListStreams", b"", "SerializationException"),
    ],
)
def test_post_without_a_known_content_type_is_400_json(server, content_type, target, body, kind):
    status, hdrs, raw_body = assert_sized(
        raw_exchange(server.port, target=target, body=body, content_type=content_type, auth=False)
    )
    assert status == 400, raw_body
    assert hdrs["content-type"] == AMZ_JSON
    assert hdrs["x-amzn-errortype"] == kind
    err = json.loads(raw_body)
    assert err["__type"] == kind
    message = err.get("message") or err.get("Message")
    assert AMZ_JSON in message and "X-Amz-Target" in message, message


def test_requests_empty_post_is_400_json(server):
    r = requests.post(server.endpoint + "/", timeout=10)  # curl -X POST: no content type, no body
    assert r.status_code == 400
    assert r.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert r.json()["__type"] == "UnknownOperationException"


def test_known_content_types_still_work(raw):
    for ct in (AMZ_JSON, "application/json", AMZ_JSON + "; charset=utf-8"):
        r = raw.call("ListStreams", {}, content_type=ct)
        assert r.status == 200, (ct, r)
    assert_error(raw.call("ListStreams", b"", content_type=AMZ_JSON), "SerializationException")


# ------------------------------------------------------------------ / and /health


def test_browser_at_root_is_sent_to_the_console(server):
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    r = requests.get(server.endpoint + "/", headers={"Accept": accept}, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/console/"
    r = requests.get(server.endpoint + "/", headers={"Accept": accept}, timeout=10)
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"]
    # Not a browser: AWS's answer, as before.
    r = requests.get(server.endpoint + "/", headers={"Accept": "*/*"}, allow_redirects=False, timeout=10)
    assert r.status_code == 403 and "AccessDeniedException" in r.text


def test_health_answers_live_and_ready(server):
    r = requests.get(server.endpoint + "/health", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"live": True, "ready": True}
    assert requests.head(server.endpoint + "/health", timeout=10).status_code == 200


# ------------------------------------------------------------------ connections per client address

HALF_REQUEST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"


def list_streams_request():
    return (
        f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: {AMZ_JSON}\r\nX-Amz-Target: {TARGET_PREFIX}ListStreams\r\n"
        f"Authorization: {FAKE_AUTH}\r\nX-Amz-Date: 20150101T000000Z\r\nContent-Length: 2\r\n\r\n{{}}"
    ).encode()


def flood(port, n):
    """n connections from 127.0.0.1 that each send half a request and stall."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(HALF_REQUEST)
        socks.append(s)
    return socks


def timed_calls(port, n, source):
    """n ListStreams calls, each on a new connection from `source`; their latencies in seconds."""
    import time

    out = []
    for _ in range(n):
        t = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0)) as s:
            s.sendall(list_streams_request())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                assert chunk, buf
                buf += chunk
        out.append(time.monotonic() - t)
        assert buf.startswith(b"HTTP/1.1 200"), buf[:200]
    return out


def get_from(port, path, source):
    """The body of GET `path` over a connection from `source`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        while chunk := s.recv(65536):
            buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    return body.decode()


def readable_within(socks, want, seconds):
    """The sockets that became readable (an answer, EOF or reset) within `seconds`, waiting until
    `want` of them are."""
    import select
    import time

    deadline = time.monotonic() + seconds
    ready = set()
    while len(ready) < want and time.monotonic() < deadline:
        r, _, _ = select.select([s for s in socks if s not in ready], [], [], max(0.0, deadline - time.monotonic()))
        ready.update(r)
    return ready


def p99(latencies):
    return sorted(latencies)[max(0, int(len(latencies) * 0.99) - 1)]


def test_flood_from_one_address_does_not_stall_another(server_factory):
    # --max-connections 300 and the default per-address share: a quarter, 75.
    srv = server_factory(ephemeral=True, args=["--max-connections", "300"])
    socks = flood(srv.port, 400)
    try:
        latencies = timed_calls(srv.port, 100, source="127.0.0.2")
        print(f"another client during a 400-socket flood: p99 {p99(latencies) * 1000:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms")
        assert p99(latencies) < 0.5, sorted(latencies)[-5:]
        # The 325 over the share were turned away at once, with a 503 that says why when the
        # answer could be read before the close; the 75 others wait for their headers.
        answered = readable_within(socks, 325, 10)
        assert len(answered) == 325
        texts = []
        for s in answered:
            try:
                texts.append(s.recv(65536))
            except OSError:
                texts.append(b"")
        refusals = [t for t in texts if t.startswith(b"HTTP/1.1 503")]
        assert refusals, "no refused connection read its 503"
        head, body = refusals[0].split(b"\r\n\r\n", 1)
        assert b"x-amzn-errortype: serviceunavailableexception" in head.lower()
        assert b"--max-connections-per-ip" in body and b"at most 75" in body, body
        assert all(t.startswith(b"HTTP/1.1 503") or t == b"" for t in texts)
        metrics = get_from(srv.port, "/metrics", source="127.0.0.2")  # 127.0.0.1 is at its share
        refused = next(ln for ln in metrics.splitlines() if ln.startswith("kinesin_http_connections_refused_total "))
        assert int(refused.split()[1]) >= 325
    finally:
        for s in socks:
            s.close()
    # Once the flood closes, its address is served again (as soon as the server has seen the
    # closes: poll, bounded).
    import time

    deadline = time.monotonic() + 10
    while True:
        try:
            timed_calls(srv.port, 1, source="127.0.0.1")
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the flooding address was not served again after closing"
            time.sleep(0.05)


def test_without_a_per_address_share_the_flood_stalls_others(server_factory):
    """The control: with the share as large as the cap, the same flood holds every slot and a
    client from another address waits until the header timeout frees them (the issue's 3 s
    stalls). It shows the test above can tell."""
    srv = server_factory(ephemeral=True, args=[
        "--max-connections", "300", "--max-connections-per-ip", "300", "--header-read-timeout-secs", "10",
    ])
    # A header timeout well above the time opening the flood takes on a loaded machine: with 2 s,
    # the first sockets were already timed out (their slots free) when the other client came.
    socks = flood(srv.port, 400)
    try:
        latencies = timed_calls(srv.port, 3, source="127.0.0.2")
        assert max(latencies) > 1.0, latencies
    finally:
        for s in socks:
            s.close()

