"""A fault proxy in front of a fake Stripe (localstripe), which cannot answer 429 itself: it
turns away a share of the requests with 429 and `Stripe-Should-Retry: true`, as Stripe's rate
limiter does (before doing anything), forwards the rest, and notes when each forwarded request
arrived, to measure the request rate Stripe would have seen.

    proxy = FaultProxy("http://127.0.0.1:12111", share_429=0.1)
    proxy.start()  # proxy.url goes where STRIPE_API_BASE would
    ...
    proxy.stop(); proxy.peak_rate(1.0)

Used by tests/payments/test_rate_limits.py and bench/autopay.py. Threads, one a connection;
each thread forwards over its own keep-alive connection.

It also keeps each request it forwards (`requests`: method, path, form body as sent) and can
strip form parameters the fake Stripe refuses but Stripe takes (`strip`), so a test can prove
what a gateway talking to "real Stripe" sends (tests/payments/test_statement_descriptor.py).
"""

from __future__ import annotations

import bisect
import http.client
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

IDLE_SECONDS = 20.0  # well under aiohttp's keep-alive of 75 s
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
_RATE_LIMITED = json.dumps(
    {
        "error": {
            "type": "invalid_request_error",
            "code": "rate_limit",
            "message": "Too many requests hit the API too quickly (fault proxy).",
        }
    }
).encode()


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        share_429: float = 0.0,
        should_retry: str = "true",
        seed: int = 21,
        strip: tuple[str, ...] = (),
    ) -> None:
        parts = urlsplit(upstream)
        self.should_retry = should_retry  # the 429s' Stripe-Should-Retry
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.share_429 = share_429
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.forwarded: list[float] = []  # time.monotonic() of each forwarded request
        self.strip = strip  # form parameters taken out before forwarding
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, path, form as sent
        self.rate_limited = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._connections: list[http.client.HTTPConnection] = []  # to the fake Stripe

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for connection in self._connections:
                connection.close()

    def reset(self) -> None:
        with self._lock:
            self.forwarded.clear()
            self.requests.clear()
            self.rate_limited = 0

    def keep(self, method: str, path: str, body: bytes | None) -> bytes | None:
        """Note the request's form as sent; the body to forward, without `strip`'s parameters."""
        form = parse_qsl((body or b"").decode(), keep_blank_values=True)
        with self._lock:
            self.requests.append((method, path, dict(form)))
        if not self.strip or body is None:
            return body
        return urlencode([(k, v) for k, v in form if k not in self.strip]).encode()

    def turn_away(self) -> bool:
        """Whether this request gets a 429; if not, it is counted as forwarded."""
        with self._lock:
            if self._random.random() < self.share_429:
                self.rate_limited += 1
                return True
            self.forwarded.append(time.monotonic())
            return False

    def peak_rate(self, window: float = 1.0) -> float:
        """The most requests forwarded within any `window` seconds, a second."""
        with self._lock:
            times = sorted(self.forwarded)
        most = 0
        for i, start in enumerate(times):
            most = max(most, bisect.bisect_right(times, start + window) - i)
        return most / window

    def mean_rate(self) -> float:
        """Requests forwarded a second, from the first to the last."""
        with self._lock:
            times = sorted(self.forwarded)
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    local = threading.local()

    def upstream() -> http.client.HTTPConnection:
        """This thread's connection to the fake Stripe, new when it sat idle long enough for
        the server to close it (so a request is never sent twice on a dead one)."""
        now = time.monotonic()
        if getattr(local, "connection", None) is None or now - local.used > IDLE_SECONDS:
            if getattr(local, "connection", None) is not None:
                local.connection.close()
            local.connection = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            with proxy._lock:
                proxy._connections.append(local.connection)
        local.used = now
        return local.connection

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if proxy.turn_away():
                self._answer(
                    429,
                    [
                        ("Content-Type", "application/json"),
                        ("Stripe-Should-Retry", proxy.should_retry),
                    ],
                    _RATE_LIMITED,
                )
                return
            body = proxy.keep(self.command, self.path, body)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection = upstream()
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                # Never sent again: the fake Stripe may have acted on it.
                connection.close()
                local.connection = None
                self._answer(502, [("Content-Type", "text/plain")], str(exc).encode())
                return
            answer_headers = [
                (k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
            ]
            self._answer(response.status, answer_headers, data)

        def _answer(self, status: int, headers, body: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _any

    return Handler
