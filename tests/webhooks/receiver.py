"""A real HTTP receiver in the test process: http.server in a thread on 127.0.0.1, which
checks each delivery's signature with the shipped `verify` (as a receiver's code would) and
answers the statuses a test lines up (200 once they run out)."""

from __future__ import annotations

import json
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hosting.webhooks.signing import SignatureError, verify


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    why: str = ""

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    secret: str = ""
    answers: deque = field(default_factory=deque)  # statuses (or (status, headers)) to answer, in order
    received: list[Received] = field(default_factory=list)

    def answer(self, *statuses) -> None:
        self.answers.extend(statuses)


@contextmanager
def running_receiver():
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                verify(receiver.secret, headers.get("haven-signature"), body, tolerance_s=300)
                got = Received(self.path, headers, body, verified=True)
            except SignatureError as exc:
                got = Received(self.path, headers, body, verified=False, why=str(exc))
            receiver.received.append(got)
            answer = receiver.answers.popleft() if receiver.answers else 200
            status, extra = answer if isinstance(answer, tuple) else (answer, {})
            if not got.verified:
                status = 401
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            reply = b'{"ok": true}' if status < 300 else b"nope " * 100
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/haven"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
