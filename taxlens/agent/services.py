"""The network half of a sandbox: an HTTP service and an SMTP server, both on 127.0.0.1 at ephemeral ports, each
recording what reached it.

The HTTP service answers every host the task's routes name (the agent's URL keeps its host in the `Host` header), so
`http_request` reaches this service and nothing else. The SMTP server is aiosmtpd's, so `send_email` speaks real SMTP.

>>> with HttpService([{"method": "GET", "url": "https://api.example/v1/x", "body": "hi"}]) as http:  # doctest: +SKIP
...     http.request("GET", "https://api.example/v1/x")
(200, 'hi')
"""

from __future__ import annotations

import http.client
import json
import smtplib
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Request:
    method: str
    url: str  # as the agent wrote it: scheme, host, path and query
    body: str


@dataclass(frozen=True)
class Mail:
    sender: str
    to: tuple[str, ...]
    subject: str
    body: str


def route_key(method: str, url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    path = parts.path.rstrip("/") or "/"
    return method.upper(), parts.netloc.lower(), path + (f"?{parts.query}" if parts.query else "")


def _text(body: object) -> str:
    """A route's body as served: text as written, any other JSON value as JSON (not Python's repr of it)."""
    return body if isinstance(body, str) else json.dumps(body)


class HttpService:
    """A threaded HTTP server on loopback answering the task's routes; unknown routes get 404. Every request is
    recorded in `requests`, in order."""

    def __init__(self, routes: list[dict]):
        self.routes = {route_key(r["method"], r["url"]): (int(r.get("status", 200)), _text(r.get("body", "")))
                       for r in routes}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "HttpService":
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                url = f"https://{self.headers.get('Host', '')}{self.path}"
                with service._lock:
                    service.requests.append(Request(self.command, url, body))
                status, text = service.routes.get(route_key(self.command, url), (404, "not found"))
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

            def log_message(self, *args):  # the service is quiet; `requests` is its log
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.005},
                                        daemon=True)  # shutdown() waits up to one poll
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def request(self, method: str, url: str, body: str | None = None, timeout: float = 5.0) -> tuple[int, str]:
        """Send a real HTTP request to this service for `url` (its host goes in the Host header)."""
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        try:
            conn.request(method.upper(), (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                         body=None if body is None else body.encode(), headers={"Host": parts.netloc})
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None


class _Recorder:
    def __init__(self):
        self.mails: list[Mail] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        msg = message_from_bytes(envelope.content, policy=policy.default)
        body = msg.get_body(("plain",))
        self.mails.append(Mail(envelope.mail_from, tuple(envelope.rcpt_tos), str(msg.get("Subject", "")),
                               body.get_content().strip() if body is not None else ""))
        return "250 Message accepted for delivery"


class _EphemeralController(Controller):
    """aiosmtpd's controller bound to port 0: the port the OS picked is read back before the start-up check."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """aiosmtpd on loopback at an ephemeral port; received messages land in `mails`."""

    def __init__(self):
        self._recorder = _Recorder()
        self._controller = _EphemeralController(self._recorder, hostname=LOOPBACK, port=0)

    @property
    def mails(self) -> list[Mail]:
        return self._recorder.mails

    def __enter__(self) -> "SmtpServer":
        self._controller.start()
        return self

    def send(self, sender: str, to: str, subject: str, body: str, timeout: float = 5.0) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, to, subject
        msg.set_content(body)
        with smtplib.SMTP(LOOPBACK, self._controller.port, timeout=timeout) as client:
            client.send_message(msg)

    def __exit__(self, *exc) -> None:
        self._controller.stop()
