"""A small fault-injecting HTTP proxy for the local S3 endpoint (tests only).

Sits on 127.0.0.1 in front of the moto server and forwards every request, except that the n-th
request of each ``every`` (counting from 1) gets the next fault of ``faults``, in turn:

- ``500`` / ``503``: answered by the proxy with that status and an S3 error body, never forwarded;
- ``drop``: the connection is closed after the request is read, without an answer, never forwarded;
- ``slow``: forwarded (so the write happens), then the answer is held past the client's read
  timeout: the client sees a timeout for a request that did take effect.

``outage(seconds)`` answers every request with 503 for that long (an object store that is down
for longer than the client's retries last), counted as ``outage``.

Each injected fault is counted in ``injected`` by kind, so a test can show faults did happen.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class FaultProxy:
    def __init__(self, upstream: str, *, every: int = 0, faults: tuple[str, ...] = (), hold_seconds: float = 3.0):
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.every, self.faults, self.hold_seconds = every, faults, hold_seconds
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.down_until = 0.0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def outage(self, seconds: float) -> None:
        """Answer every request with 503 for the next ``seconds``."""
        self.down_until = time.monotonic() + seconds

    def _next_fault(self) -> str | None:
        with self._lock:
            self.requests += 1
            if time.monotonic() < self.down_until:
                self.injected["outage"] += 1
                return "503"
            if not self.every or self.requests % self.every:
                return None
            fault = self.faults[(self.requests // self.every - 1) % len(self.faults)]
            self.injected[fault] += 1
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():  # boto3 streams some PUTs
                    body = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return body
                        body += self.rfile.read(size)
                        self.rfile.readline()  # the CRLF after each chunk
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _forward(self) -> None:
                body = self._body()
                fault = proxy._next_fault()
                if fault == "drop":
                    self.close_connection = True
                    return
                if fault in ("500", "503"):
                    error = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                    if fault == "503":
                        error = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
                    self.send_response(int(fault))
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-length"}}
                headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                if fault == "slow":
                    time.sleep(proxy.hold_seconds)  # the client has given up by now
                self.send_response(resp.status, resp.reason)
                head = self.command == "HEAD"  # its Content-Length is the object's, not this body's
                for key, value in resp.getheaders():
                    if key.lower() not in _HOP_BY_HOP and (head or key.lower() != "content-length"):
                        self.send_header(key, value)
                if not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    try:
                        self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                        self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        return Handler
