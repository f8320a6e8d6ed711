"""Limits against abusive clients (issue 6): bodies over the cap get 413 without being read, too
many or too large headers get 431, a client that trickles its headers (slowloris) or idles on a
keep-alive connection is disconnected, and connections beyond `--max-connections` wait until one
closes. The server stays up and serves afterwards."""

import socket
import time

import pytest
import requests

from kutil import AMZ_JSON, TARGET_PREFIX

BODY_MAX = 16 * 1024 * 1024


def request_bytes(port, body=b"{}", extra=b""):
    return (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: " % port + AMZ_JSON.encode()
        + b"\r\nX-Amz-Target: " + (TARGET_PREFIX + "ListStreams").encode()
        + b"\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20150101/us-east-1/kinesis/aws4_request, "
          b"SignedHeaders=host, Signature=abc\r\nX-Amz-Date: 20150101T000000Z\r\n"
        + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


def read_response(sock, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def connect(srv):
    return socket.create_connection(("127.0.0.1", srv.port), timeout=5)


def closed_within(sock, seconds):
    """Whether the server closes `sock` within `seconds` (EOF or reset)."""
    sock.settimeout(seconds)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


@pytest.fixture(scope="module")
def srv(request, log_dir):
    from kutil import Server

    s = Server(ephemeral=True, log_dir=log_dir, args=["--header-read-timeout-secs", "1", "--idle-timeout-secs", "2"])
    s.start()
    yield s
    assert s.stop() == 0


def alive(srv):
    with connect(srv) as s:
        s.sendall(request_bytes(srv.port))
        return read_response(s).startswith(b"HTTP/1.1 200")


def test_declared_oversize_body_is_refused_unread(srv):
    with connect(srv) as s:
        head = request_bytes(srv.port, b"").replace(b"Content-Length: 0", b"Content-Length: %d" % (BODY_MAX + 1))
        s.sendall(head + b"{")
        t = time.time()
        resp = read_response(s)
        assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
        assert time.time() - t < 3
    assert alive(srv)


def test_streamed_oversize_body_is_cut(srv):
    def chunks():
        piece = b" " * (1024 * 1024)
        for _ in range(18):
            yield piece

    headers = {"Content-Type": AMZ_JSON, "X-Amz-Target": TARGET_PREFIX + "ListStreams"}
    try:
        r = requests.post(srv.endpoint + "/", data=chunks(), headers=headers, timeout=30)
    except requests.exceptions.ConnectionError:
        pass  # the server may close before the client has sent it all
    else:
        assert r.status_code == 413, r.text
        assert r.json()["__type"] == "RequestEntityTooLargeException"
    # Just under the cap is read (and then refused only as not JSON).
    r = requests.post(srv.endpoint + "/", data=b" " * (BODY_MAX - 10), headers=headers, timeout=30)
    assert r.status_code == 400 and "SerializationException" in r.text
    assert alive(srv)


def test_too_many_or_too_large_headers(srv):
    many = b"".join(b"X-Filler-%d: x\r\n" % i for i in range(150))
    with connect(srv) as s:
        s.sendall(request_bytes(srv.port, extra=many))
        assert read_response(s).startswith(b"HTTP/1.1 431")
    huge = b"X-Huge: " + b"a" * (80 * 1024) + b"\r\n"
    with connect(srv) as s:
        try:
            s.sendall(request_bytes(srv.port, extra=huge))
            resp = read_response(s)
        except (ConnectionResetError, BrokenPipeError):
            resp = b""
        assert resp == b"" or resp.startswith(b"HTTP/1.1 431"), resp[:100]
    assert alive(srv)


def test_slowloris_is_disconnected(srv):
    with connect(srv) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        t = time.time()
        closed = False
        for i in range(12):
            try:
                s.sendall(b"X-Slow-%d: y\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if closed_within(s, 0.5):
                closed = True
                break
        assert closed, "a client trickling its headers was kept for 6 s"
        assert time.time() - t < 4
    assert alive(srv)


def test_idle_connections_are_closed(server_factory):
    # The header timer is long here: what closes these is the idle timeout.
    idle = server_factory(ephemeral=True, args=["--header-read-timeout-secs", "60", "--idle-timeout-secs", "1"])
    with connect(idle) as s:
        s.sendall(request_bytes(idle.port))
        assert read_response(s).startswith(b"HTTP/1.1 200")
        t = time.time()
        assert closed_within(s, 6)
        assert 0.5 < time.time() - t < 6
    # A client that connects and never sends a byte (hyper's header timer does not run before
    # the protocol is known).
    with connect(idle) as s:
        t = time.time()
        assert closed_within(s, 6)
        assert time.time() - t < 6
    # HTTP/2 (prior knowledge) after its preface and settings.
    with connect(idle) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        t = time.time()
        assert closed_within(s, 6)
        assert time.time() - t < 6


def test_connection_cap(server_factory):
    capped = server_factory(ephemeral=True, args=["--max-connections", "2"])
    hold = [connect(capped), connect(capped)]
    for s in hold:
        s.sendall(request_bytes(capped.port))
        assert read_response(s).startswith(b"HTTP/1.1 200")
    third = connect(capped)  # the kernel accepts it; the server does not serve it yet
    third.sendall(request_bytes(capped.port))
    third.settimeout(1.0)
    with pytest.raises(socket.timeout):
        third.recv(100)
    hold.pop().close()
    assert read_response(third).startswith(b"HTTP/1.1 200")
    third.close()
    for s in hold:
        s.close()


def test_slow_body_times_out(server_factory):
    slow = server_factory(ephemeral=True, args=["--body-read-timeout-secs", "2"])
    with connect(slow) as s:
        s.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: Kinesis_20131202.ListStreams\r\nContent-Length: 1000\r\n\r\n{"
        )
        t = time.time()
        # One byte a second: the connection is never idle, but the body never completes.
        resp = b""
        s.settimeout(1.0)
        while time.time() - t < 8 and b"\r\n\r\n" not in resp:
            try:
                s.sendall(b" ")
                resp += s.recv(4096)
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        assert resp.startswith(b"HTTP/1.1 408"), resp
        assert b"RequestTimeoutException" in resp or b"\r\n\r\n" in resp
        assert 1.5 < time.time() - t < 6
    assert alive(slow)
