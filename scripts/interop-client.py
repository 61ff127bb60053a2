#!/usr/bin/python3
"""Drives rc-agent's socket API with Python's own http.client (a client no one here wrote).

Usage: interop-client.py SOCKET PROFILE PROXY_MAX_BODY

Prints one "ok NAME" line per check and exits 0, or "FAIL NAME: why" and exits 1. Never prints a
token. Run by Tests/IntegrationTests/InteropTests.swift.
"""
import hashlib
import http.client
import json
import os
import socket
import sys

SOCKET, PROFILE, CAP = sys.argv[1], sys.argv[2], int(sys.argv[3])
UPLOAD = f"/v1/proxy/{PROFILE}/api/v2/uploads"


class UnixConnection(http.client.HTTPConnection):
    """http.client over a connected Unix socket."""

    def __init__(self, timeout=60):
        super().__init__("localhost", timeout=timeout)

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(SOCKET)
        self.sock = sock


def check(name, condition, why):
    if not condition:
        print(f"FAIL {name}: {why}")
        sys.exit(1)
    print(f"ok {name}")


def error_code(body):
    try:
        return json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def multipart(payload, boundary="rc-agent-interop-boundary"):
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"blob.bin\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def raw_exchange(head, body=None, expect_continue=True):
    """Sends `head` on a fresh socket; returns (interim status line or None, final response bytes)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(15)
    sock.connect(SOCKET)
    sock.sendall(head.encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    interim = None
    if received.startswith(b"HTTP/1.1 100"):
        interim = received.split(b"\r\n", 1)[0].decode()
        received = received.split(b"\r\n\r\n", 1)[1]
        if body is not None:
            sock.sendall(body)
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        received += chunk
        if b"\r\n\r\n" in received:
            headers, _, rest = received.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in headers.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if length and len(rest) >= length[0]:
                break
            if b"transfer-encoding: chunked" in headers.lower() and rest.endswith(b"0\r\n\r\n"):
                break
    sock.close()
    return interim, received


conn = UnixConnection()

# Token, JSON and text.
conn.request("GET", f"/v1/token?profile={PROFILE}")
response = conn.getresponse()
document = json.loads(response.read())
check("token-json", response.status == 200 and str(document.get("token_type", "")).lower() == "bearer" and document.get("access_token"),
      f"status {response.status}, keys {sorted(document)}")
token = document["access_token"]
conn.request("GET", f"/v1/token?profile={PROFILE}&format=text")
response = conn.getresponse()
text = response.read().decode()
check("token-text", response.status == 200 and text.strip() == token and response.getheader("Content-Type", "").startswith("text/plain"),
      f"status {response.status}, content type {response.getheader('Content-Type')}")

# Keep-alive: 150 requests on one connection.
first_socket = conn.sock
for index in range(150):
    conn.request("GET", f"/v1/token?profile={PROFILE}&format=text")
    response = conn.getresponse()
    body = response.read()
    if response.status != 200 or conn.sock is not first_socket:
        check("keep-alive", False, f"request {index}: status {response.status}, same connection: {conn.sock is first_socket}")
check("keep-alive", conn.sock is first_socket, "150 requests on one connection")

# An error document.
conn.request("GET", "/v1/token?profile=no-such-profile")
response = conn.getresponse()
document = json.loads(response.read())
error = document.get("error", {})
check("error-document", response.status == 404 and error.get("code") == "unknown_profile" and error.get("message") and error.get("hint"),
      f"status {response.status}: {document}")

# A multipart upload above 16 KiB through the proxy, Content-Length, byte for byte.
payload = os.urandom(300 * 1024)
body, content_type = multipart(payload)
conn.request("POST", UPLOAD, body=body, headers={"Content-Type": content_type})
response = conn.getresponse()
answer = json.loads(response.read())
check("upload-content-length",
      response.status == 201 and answer.get("sha256") == hashlib.sha256(body).hexdigest() and answer.get("bytes") == len(body)
      and answer.get("content_type") == content_type,
      f"status {response.status}: {answer}")

# The same, chunked (no Content-Length), and the connection is still usable afterwards.
pieces = [os.urandom(40 * 1024) for _ in range(5)]
conn.request("POST", UPLOAD, body=iter(pieces), headers={"Content-Type": "application/octet-stream"}, encode_chunked=True)
response = conn.getresponse()
answer = json.loads(response.read())
whole = b"".join(pieces)
check("upload-chunked", response.status == 201 and answer.get("sha256") == hashlib.sha256(whole).hexdigest(),
      f"status {response.status}: {answer}")
conn.request("GET", f"/v1/token?profile={PROFILE}&format=text")
response = conn.getresponse()
response.read()
check("keep-alive-after-upload", response.status == 200 and conn.sock is not None, f"status {response.status}")
conn.close()

# A body over the cap, declared: 413 with the document, then the connection closes.
conn = UnixConnection()
conn.request("POST", UPLOAD, body=b"x" * (CAP + 1), headers={"Content-Type": "application/octet-stream"})
response = conn.getresponse()
raw = response.read()
check("too-large-content-length",
      response.status == 413 and error_code(raw) == "request_too_large" and str(CAP) in raw.decode()
      and response.getheader("Connection") == "close",
      f"status {response.status}: {raw[:300]!r}")
conn.close()

# A body over the cap, chunked: the agent notices while streaming it.
conn = UnixConnection()
chunk = b"y" * (256 * 1024)
conn.request("POST", UPLOAD, body=iter([chunk] * (CAP // len(chunk) + 2)),
             headers={"Content-Type": "application/octet-stream"}, encode_chunked=True)
response = conn.getresponse()
raw = response.read()
check("too-large-chunked", response.status == 413 and error_code(raw) == "request_too_large",
      f"status {response.status}: {raw[:300]!r}")
conn.close()

# Headers over their limit: 431 with the document.
conn = UnixConnection()
conn.request("GET", f"/v1/token?profile={PROFILE}", headers={"X-Padding": "p" * (40 * 1024)})
response = conn.getresponse()
raw = response.read()
check("headers-too-large", response.status == 431 and error_code(raw) == "headers_too_large",
      f"status {response.status}: {raw[:300]!r}")
conn.close()

# Expect: 100-continue, accepted: 100 first, then the body, then the tenant's answer.
payload = os.urandom(64 * 1024)
head = (f"POST {UPLOAD} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(payload)}\r\nExpect: 100-continue\r\n\r\n")
interim, final = raw_exchange(head, payload)
check("expect-continue",
      interim == "HTTP/1.1 100 Continue" and final.startswith(b"HTTP/1.1 201")
      and hashlib.sha256(payload).hexdigest().encode() in final,
      f"interim {interim!r}, final {final[:200]!r}")

# Expect: 100-continue, refused: the final answer at once, the body never sent.
for name, target, length, status in [
    ("expect-unknown-profile", "/v1/proxy/no-such-profile/api/v2/uploads", 1000, b"404"),
    ("expect-too-large", UPLOAD, CAP + 1, b"413"),
]:
    head = (f"POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {length}\r\n"
            "Expect: 100-continue\r\n\r\n")
    interim, final = raw_exchange(head, None)
    check(name, interim is None and final.startswith(b"HTTP/1.1 " + status) and b"\"error\"" in final,
          f"interim {interim!r}, final {final[:200]!r}")
