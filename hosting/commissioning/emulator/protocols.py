"""The emulated miners' servers: the cgminer-style RPC on 4028 and the Antminer web UI's HTTP on 80.

Plain asyncio protocols (no per-request objects beyond a few strings for the RPC), so one process
hosts thousands of miners. HTTP is parsed and framed by ``h11``; what is answered (Digest auth,
the cgi-bin JSON, lighttpd's error pages) comes from ``antminer.web_reply``.
"""

from __future__ import annotations

import asyncio
import json
import time

import h11

from hosting.commissioning.emulator import antminer, whatsminer
from hosting.commissioning.emulator.miner import Fault, Miner

_SERVER = b"lighttpd/1.4.32"
_MAX_HEADER_BYTES = 16384  # lighttpd's default request-header limit
_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    404: b"Not Found",
    405: b"Method Not Allowed",
    431: b"Request Header Fields Too Large",
}


def parse_rpc(raw: bytes) -> tuple[object, str | None]:
    """The request's JSON and its command (None when it is not JSON with a string command)."""
    try:
        req = json.loads(raw)
    except ValueError:
        return None, None
    cmd = req.get("command") if isinstance(req, dict) else None
    return req, cmd if isinstance(cmd, str) else None


def rpc_reply(m: Miner, req: object, cmd: str | None) -> bytes:
    """The miner's NUL-terminated reply to one RPC request."""
    when = int(time.time())
    am = m.base.model.is_antminer
    body = antminer.rpc_reply(m, cmd, when) if am else whatsminer.rpc_reply(m, req, cmd, when)
    return body.encode() + b"\x00"


class Connection(asyncio.Protocol):
    """A connection to one emulated miner, tracked so that faults can cut it."""

    def __init__(self, m: Miner):
        self.m = m
        self.t: asyncio.Transport | None = None

    @property
    def transport(self) -> asyncio.Transport:
        """The connection's transport: set once it is made, before any data can arrive."""
        assert self.t is not None
        return self.t

    def connection_made(self, transport):
        self.t = transport
        m = self.m
        m.conns.add(transport)
        m.contacted()
        if m.flap_since is None and Fault.FLAPPING in m.base.faults:
            m.flap_since = time.monotonic()  # its link starts to flap once somebody talks to it
            m.fleet.watch(m)

    def connection_lost(self, exc):
        self.m.conns.discard(self.t)

    def alive(self) -> bool:
        """Whether the client is still there to be answered."""
        return self.t is not None and not self.t.is_closing()


class RpcProtocol(Connection):
    """One JSON command per connection, answered (in its turn on the miner's RPC line) then closed."""

    def __init__(self, m: Miner):
        super().__init__(m)
        self.buf = b""
        self.asked = False

    def data_received(self, data: bytes) -> None:
        if Fault.HUNG in self.m.base.faults or self.asked:
            return  # hung: swallow everything, never answer, never close
        buf = self.buf + data if self.buf else data
        s = buf.strip()
        if s.startswith(b"{") and not s.endswith(b"}") and len(buf) < 65536:
            self.buf = buf  # wait for the rest of the JSON
            return
        self.buf = b""
        self.asked = True
        req, cmd = parse_rpc(s)
        m = self.m
        m.rpc_line.submit(m.rpc_delay_s(cmd or ""), lambda: self._reply(req, cmd), self.alive)

    def _reply(self, req: object, cmd: str | None) -> None:
        self.transport.write(rpc_reply(self.m, req, cmd))
        self.transport.close()

    def eof_received(self):
        return False


class HttpProtocol(Connection):
    """lighttpd's Antminer web UI over HTTP/1.1 (keep-alive, pipelining, request bodies), framed by h11.

    lighttpd answers a challenge or an error itself, at once; a CGI waits its turn on the miner's
    CGI line. Requests on one connection are answered in order.
    """

    def __init__(self, m: Miner):
        super().__init__(m)
        self.http = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADER_BYTES)
        self.request: h11.Request | None = None
        self.body = bytearray()

    def data_received(self, data: bytes) -> None:
        if Fault.HUNG in self.m.base.faults:
            return
        self.http.receive_data(data)
        self._serve()

    def eof_received(self):
        self.http.receive_data(b"")
        self._serve()
        return False

    def _serve(self) -> None:
        """Take in requests until one is complete (or more data is needed)."""
        http = self.http
        while self.alive():
            try:
                event = http.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(exc.error_status_hint)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return  # PAUSED: the previous request is still being answered
            if isinstance(event, h11.Request):
                if sum(len(k) + len(v) + 4 for k, v in event.headers) > _MAX_HEADER_BYTES:
                    self._refuse(431)  # h11 bounds only headers that arrive in pieces
                    return
                self.request = event
                self.body.clear()
            elif isinstance(event, h11.Data):
                self.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self._answer()
                return
            elif isinstance(event, h11.ConnectionClosed):
                self.transport.close()
                return

    def _answer(self) -> None:
        req = self.request
        assert req is not None
        m = self.m
        method, target = req.method.decode("latin-1"), req.target.decode("latin-1")
        auth = next((v for k, v in req.headers if k == b"authorization"), b"").decode("latin-1")
        path = target.split("?", 1)[0]
        head = method == "HEAD"
        refused = antminer.challenge(m, method, target, auth)
        if refused is None and antminer.runs_cgi(method, path):
            if Fault.WEB_TIMEOUT in m.base.faults:
                return  # the CGI never comes back; lighttpd holds the connection open
            body = bytes(self.body)
            m.cgi_line.submit(
                m.cgi_delay_s(path), lambda: self._respond(antminer.web_reply(m, method, path, body)), self.alive
            )
            return
        reply = refused or antminer.web_reply(m, method, path, bytes(self.body))
        delay = m.quick_delay_s()
        if delay <= 0:
            self._respond(reply, head=head)
        else:
            asyncio.get_running_loop().call_later(delay, self._respond_if_alive, reply, head)

    def _respond_if_alive(self, reply: antminer.WebReply, head: bool) -> None:
        if self.alive():
            self._respond(reply, head=head)

    def _respond(self, reply: antminer.WebReply, *, head: bool = False) -> None:
        self._send(reply.status, reply.body, reply.content_type, reply.headers, head=head)
        self.request = None
        if self.http.our_state is h11.MUST_CLOSE:
            self.transport.close()
        else:
            self.http.start_next_cycle()
            self._serve()  # a pipelined request may be waiting

    def _refuse(self, status: int) -> None:
        """A request lighttpd cannot parse: its error page, then the connection is closed."""
        if self.http.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = status if status in _REASONS else 400
            self._send(status, antminer.lighttpd_error(status, _REASONS[status].decode()), "text/html", ())
        self.transport.close()

    def _send(self, status: int, body: bytes, ctype: str, extra, *, head: bool = False) -> None:
        headers = [
            (b"Content-Type", ctype.encode()),
            (b"Content-Length", str(len(body)).encode()),
            *((k.encode(), v.encode()) for k, v in extra),
            (b"Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()).encode()),
            (b"Server", _SERVER),
        ]
        http = self.http
        out = http.send(h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b"")))
        if not head:
            out += http.send(h11.Data(data=body))
        out += http.send(h11.EndOfMessage())
        self.transport.write(out)
